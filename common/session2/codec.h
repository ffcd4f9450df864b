// Value codecs shared by the session2 elements: base64 (RFC 4648 §4), XEP-0082
// DateTime, xs:unsignedInt and xs:boolean attribute values.
//
// SASL2 carries SASL data as base64 text (XEP-0388 §2.2): the decoder skips XML
// whitespace (the XEP's own examples wrap the text in newlines), requires correct
// padding and rejects any other character; a lone "=" decodes to the empty string, as
// in RFC 6120 §6.4.2, for clients that carry the SASL1 habit over. Counters in
// XEP-0198 (h, max) are xs:unsignedInt: decimal digits only, no sign, no spaces,
// at most 2^32-1. Booleans follow XML Schema ("true"/"1"/"false"/"0"). Timestamps
// are rendered in the XEP-0082 DateTime profile, always UTC with a "Z" suffix.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace s2::session2 {

std::string base64_encode(std::string_view raw);
// Raw bytes, or nullopt when `text` is not valid base64.
std::optional<std::string> base64_decode(std::string_view text);

// "2026-12-08T00:00:00Z" for a unix time (seconds since the epoch, UTC). Years are
// rendered with at least four digits; times before 1970 are supported.
std::string xep0082_datetime(int64_t unix_seconds);

std::optional<uint32_t> parse_uint32(std::string_view s);
std::optional<uint64_t> parse_uint64(std::string_view s);
std::optional<bool> parse_xs_boolean(std::string_view s);

}  // namespace s2::session2
