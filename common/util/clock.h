// Wall-clock time as milliseconds since the Unix epoch: what is stored and
// compared for token expiry, throttling and archive timestamps. (Loop-relative
// timing uses uv_now / Timer instead.)
#pragma once

#include <chrono>
#include <cstdint>

namespace s2 {

inline int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace s2
