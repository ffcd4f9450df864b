// CSI queue decisions (csi.h): hold the silent, flush for the rest, replace superseded state,
// flush on overflow — never drop.
#include <doctest/doctest.h>

#include "policies/csi.h"
#include "tests/unit/policies/shapes.h"

namespace s2::policy {
namespace {

using namespace test;
using A = CsiAction;
using PT = PresenceType;

TEST_CASE("csi: decisions by urgency and queue state") {
  struct Row {
    Urgency u;
    bool inactive;
    std::size_t held, limit;
    bool same_key;
    A want;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // urgency inactive held  limit same key  action                 why
    {Sil,  no,  0,   256, no,  A::DeliverNow,       "active: nothing held"},
    {Urg,  no,  0,   256, no,  A::DeliverNow,       "active: urgent"},
    {Imm,  no,  0,   256, no,  A::DeliverNow,       "active: iq"},
    {Sil,  no,  3,   256, no,  A::FlushThenDeliver, "just went active"},
    {Sil,  yes, 0,   256, no,  A::Hold,             "silent waits"},
    {Sil,  yes, 100, 256, no,  A::Hold,             "still room"},
    {Sil,  yes, 255, 256, no,  A::Hold,             "last free slot"},
    {Sil,  yes, 256, 256, no,  A::FlushThenDeliver, "full: flush, never drop"},
    {Sil,  yes, 300, 256, no,  A::FlushThenDeliver, "limit lowered by reload"},
    {Sil,  yes, 0,   0,   no,  A::FlushThenDeliver, "limit 0: holding off"},
    {Sil,  yes, 5,   256, yes, A::Replace,          "newer presence/state"},
    {Sil,  yes, 256, 256, yes, A::Replace,          "replacing needs no room"},
    {Sil,  no,  0,   256, yes, A::DeliverNow,       "active: no coalescing"},
    {Norm, yes, 0,   256, no,  A::DeliverNow,       "normal, empty queue"},
    {Norm, yes, 7,   256, no,  A::FlushThenDeliver, "normal flushes"},
    {Urg,  yes, 0,   256, no,  A::DeliverNow,       "urgent, empty queue"},
    {Urg,  yes, 7,   256, no,  A::FlushThenDeliver, "urgent flushes"},
    {Urg,  yes, 7,   256, yes, A::FlushThenDeliver, "keys only matter held"},
    {Imm,  yes, 0,   256, no,  A::DeliverNow,       "iq never queued"},
    {Imm,  yes, 7,   256, no,  A::FlushThenDeliver, "…nor overtakes the queue"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why, " urgency=", r.u);
    CHECK(csi_decide(r.u, CsiQueue{r.inactive, r.held, r.limit}, r.same_key) == r.want);
  }
}

TEST_CASE("csi: coalescing keys") {
  struct Row {
    S shape;
    std::string_view from;
    std::optional<std::string> want;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // shape                        from       key                       why
    {S::presence(),                 "b@x/r",   "presence\x1f" "b@x/r",   "presence per JID"},
    {S::unavailable(),              "b@x/r",   "presence\x1f" "b@x/r",   "same key"},
    {S::presence(),                 "r@c.x/n", "presence\x1f" "r@c.x/n", "occupant"},
    {S::subscribe(),                "b@x",     std::nullopt,             "requests kept"},
    {S::presence(PT::Unsubscribed), "b@x",     std::nullopt,             "roster change"},
    {S::presence(PT::Error),        "r@c.x/n", std::nullopt,             "errors kept"},
    {S::presence(PT::Probe),        "b@x",     std::nullopt,             "probes kept"},
    {S::chat().state(),             "b@x/r",   "chatstate\x1f" "b@x/r",  "chat state"},
    {S::chat().state().store(),     "b@x/r",   std::nullopt,             "asked to keep"},
    {S::chat().state().other(),     "b@x/r",   std::nullopt,             "payload along"},
    {S::chat().displayed(),         "b@x/r",   std::nullopt,             "markers kept"},
    {S::chat().receipt(),           "b@x/r",   std::nullopt,             "receipts kept"},
    {S::headline().body(),          "ps.x",    std::nullopt,             "headlines kept"},
    {S::groupchat().state(),        "r@c.x/n", std::nullopt,             "room stays"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why);
    CHECK(csi_coalesce_key(classify(r.shape), r.shape, r.from) == r.want);
  }
  // Presence and chat state of the same sender never supersede each other.
  CHECK(csi_coalesce_key(MessageClass::Presence, S::presence(), "a@x/r") !=
        csi_coalesce_key(MessageClass::ChatState, S::chat().state(), "a@x/r"));
}

// A run of stanzas through a simulated device queue: the policy keeps order and loses nothing.
TEST_CASE("csi: a sequence through a bounded queue") {
  struct Step {
    Urgency u;
    bool same_key;
    A want;
    std::size_t held_after;
  };
  // clang-format off
  const Step steps[] = {
    // urgency same key  action                held afterwards
    {Sil, no,  A::Hold,             1},
    {Sil, no,  A::Hold,             2},
    {Sil, yes, A::Replace,          2},
    {Sil, no,  A::Hold,             3},  // limit 3 reached
    {Sil, no,  A::FlushThenDeliver, 0},  // overflow flushes 3, delivers the 4th
    {Sil, no,  A::Hold,             1},
    {Urg, no,  A::FlushThenDeliver, 0},  // a message with a body
    {Imm, no,  A::DeliverNow,       0},
  };
  // clang-format on
  CsiQueue q{true, 0, 3};
  for (const auto& s : steps) {
    const A got = csi_decide(s.u, q, s.same_key);
    CHECK(got == s.want);
    if (got == A::Hold) ++q.held;
    if (got == A::FlushThenDeliver) q.held = 0;
    CHECK(q.held == s.held_after);
  }
}

}  // namespace
}  // namespace s2::policy
