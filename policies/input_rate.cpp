// See input_rate.h.
#include "policies/input_rate.h"

#include <algorithm>
#include <cmath>

namespace s2::policy {

InputRate::InputRate(InputRateConfig c, int64_t now_ms)
    : c_(c),
      bucket_(static_cast<double>(c.burst_bytes)),
      last_ms_(now_ms),
      window_start_ms_(now_ms) {}

int64_t InputRate::on_bytes(uint64_t n, int64_t now_ms) {
  if (c_.bytes_per_s == 0) return 0;
  const double rate = static_cast<double>(c_.bytes_per_s);
  if (now_ms > last_ms_) {
    bucket_ = std::min(static_cast<double>(c_.burst_bytes),
                       bucket_ + rate * static_cast<double>(now_ms - last_ms_) / 1000.0);
    last_ms_ = now_ms;
  }
  bucket_ -= static_cast<double>(n);
  if (bucket_ >= 0) return 0;
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(-bucket_ * 1000.0 / rate)));
}

bool InputRate::on_stanza(int64_t now_ms) {
  if (c_.max_stanzas_per_s == 0 || c_.window_s == 0) return false;
  const int64_t half = static_cast<int64_t>(c_.window_s) * 500;  // half a window, ms
  if (now_ms - window_start_ms_ >= 2 * half) {
    previous_ = 0;
    current_ = 0;
    window_start_ms_ = now_ms;
  } else if (now_ms - window_start_ms_ >= half) {
    previous_ = current_;
    current_ = 0;
    window_start_ms_ += half;
  }
  ++current_;
  // Stanzas in the last full window: this half plus the overlapping share of
  // the previous one.
  const double into = static_cast<double>(now_ms - window_start_ms_) / static_cast<double>(half);
  const double estimate =
      static_cast<double>(current_) + static_cast<double>(previous_) * (1.0 - into);
  return estimate > static_cast<double>(c_.max_stanzas_per_s) * c_.window_s;
}

}  // namespace s2::policy
