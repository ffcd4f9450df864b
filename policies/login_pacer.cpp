// LoginPacer: see login_pacer.h.
#include "policies/login_pacer.h"

#include <algorithm>
#include <cmath>

namespace s2::policy {

LoginPacer::LoginPacer(PacerConfig c, int64_t now_ms) : c_(c), last_ms_(now_ms) {
  if (c_.burst == 0) c_.burst = 1;
  tokens_ = c_.burst;  // a fresh daemon may start a burst at once
}

void LoginPacer::refill(int64_t now_ms) {
  if (now_ms <= last_ms_) return;
  tokens_ = std::min<double>(c_.burst, tokens_ + (now_ms - last_ms_) * c_.rate_per_s / 1000.0);
  last_ms_ = now_ms;
}

bool LoginPacer::can_start(int64_t now_ms) {
  if (!slot_free()) return false;
  if (c_.rate_per_s <= 0) return true;
  refill(now_ms);
  return tokens_ >= 1.0;
}

void LoginPacer::start(int64_t now_ms) {
  if (c_.rate_per_s > 0) {
    refill(now_ms);
    tokens_ = std::max(0.0, tokens_ - 1.0);
  }
  ++in_flight_;
}

void LoginPacer::finish() {
  if (in_flight_ > 0) --in_flight_;
}

int64_t LoginPacer::ms_until_token(int64_t now_ms) {
  if (c_.rate_per_s <= 0) return 0;
  refill(now_ms);
  if (tokens_ >= 1.0) return 0;
  return std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil((1.0 - tokens_) * 1000.0 / c_.rate_per_s)));
}

}  // namespace s2::policy
