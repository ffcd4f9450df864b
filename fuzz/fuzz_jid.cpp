// libFuzzer target for parse_jid() (common/jid). Besides memory safety it
// checks the normalisation invariants every caller relies on: a parsed JID
// re-parses to itself from full() and bare(), parts respect the RFC 7622 §3.1
// size limits, and the domain is never empty.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/jid/jid.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto j = s2::parse_jid(in);
  if (!j) return 0;
  if (j->domain.empty() || j->domain.size() > s2::kMaxJidPartBytes ||
      j->local.size() > s2::kMaxJidPartBytes || j->resource.size() > s2::kMaxJidPartBytes)
    __builtin_trap();
  auto again = s2::parse_jid(j->full());
  if (!again || !(*again == *j)) __builtin_trap();
  auto bare = s2::parse_jid(j->bare());
  if (!bare || !(*bare == j->to_bare()) || !s2::jid_equal_bare(*bare, *j)) __builtin_trap();
  return 0;
}
