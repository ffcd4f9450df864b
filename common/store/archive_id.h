// Archive ids as clients see them.
//
// Inside the mirror an archive id is a per-account uint64 (dense, from 1). On
// the wire (MAM result ids, <stanza-id by=account>, RSM first/last) it is an
// opaque string: 13 characters of Crockford base32 ("0-9A-Z" minus I, L, O,
// U), most significant first, zero padded. 13 × 5 = 65 bits, so the first
// character is at most 'F'. The alphabet is in ASCII order and the width is
// fixed, so byte-wise string order equals numeric order: a client (or a test)
// that sorts ids as strings gets archive order. Parsing is strict (exact width,
// upper case only, no padding tricks) so each number has exactly one spelling
// and a forged or mistyped id maps to item-not-found instead of a neighbour.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/store/store.h"

namespace s2::store {

inline constexpr size_t kArchiveIdWidth = 13;

std::string render_archive_id(ArchiveId id);
std::optional<ArchiveId> parse_archive_id(std::string_view s);

}  // namespace s2::store
