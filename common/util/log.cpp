// See log.h. Writes whole lines with one fwrite so concurrent threads (the
// loop and the mirror writer) never interleave within a line.
#include "common/util/log.h"

#include <sys/time.h>

#include <cstdio>
#include <ctime>

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

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// Text values are quoted when they contain spaces, quotes or '=' so lines
// stay machine-splittable.
void append_text_value(std::string& out, std::string_view s) {
  bool quote = s.empty();
  for (unsigned char c : s)
    if (c <= ' ' || c == '"' || c == '=') quote = true;
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

void log_event(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
  if (!log_enabled(level)) return;
  std::string line;
  line.reserve(128);
  if (g_format == LogFormat::Json) {
    line += "{\"ts\":\"" + timestamp() + "\",\"level\":\"" + level_name(level) + "\",\"event\":";
    append_json_string(line, event);
    for (const auto& [k, v] : fields) {
      line += ',';
      append_json_string(line, k);
      line += ':';
      append_json_string(line, v);
    }
    line += "}\n";
  } else {
    line += timestamp();
    line += ' ';
    line += level_name(level);
    line += ' ';
    line.append(event);
    for (const auto& [k, v] : fields) {
      line += ' ';
      line.append(k);
      line += '=';
      append_text_value(line, v);
    }
    line += '\n';
  }
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace s2
