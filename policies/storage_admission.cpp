// See storage_admission.h.
#include "policies/storage_admission.h"

namespace s2::policy {
namespace {
// Long enough that a device resending at once is not another failed commit,
// short enough that recovery is seen within seconds.
constexpr int64_t kFullBackoffMs = 5000;
}  // namespace

StorageVerdict admit_persistent(const StorageFacts& f) {
  if (f.full_until_ms > f.now_ms) return StorageVerdict::kRefuseMirrorFull;
  if (f.free_known && f.min_free_bytes > 0 && f.free_bytes < f.min_free_bytes)
    return StorageVerdict::kRefuseDiskLow;
  return StorageVerdict::kAccept;
}

std::string_view refusal_text(StorageVerdict v) {
  switch (v) {
    case StorageVerdict::kRefuseDiskLow:
      return "the server's disk is nearly full; the message was not sent, try again later";
    case StorageVerdict::kRefuseMirrorFull:
      return "the server's message store is full; the message was not sent, try again later";
    case StorageVerdict::kAccept:
      break;
  }
  return {};
}

int64_t full_until_after_failure(int64_t now_ms) { return now_ms + kFullBackoffMs; }

}  // namespace s2::policy
