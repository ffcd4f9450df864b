// See anchor_move.h.
#include "policies/anchor_move.h"

namespace s2::policy {

AnchorMove decide_anchor_move(const AnchorMoveInput& in) {
  if (!in.lone_device || !in.link_bound || in.anchor_riding) return AnchorMove::Never;
  if (!in.anchor_has_own) return AnchorMove::Ride;
  if (!in.anchor_quiet || in.catching_up) return AnchorMove::Later;
  if (in.logins_in_flight > 0 || in.logins_waiting > 0) return AnchorMove::Later;
  if (in.moves_this_second >= in.max_per_second) return AnchorMove::Later;
  return AnchorMove::Now;
}

}  // namespace s2::policy
