// See retention_sweeper.h.
#include "proxy/retention_sweeper.h"

#include <algorithm>

#include "common/util/clock.h"
#include "common/util/log.h"
#include "common/util/metrics.h"

namespace s2 {
namespace {
Metric& m_pruned() {
  static Metric& m = counter("s2proxy_archive_pruned_total",
                             "messages removed from the mirror by retention (--archive-max-age, "
                             "--archive-max-messages)");
  return m;
}
constexpr uint64_t kFirstSweepMs = 5000;
}  // namespace

RetentionSweeper::RetentionSweeper(uv_loop_t* loop, store::Store& store, double max_age_s,
                                   uint64_t max_messages, double interval_s)
    : timer_(loop),
      store_(store),
      max_age_ms_(static_cast<int64_t>(max_age_s * 1000)),
      max_messages_(max_messages),
      interval_ms_(static_cast<uint64_t>(std::max(1.0, interval_s) * 1000)) {
  m_pruned();
}

void RetentionSweeper::start() {
  if (!enabled()) return;
  timer_.start(
      std::min(kFirstSweepMs, interval_ms_), [this] { sweep(); }, interval_ms_);
  timer_.unref();  // never keeps a draining daemon alive
}

void RetentionSweeper::stop() {
  timer_.stop();
  *alive_ = false;
  alive_ = std::make_shared<bool>(true);
  running_ = false;
  pending_.clear();
}

void RetentionSweeper::sweep() {
  if (running_) return;  // the previous sweep is still going
  auto accounts = store_.list_accounts();
  if (!accounts) {
    S2_LOG(LogLevel::Warn, "retention.list_failed", {{"error", accounts.error().text}});
    return;
  }
  pending_.clear();
  for (const auto& a : *accounts)
    if (!mine_ || mine_(a.account)) pending_.push_back(a.account);
  running_ = true;
  swept_messages_ = 0;
  next_batch();
}

void RetentionSweeper::next_batch() {
  if (pending_.empty()) {
    running_ = false;
    if (swept_messages_ > 0)
      S2_LOG(LogLevel::Info, "retention.pruned",
             {{"messages", static_cast<int64_t>(swept_messages_)}});
    return;
  }
  store::op::PruneArchive op;
  op.account = pending_.back();
  op.before_ms = max_age_ms_ > 0 ? unix_ms() - max_age_ms_ : 0;
  op.keep_last = max_messages_;
  op.max_batch = kBatch;
  store_.submit({op}, [this, alive = std::weak_ptr<bool>(alive_)](store::WriteResult r) {
    if (alive.expired()) return;
    const uint64_t n = r.ok() && !r.ops.empty() ? r.ops[0].count : 0;
    m_pruned().inc(static_cast<int64_t>(n));
    swept_messages_ += n;
    // A full batch: this account may have more; else the next account.
    if (n < kBatch) pending_.pop_back();
    next_batch();
  });
}

}  // namespace s2
