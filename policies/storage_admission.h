// Whether a new persistent message may be taken while storage is short
// (issue 13 item 3). Pure: the guard (proxy/storage_guard.h) supplies the facts.
//
// Two signals, both self-clearing:
//   * the data dir's filesystem has less free space than the reserve
//     (--min-free-disk): new messages from devices wait; the reserve is left to
//     what enters from the upstream (its only copy on the way to the devices)
//     and to deletions;
//   * a commit failed because the mirror reached its maximum map size or the
//     disk said ENOSPC: refuse for a back-off, then let one through to find out
//     whether space returned (a commit that fails again re-arms it).
#pragma once

#include <cstdint>
#include <string_view>

namespace s2::policy {

struct StorageFacts {
  bool free_known = false;  // statvfs answered
  uint64_t free_bytes = 0;
  uint64_t min_free_bytes = 0;  // 0: no reserve
  int64_t now_ms = 0;
  int64_t full_until_ms = 0;  // refusals after a failed commit last until then
};

enum class StorageVerdict { kAccept, kRefuseDiskLow, kRefuseMirrorFull };

StorageVerdict admit_persistent(const StorageFacts& f);

// The <text/> a refused device sees (an operator reads the log for details).
std::string_view refusal_text(StorageVerdict v);

// After a commit failed for lack of space at `now_ms`: refuse until this time.
int64_t full_until_after_failure(int64_t now_ms);

}  // namespace s2::policy
