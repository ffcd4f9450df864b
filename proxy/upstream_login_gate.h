// Upstream logins in arrival order at the pace policy::LoginPacer allows (issue 12 item 5).
//
// Every upstream login — a device's link, an account's anchor — asks the gate before its SASL
// exchange starts (UpstreamSession::login). At most --upstream-logins-in-flight run at once and at
// most --upstream-login-rate start per second (bucket of a second's worth, at most 50), the rest
// wait in arrival order. A slot is held until the login authenticated or ended; the session's own
// login timeout starts when it is admitted, so waiting is not a failure. A client still waits in
// SASL for its <success/> until its upstream session is bound, as before; its --auth-timeout
// bounds the wait.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>

#include "common/net/connection.h"
#include "policies/login_pacer.h"

namespace s2 {

class UpstreamLoginGate {
 public:
  UpstreamLoginGate(uv_loop_t* loop, policy::PacerConfig c);
  UpstreamLoginGate(const UpstreamLoginGate&) = delete;
  UpstreamLoginGate& operator=(const UpstreamLoginGate&) = delete;

  // Queues a login; `start` runs on the loop when it is admitted (possibly before admit returns).
  // Returns the ticket for release().
  uint64_t admit(std::function<void()> start);
  // The login authenticated, failed or was abandoned (waiting or admitted): idempotent.
  void release(uint64_t ticket);

  // The loop is ending: its timer goes now (the loop's last walk must not close it twice);
  // release() keeps working for sessions destroyed later, nothing is admitted any more.
  void shutdown();

  uint32_t in_flight() const { return pacer_.in_flight(); }
  size_t waiting() const { return queue_.size(); }

 private:
  void pump();
  uv_loop_t* loop_;
  policy::LoginPacer pacer_;
  std::deque<std::pair<uint64_t, std::function<void()>>> queue_;
  std::set<uint64_t> admitted_;
  uint64_t next_ = 1;
  bool pumping_ = false;
  std::unique_ptr<Timer> timer_;
};

}  // namespace s2
