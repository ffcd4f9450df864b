// Crockford base32 rendering of archive ids; see archive_id.h for why.
#include "common/store/archive_id.h"

namespace s2::store {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int digit_value(char c) {
  for (int i = 0; i < 32; ++i) {
    if (kAlphabet[i] == c) return i;
  }
  return -1;
}

}  // namespace

std::string render_archive_id(ArchiveId id) {
  std::string s(kArchiveIdWidth, '0');
  for (size_t i = kArchiveIdWidth; i-- > 0;) {
    s[i] = kAlphabet[id & 31];
    id >>= 5;
  }
  return s;
}

std::optional<ArchiveId> parse_archive_id(std::string_view s) {
  if (s.size() != kArchiveIdWidth) return std::nullopt;
  ArchiveId id = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    int v = digit_value(s[i]);
    if (v < 0) return std::nullopt;
    // The leading digit carries only the top 4 bits (13 × 5 = 65).
    if (i == 0 && v > 15) return std::nullopt;
    id = (id << 5) | static_cast<ArchiveId>(v);
  }
  return id;
}

}  // namespace s2::store
