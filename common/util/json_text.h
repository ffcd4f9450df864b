// Text for JSON output (log lines, `accounts export`): a JSON string literal
// from bytes that are not trusted to be UTF-8.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace s2 {

// Length of the valid UTF-8 sequence at s[i], or 0 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF).
size_t utf8_sequence(std::string_view s, size_t i);
bool valid_utf8(std::string_view s);
// Appends s as a quoted JSON string; each byte of invalid UTF-8 becomes U+FFFD.
void append_json_string(std::string& out, std::string_view s);

}  // namespace s2
