// Upstream login pacing (issue 12 item 5): how many upstream logins may run at once and how fast
// new ones may start, so that 10k devices reconnecting after a proxy restart never stampede the
// upstream. A token bucket (rate per second, burst) and a cap on logins in flight; the caller
// queues in arrival order and asks when the next may start. Pure: time is passed in.
#pragma once

#include <cstdint>

namespace s2::policy {

struct PacerConfig {
  double rate_per_s = 150;      // new upstream logins per second; 0: unlimited
  uint32_t burst = 50;          // tokens the bucket holds (at least 1)
  uint32_t max_in_flight = 64;  // logins started and not yet authenticated; 0: unlimited
};

class LoginPacer {
 public:
  LoginPacer() = default;
  explicit LoginPacer(PacerConfig c, int64_t now_ms = 0);

  // A login may start now (a free slot and a token).
  bool can_start(int64_t now_ms);
  // Starts one: takes a token and a slot. Call only after can_start() said yes.
  void start(int64_t now_ms);
  // A started login authenticated or ended: its slot is free.
  void finish();
  // With a free slot but no token: milliseconds until the next token (≥ 1); 0 when one is there.
  int64_t ms_until_token(int64_t now_ms);
  uint32_t in_flight() const { return in_flight_; }
  bool slot_free() const { return c_.max_in_flight == 0 || in_flight_ < c_.max_in_flight; }

 private:
  void refill(int64_t now_ms);
  PacerConfig c_;
  double tokens_ = 0;
  int64_t last_ms_ = 0;
  uint32_t in_flight_ = 0;
};

}  // namespace s2::policy
