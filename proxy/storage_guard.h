// Storage short of space (issue 13 item 3): the daemon's view of the data
// dir's free space and of failed commits, and the one question the hub asks
// before it takes a device's persistent message (policies/storage_admission.h
// decides). A refused message gets `resource-constraint` (type wait) before
// it is acknowledged, so nothing acknowledged was ever uncommitted; everything
// else (reading, MAM, ephemeral traffic, what enters from the upstream) goes
// on. Both signals clear by themselves: the free space is read every 2 s, and
// a failed commit refuses only for a short back-off.
#pragma once

#include <cstdint>
#include <string>

#include "common/net/connection.h"
#include "common/store/store.h"
#include "policies/storage_admission.h"

namespace s2 {

class StorageGuard {
 public:
  // `min_free_bytes`: --min-free-disk (0: no reserve).
  StorageGuard(uv_loop_t* loop, std::string data_dir, uint64_t min_free_bytes);
  void start();
  void stop();

  // May a new persistent message from a device be taken now? On refusal the
  // verdict says why (its text goes to the device).
  policy::StorageVerdict admit();
  // A commit failed: a full mirror or disk re-arms the refusal back-off.
  // True when the error was one of those.
  bool note_commit_error(const store::Error& e);
  static bool is_space_error(const store::Error& e);

 private:
  void sample();
  void transition(policy::StorageVerdict v);

  Timer timer_;
  std::string data_dir_;
  policy::StorageFacts facts_;
  policy::StorageVerdict last_ = policy::StorageVerdict::kAccept;
};

}  // namespace s2
