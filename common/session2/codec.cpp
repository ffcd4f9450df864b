// Base64, XEP-0082 and xs: value codecs (see codec.h for the rules).
//
// Hand-written rather than OpenSSL's EVP_DecodeBlock, which accepts characters after
// padding and reports padded lengths; a strict decoder is shorter than the fix-ups.
#include "common/session2/codec.h"

#include <array>
#include <cstdio>
#include <limits>

#include "common/crypto/encoding.h"

namespace s2::session2 {
namespace {

bool is_xml_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Howard Hinnant's civil_from_days: proleptic Gregorian date for days since 1970-01-01.
void civil_from_days(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2 ? 1 : 0);
}

template <typename U>
std::optional<U> parse_unsigned(std::string_view s) {
  if (s.empty()) return std::nullopt;
  U v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const U digit = static_cast<U>(c - '0');
    if (v > (std::numeric_limits<U>::max() - digit) / 10) return std::nullopt;
    v = static_cast<U>(v * 10 + digit);
  }
  return v;
}

}  // namespace

// The base64 alphabet itself lives in s2_crypto; SASL2 only adds the XML
// whitespace the XEP's examples wrap around the text.
std::string base64_encode(std::string_view raw) { return crypto::base64_encode(raw); }

std::optional<std::string> base64_decode(std::string_view text) {
  std::string compact;
  compact.reserve(text.size());
  for (char c : text) {
    if (!is_xml_space(c)) compact += c;
  }
  return crypto::sasl_base64_decode(compact);  // strict; "=" is the empty response
}

std::string xep0082_datetime(int64_t unix_seconds) {
  // Floor division so that negative times land on the right day.
  int64_t days = unix_seconds / 86400;
  int64_t secs = unix_seconds % 86400;
  if (secs < 0) {
    secs += 86400;
    days -= 1;
  }
  int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(days, &y, &m, &d);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02dZ", static_cast<long long>(y), m,
                d, static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60),
                static_cast<int>(secs % 60));
  return buf;
}

std::optional<uint32_t> parse_uint32(std::string_view s) { return parse_unsigned<uint32_t>(s); }
std::optional<uint64_t> parse_uint64(std::string_view s) { return parse_unsigned<uint64_t>(s); }

std::optional<bool> parse_xs_boolean(std::string_view s) {
  if (s == "true" || s == "1") return true;
  if (s == "false" || s == "0") return false;
  return std::nullopt;
}

}  // namespace s2::session2
