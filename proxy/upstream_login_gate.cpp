// See upstream_login_gate.h.
#include "proxy/upstream_login_gate.h"

#include <algorithm>

#include "common/util/log.h"
#include "common/util/metrics.h"

namespace s2 {
namespace {
Metric& m_in_flight() {
  static Metric& m = gauge("s2proxy_upstream_logins_in_flight",
                           "upstream logins started and not yet authenticated");
  return m;
}
Metric& m_waiting() {
  static Metric& m =
      gauge("s2proxy_upstream_logins_waiting", "upstream logins waiting for their turn");
  return m;
}
Metric& m_paced() {
  static Metric& m = counter("s2proxy_upstream_logins_paced_total",
                             "upstream logins that waited for a slot or the rate");
  return m;
}
int64_t now_ms(uv_loop_t* loop) { return static_cast<int64_t>(uv_now(loop)); }
}  // namespace

UpstreamLoginGate::UpstreamLoginGate(uv_loop_t* loop, policy::PacerConfig c)
    : loop_(loop), pacer_(c, now_ms(loop)), timer_(std::make_unique<Timer>(loop)) {
  timer_->unref();  // waiting logins belong to sessions, which keep the loop alive themselves
}

void UpstreamLoginGate::shutdown() {
  timer_.reset();
  queue_.clear();
}

uint64_t UpstreamLoginGate::admit(std::function<void()> start) {
  const uint64_t t = next_++;
  if (!queue_.empty() || !pacer_.can_start(now_ms(loop_))) m_paced().inc();
  queue_.emplace_back(t, std::move(start));
  pump();
  return t;
}

void UpstreamLoginGate::release(uint64_t ticket) {
  if (ticket == 0) return;
  if (admitted_.erase(ticket)) {
    pacer_.finish();
    m_in_flight().set(pacer_.in_flight());
    pump();
    return;
  }
  auto it =
      std::find_if(queue_.begin(), queue_.end(), [&](const auto& e) { return e.first == ticket; });
  if (it != queue_.end()) {
    queue_.erase(it);
    m_waiting().set(static_cast<int64_t>(queue_.size()));
  }
}

void UpstreamLoginGate::pump() {
  if (pumping_ || !timer_) return;  // a start() that releases re-enters: the loop below continues
  pumping_ = true;
  while (!queue_.empty() && pacer_.can_start(now_ms(loop_))) {
    auto [ticket, start] = std::move(queue_.front());
    queue_.pop_front();
    pacer_.start(now_ms(loop_));
    admitted_.insert(ticket);
    m_in_flight().set(pacer_.in_flight());
    S2_LOG(LogLevel::Debug, "upstream.login_admitted",
           {{"in_flight", std::to_string(pacer_.in_flight())},
            {"waiting", std::to_string(queue_.size())}});
    start();
  }
  m_waiting().set(static_cast<int64_t>(queue_.size()));
  pumping_ = false;
  // Waiting on the rate (a slot is free): come back when the next token is there. Waiting on a
  // slot: release() pumps.
  if (!queue_.empty() && pacer_.slot_free() && !timer_->active())
    timer_->start(static_cast<uint64_t>(std::max<int64_t>(1, pacer_.ms_until_token(now_ms(loop_)))),
                  [this] { pump(); });
}

}  // namespace s2
