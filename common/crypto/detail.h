// Internal helpers shared by s2_crypto's parsers; not part of the API.
#pragma once

#include <string_view>

namespace s2::crypto::detail {

// Strict UTF-8 (RFC 3629): no overlongs, no surrogates, <= U+10FFFF. (s2_jid
// has the same check; s2_crypto keeps its own so it depends on OpenSSL only.)
inline bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    char32_t min;
    if (b >= 0xC2 && b <= 0xDF) {
      n = 1, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 2, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 3, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    char32_t cp = b & (0x3F >> n);
    for (size_t k = 1; k <= n; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

}  // namespace s2::crypto::detail
