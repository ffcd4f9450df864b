// See log.h. Writes whole lines with one fwrite so concurrent threads (the
// loop and the mirror writer) never interleave within a line.
#include "common/util/log.h"

#include <sys/time.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "common/util/json_text.h"

namespace s2 {
namespace {
LogLevel g_level = LogLevel::Info;
LogFormat g_format = LogFormat::Text;

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Debug:
      return "debug";
    case LogLevel::Info:
      return "info";
    case LogLevel::Warn:
      return "warn";
    case LogLevel::Error:
      return "error";
  }
  return "?";
}

// Text values are quoted when they contain spaces, quotes or '=' so lines
// stay machine-splittable.
void append_text_value(std::string& out, std::string_view s) {
  bool quote = s.empty() || !valid_utf8(s);
  for (unsigned char c : s)
    if (c <= ' ' || c == '"' || c == '=' || c == 0x7f) quote = true;
  if (!quote) {
    out.append(s);
    return;
  }
  append_json_string(out, s);
}

std::string timestamp() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm t{};
  gmtime_r(&tv.tv_sec, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                static_cast<int>(tv.tv_usec / 1000));
  return buf;
}
}  // namespace

void log_configure(LogLevel level, LogFormat format) {
  g_level = level;
  g_format = format;
}

bool log_enabled(LogLevel level) { return level >= g_level; }

bool parse_log_level(std::string_view s, LogLevel* out) {
  if (s == "debug")
    *out = LogLevel::Debug;
  else if (s == "info")
    *out = LogLevel::Info;
  else if (s == "warn" || s == "warning")
    *out = LogLevel::Warn;
  else if (s == "error")
    *out = LogLevel::Error;
  else
    return false;
  return true;
}

std::string LogField::format_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string format_log_line(LogFormat format, std::string_view ts, LogLevel level,
                            std::string_view event, std::initializer_list<LogField> fields) {
  std::string line;
  line.reserve(128);
  if (format == LogFormat::Json) {
    line += "{\"ts\":\"";
    line += ts;
    line += "\",\"level\":\"";
    line += level_name(level);
    line += "\",\"event\":";
    append_json_string(line, event);
    for (const auto& f : fields) {
      line += ',';
      append_json_string(line, f.key);
      line += ':';
      if (f.is_number)
        line += f.number;
      else
        append_json_string(line, f.text);
    }
    line += '}';
  } else {
    line += ts;
    line += ' ';
    line += level_name(level);
    line += ' ';
    append_text_value(line, event);
    for (const auto& f : fields) {
      line += ' ';
      append_text_value(line, f.key);
      line += '=';
      if (f.is_number)
        line += f.number;
      else
        append_text_value(line, f.text);
    }
  }
  return line;
}

void log_event(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
  if (!log_enabled(level)) return;
  std::string line = format_log_line(g_format, timestamp(), level, event, fields);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace s2
