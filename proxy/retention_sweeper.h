// Retention (issue 13 item 4): --archive-max-age and --archive-max-messages,
// applied to every account's mirror by a periodic sweep. Each account is
// pruned in batches of at most 500 messages (store::op::PruneArchive), each its
// own small transaction queued behind whatever is being appended, so a sweep
// never holds the writer for long. MAM then answers what remains, and a cursor
// into the pruned prefix continues from the oldest remaining message
// (common/store/mirror_query.cpp). Default: keep everything (no sweep).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/net/connection.h"
#include "common/store/store.h"

namespace s2 {

class RetentionSweeper {
 public:
  RetentionSweeper(uv_loop_t* loop, store::Store& store, double max_age_s, uint64_t max_messages,
                   double interval_s);
  bool enabled() const { return max_age_ms_ > 0 || max_messages_ > 0; }
  void start();  // first sweep after a few seconds, then every interval
  void stop();
  // Several nodes (cluster.h): only the accounts this node owns are its to
  // prune; another node's writes for them would be fenced. Unset: all.
  void only_accounts(std::function<bool(store::AccountNo)> mine) { mine_ = std::move(mine); }
  // One sweep now (tests; the timer runs the same).
  void sweep_now() { sweep(); }
  bool running() const { return running_; }

 private:
  void sweep();
  void next_batch();

  Timer timer_;
  store::Store& store_;
  int64_t max_age_ms_;
  uint64_t max_messages_;
  uint64_t interval_ms_;
  std::vector<store::AccountNo> pending_;  // accounts of the running sweep
  bool running_ = false;
  uint64_t swept_messages_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::function<bool(store::AccountNo)> mine_;
  static constexpr uint32_t kBatch = 500;
};

}  // namespace s2
