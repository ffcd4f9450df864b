// Log lines: JSON mode writes numbers as numbers and never passes invalid
// UTF-8 through; text mode stays one splittable line.
#include <doctest/doctest.h>

#include <string>

#include "common/util/log.h"

using s2::format_log_line;
using s2::LogFormat;
using s2::LogLevel;

TEST_CASE("JSON log lines: strings, numbers, escapes, invalid UTF-8") {
  struct Row {
    std::string value;  // the text field's value
    std::string want;   // how it must appear in the JSON line
  };
  const Row rows[] = {
      {"alice@example.org", "\"alice@example.org\""},
      {"say \"hi\"\\", "\"say \\\"hi\\\"\\\\\""},
      {"a\nb\tc\r", "\"a\\nb\\tc\\r\""},
      {std::string("\x01\x1f\x7f", 3), "\"\\u0001\\u001f\\u007f\""},
      {"\xc3\xa4rger", "\"\xc3\xa4rger\""},          // valid UTF-8 kept
      {"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""},  // 4-byte sequence kept
      {"a\xff"
       "b",
       "\"a\\ufffdb\""},                                         // invalid byte
      {"\xc3", "\"\\ufffd\""},                                   // truncated sequence
      {"\xc0\xaf", "\"\\ufffd\\ufffd\""},                        // overlong '/'
      {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},             // UTF-16 surrogate
      {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},  // above U+10FFFF
      {std::string("nul\0x", 5), "\"nul\\u0000x\""},
  };
  for (const auto& r : rows) {
    CAPTURE(r.want);
    const std::string line = format_log_line(LogFormat::Json, "T", LogLevel::Info, "e",
                                             {{"v", std::string_view(r.value)}});
    CHECK(line == "{\"ts\":\"T\",\"level\":\"info\",\"event\":\"e\",\"v\":" + r.want + "}");
  }
}

TEST_CASE("JSON log lines: numbers are JSON numbers") {
  const std::string line = format_log_line(LogFormat::Json, "T", LogLevel::Warn, "e",
                                           {{"n", 3},
                                            {"big", uint64_t{18446744073709551615u}},
                                            {"neg", int64_t{-7}},
                                            {"s", "3"},
                                            {"f", 0.25},
                                            {"ok", "true"}});
  CHECK(line ==
        "{\"ts\":\"T\",\"level\":\"warn\",\"event\":\"e\",\"n\":3,\"big\":18446744073709551615,"
        "\"neg\":-7,\"s\":\"3\",\"f\":0.25,\"ok\":\"true\"}");
}

TEST_CASE("text log lines: key=value, quoted when needed") {
  struct Row {
    std::string value, want;
  };
  const Row rows[] = {
      {"plain", "plain"},
      {"", "\"\""},
      {"two words", "\"two words\""},
      {"a=b", "\"a=b\""},
      {"\xc3\xa4", "\xc3\xa4"},
      {"bad\xff", "\"bad\\ufffd\""},
      {"line\nbreak", "\"line\\nbreak\""},
  };
  for (const auto& r : rows) {
    CAPTURE(r.want);
    CHECK(format_log_line(LogFormat::Text, "T", LogLevel::Info, "client.auth_failed",
                          {{"peer", "127.0.0.1:5"}, {"v", std::string_view(r.value)}, {"n", 2}}) ==
          "T info client.auth_failed peer=127.0.0.1:5 v=" + r.want + " n=2");
  }
}
