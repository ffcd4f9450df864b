// See health.h.
#include "policies/health.h"

#include <cmath>

namespace s2::policy {

std::string anchors_problem(const AnchorHealth& h) {
  if (h.anchors <= 0 || h.ready > 0 || h.uptime_s < kAnchorGraceSeconds) return {};
  return "no anchor is logged in upstream (0 of " + std::to_string(std::lround(h.anchors)) + ", " +
         std::to_string(std::lround(h.uptime_s)) +
         " s after start): the upstream is unreachable or refuses the logins";
}

}  // namespace s2::policy
