// Internal helpers shared by s2_crypto's parsers; not part of the API.
#pragma once

#include <string_view>

#include "common/jid/jid.h"

namespace s2::crypto::detail {

// Strict UTF-8 (RFC 3629): one implementation for the whole tree, in s2_jid.
inline bool valid_utf8(std::string_view s) { return s2::is_valid_utf8(s); }

}  // namespace s2::crypto::detail
