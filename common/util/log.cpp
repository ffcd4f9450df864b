// See log.h. Writes whole lines with one fwrite so concurrent threads (the
// loop and the mirror writer) never interleave within a line.
#include "common/util/log.h"

#include <sys/time.h>

#include <charconv>
#include <cmath>
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

// Length of the valid UTF-8 sequence at s[i], or 0 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF).
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (b(k) < 0x80 || b(k) > 0xbf) return 0;
  return n;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = utf8_sequence(s, i);
    if (n == 0) {
      out += "\\ufffd";  // invalid UTF-8: one replacement per bad byte
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    ++i;
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
        if (c < 0x20 || c == 0x7f) {
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
