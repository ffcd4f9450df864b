// policies/anchor_move.h: when the anchor moves onto a lone device's link.
#include <doctest/doctest.h>

#include "policies/anchor_move.h"

using s2::policy::AnchorMove;
using s2::policy::AnchorMoveInput;

namespace {
// A lone bound device, an anchor with a quiet session of its own, nothing else going on.
AnchorMoveInput ready() {
  AnchorMoveInput in;
  in.lone_device = true;
  in.link_bound = true;
  in.anchor_has_own = true;
  in.anchor_quiet = true;
  in.max_per_second = 20;
  return in;
}
}  // namespace

TEST_CASE("anchor move: the table") {
  struct Row {
    const char* what;
    void (*change)(AnchorMoveInput&);
    AnchorMove want;
  };
  const Row rows[] = {
      {"everything ready", [](AnchorMoveInput&) {}, AnchorMove::Now},
      {"two devices", [](AnchorMoveInput& i) { i.lone_device = false; }, AnchorMove::Never},
      {"link not bound", [](AnchorMoveInput& i) { i.link_bound = false; }, AnchorMove::Never},
      {"already riding", [](AnchorMoveInput& i) { i.anchor_riding = true; }, AnchorMove::Never},
      {"no session of its own: ride at once",
       [](AnchorMoveInput& i) {
         i.anchor_has_own = false;
         i.anchor_quiet = false;
       },
       AnchorMove::Ride},
      {"no session of its own beats a login storm",
       [](AnchorMoveInput& i) {
         i.anchor_has_own = false;
         i.logins_waiting = 100;
       },
       AnchorMove::Ride},
      {"anchor busy (set-up, MAM, request)", [](AnchorMoveInput& i) { i.anchor_quiet = false; },
       AnchorMove::Later},
      {"catch-up running", [](AnchorMoveInput& i) { i.catching_up = true; }, AnchorMove::Later},
      {"a login in flight", [](AnchorMoveInput& i) { i.logins_in_flight = 1; }, AnchorMove::Later},
      {"logins queued at the gate", [](AnchorMoveInput& i) { i.logins_waiting = 3; },
       AnchorMove::Later},
      {"move budget spent", [](AnchorMoveInput& i) { i.moves_this_second = 20; },
       AnchorMove::Later},
      {"move budget nearly spent", [](AnchorMoveInput& i) { i.moves_this_second = 19; },
       AnchorMove::Now},
      {"no budget at all", [](AnchorMoveInput& i) { i.max_per_second = 0; }, AnchorMove::Later},
      {"two devices, even when all else is ready and quiet",
       [](AnchorMoveInput& i) {
         i.lone_device = false;
         i.logins_in_flight = 0;
       },
       AnchorMove::Never},
  };
  for (const auto& r : rows) {
    AnchorMoveInput in = ready();
    r.change(in);
    CAPTURE(r.what);
    CHECK(s2::policy::decide_anchor_move(in) == r.want);
  }
}
