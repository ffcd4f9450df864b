// When an anchor with a session of its own moves onto the link of its account's lone device
// (docs/architecture.md §22): a pure decision over what the hub and the upstream login gate
// report, so that each rule is a row of a table test.
//
// A move is an optimisation (one upstream session instead of two); it costs the upstream about
// what a light login does: Carbons, presence, disco, a MAM page and a bookmarks read on the
// link, then the old session's unavailable presence and close. So it yields to what matters
// more: it never fails anything that waits on the anchor (only a quiet anchor moves), it waits
// for a login storm to pass (any upstream login in flight or queued: returning devices get in
// first; measured: 1,000 returning devices logged in at 78/s instead of 130/s with moves beside
// them), and moves are spread out (at most `max_per_second`), so the end of a storm does not
// turn into a storm of moves.
#pragma once

#include <cstddef>
#include <cstdint>

namespace s2::policy {

struct AnchorMoveInput {
  bool lone_device = false;     // the account has exactly one attached device
  bool link_bound = false;      // that device's upstream link is ready and bound
  bool anchor_riding = false;   // the anchor already rides a link
  bool anchor_has_own = false;  // the anchor has a bound session of its own
  bool anchor_quiet = false;    // ... ready, with no set-up, MAM page, request or answer waiting
  bool catching_up = false;     // the account's archive catch-up is running
  uint32_t logins_in_flight = 0;
  size_t logins_waiting = 0;
  uint32_t moves_this_second = 0;
  uint32_t max_per_second = 0;
};

enum class AnchorMove {
  Never,  // nothing to move (no lone device with a bound link, or already riding)
  Ride,   // no bound session of its own: take the link at once (Anchor::adopt)
  Later,  // busy (anchor, catch-up, logins, the move budget): ask again shortly
  Now,    // move (Anchor::move_onto)
};

AnchorMove decide_anchor_move(const AnchorMoveInput& in);

}  // namespace s2::policy
