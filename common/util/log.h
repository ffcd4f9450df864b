// One-line-per-event logging, text (key=value) or JSON, to stderr.
//
// Events are short names ("client.accepted", "upstream.auth_failed") with
// key/value fields; sessions always pass session=<id> so one connection can be
// followed through the log. Nothing secret is ever passed in: callers log
// account JIDs and conditions, never passwords, tokens or message bodies.
//
// A field is text or a number: numbers are written as JSON numbers in JSON
// mode ({"resent":3}), text as JSON strings. Text is not trusted to be UTF-8
// (JIDs and conditions come from peers): invalid sequences are written as
// U+FFFD in both formats, so a line is always valid UTF-8 and, in JSON mode,
// valid JSON.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace s2 {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };
enum class LogFormat { Text, Json };

void log_configure(LogLevel level, LogFormat format);
bool log_enabled(LogLevel level);
// Parses "debug" / "info" / "warn" / "error".
bool parse_log_level(std::string_view s, LogLevel* out);

struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), text(v) {}
  LogField(std::string_view k, const char* v) : key(k), text(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), text(v) {}
  template <std::integral T>
  requires(!std::same_as<T, bool> && !std::same_as<T, char>) LogField(std::string_view k, T v)
      : key(k), is_number(true) {
    if constexpr (std::is_signed_v<T>)
      number = std::to_string(static_cast<int64_t>(v));
    else
      number = std::to_string(static_cast<uint64_t>(v));
  }
  template <std::floating_point T>
  LogField(std::string_view k, T v) : key(k), is_number(true), number(format_number(v)) {}
  static std::string format_number(double v);  // shortest round-trip, "null" when not finite

  std::string_view key;
  std::string_view text;
  bool is_number = false;
  std::string number;  // decimal digits when is_number
};
void log_event(LogLevel level, std::string_view event, std::initializer_list<LogField> fields = {});

// The line log_event() writes (without the trailing newline and with the
// given timestamp), for tests.
std::string format_log_line(LogFormat format, std::string_view ts, LogLevel level,
                            std::string_view event, std::initializer_list<LogField> fields);

}  // namespace s2

#define S2_LOG(level, event, ...)                                             \
  do {                                                                        \
    if (::s2::log_enabled(level)) ::s2::log_event(level, event, __VA_ARGS__); \
  } while (0)
