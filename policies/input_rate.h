// Flood control for one client connection (issue 13 item 2), pure: the
// session feeds it what it read and each stanza, with the time.
//
// Two limits, as Prosody's mod_limits and its stanza-rate cousins do it:
//   * bytes: a token bucket (rate per second, burst). When a read leaves the
//     bucket negative, the session stops reading for as long as the bucket
//     needs to refill to zero — TCP pushes back on the client, nothing is cut
//     and nothing already read is dropped;
//   * stanzas: a sustained rate over a window (e.g. more than 200/s on average
//     over 10 s). Beyond it the client is not pacing at all (the byte limit
//     alone lets tiny stanzas through by the thousand), so the stream ends
//     with policy-violation.
#pragma once

#include <cstdint>

namespace s2::policy {

struct InputRateConfig {
  uint64_t bytes_per_s = 1 << 20;    // 0: no byte limit
  uint64_t burst_bytes = 4 << 20;    // bucket size (at least one read buffer)
  uint32_t max_stanzas_per_s = 200;  // average over the window; 0: no ceiling
  uint32_t window_s = 10;
};

class InputRate {
 public:
  InputRate() = default;
  InputRate(InputRateConfig c, int64_t now_ms);

  // `n` bytes were read at now_ms. Returns how long to stop reading (ms, 0:
  // keep reading).
  int64_t on_bytes(uint64_t n, int64_t now_ms);
  // One stanza at now_ms. True when the sustained rate is over the ceiling.
  bool on_stanza(int64_t now_ms);

  double bucket() const { return bucket_; }

 private:
  InputRateConfig c_{};
  double bucket_ = 0;
  int64_t last_ms_ = 0;
  // The window as two halves: the current one and the one before it,
  // weighted by how much of it still overlaps (a sliding-window estimate
  // that needs no per-stanza memory).
  int64_t window_start_ms_ = 0;
  uint64_t current_ = 0;
  uint64_t previous_ = 0;
};

}  // namespace s2::policy
