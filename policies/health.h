// `s2proxy health`'s verdict on the anchors (issue 13 item 7), pure: the
// command reads the numbers from the daemon's /metrics.
#pragma once

#include <string>

namespace s2::policy {

struct AnchorHealth {
  double anchors = 0;   // s2proxy_anchors: accounts keeping an anchor
  double ready = 0;     // s2proxy_anchors_ready: of those, logged in upstream
  double uptime_s = 0;  // now - process_start_time_seconds
};

// Anchors log in one by one after a start (paced); a daemon that has had a
// minute and still has none logged in cannot reach the upstream or is
// refused there. Some down is degraded, not unhealthy (one account's changed
// password must not restart the container). "" when healthy, else why not.
std::string anchors_problem(const AnchorHealth& h);

inline constexpr double kAnchorGraceSeconds = 60;

}  // namespace s2::policy
