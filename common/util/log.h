// One-line-per-event logging, text (key=value) or JSON, to stderr.
//
// Events are short names ("client.accepted", "upstream.auth_failed") with
// key/value fields; sessions always pass session=<id> so one connection can be
// followed through the log. Nothing secret is ever passed in: callers log
// account JIDs and conditions, never passwords, tokens or message bodies.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace s2 {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };
enum class LogFormat { Text, Json };

void log_configure(LogLevel level, LogFormat format);
bool log_enabled(LogLevel level);
// Parses "debug" / "info" / "warn" / "error".
bool parse_log_level(std::string_view s, LogLevel* out);

using LogField = std::pair<std::string_view, std::string_view>;
void log_event(LogLevel level, std::string_view event, std::initializer_list<LogField> fields = {});

}  // namespace s2

#define S2_LOG(level, event, ...)                                             \
  do {                                                                        \
    if (::s2::log_enabled(level)) ::s2::log_event(level, event, __VA_ARGS__); \
  } while (0)
