// PROTOCOLS.md §10 end to end: each traffic-class row, entering and leaving, through classify(),
// route(), urgency(), csi_decide() and push_decide() together. Where s2proxy deliberately departs
// from the legacy column (correction and retraction push, groupchat flush), the row says so.
#include <doctest/doctest.h>

#include "tests/unit/policies/shapes.h"

namespace s2::policy {
namespace {

using namespace test;
using enum MessageClass;
using PT = PresenceType;
constexpr auto Flush = CsiAction::FlushThenDeliver, Hold = CsiAction::Hold;
constexpr auto Wake = PushAction::Push, Skip = PushAction::Skip;

// Entering: a device that is inactive with one stanza held (CSI column) and hibernated with a push
// registration (push column).
TEST_CASE("§10 entering: class, persistence, urgency, CSI, push") {
  struct Row {
    S shape;
    Target at;
    MessageClass cls;
    Persistence pers;
    Urgency urg;
    CsiAction csi;
    PushAction push;
  };
  // clang-format off
  const Row rows[] = {
    // shape                             at    class         persist urg   CSI    push
    {S::chat().body(),                   Bare, ChatBody,     Pers,   Urg,  Flush, Wake},
    {S::chat().body(),                   Dev,  ChatBody,     Pers,   Urg,  Flush, Wake},
    {S::normal().body(),                 Bare, NormalBody,   Pers,   Urg,  Flush, Wake},
    {S::chat().omemo(),                  Bare, Encrypted,    Pers,   Urg,  Flush, Wake},
    {S::groupchat().body(),              Dev,  Groupchat,    Kept,   Sil,  Hold,  Skip},
    {S::groupchat().body().mention(),    Dev,  Groupchat,    Kept,   Urg,  Flush, Wake},
    {S::chat().muc_x().body(),           Dev,  MucPrivate,   Pers,   Urg,  Flush, Wake},
    {S::headline().body(),               Bare, Headline,     AllOn,  Sil,  Hold,  Skip},
    {S::chat().state(),                  Bare, ChatState,    AllOn,  Sil,  Hold,  Skip},
    {S::chat().receipt(),                Dev,  Receipt,      Pers,   Sil,  Hold,  Skip},
    {S::chat().displayed(),              Bare, Marker,       Pers,   Sil,  Hold,  Skip},
    {S::chat().body().replace(),         Bare, Correction,   Pers,   Norm, Flush, Skip},
    {S::chat().body().retract().store(), Bare, Retraction,   Pers,   Sil,  Hold,  Skip},
    {S::error().linked(),                Dev,  Error,        Pers,   Norm, Flush, Skip},
    {S::presence(),                      Dev,  Presence,     OneDev, Sil,  Hold,  Skip},
    {S::subscribe(),                     Dev,  Subscription, Kept,   Urg,  Flush, Wake},
    {S::iq(),                            Dev,  Iq,           OneDev, Imm,  Flush, Skip},
  };
  // clang-format on
  for (const auto& r : rows) {
    const MessageClass c = classify(r.shape);
    INFO("§10 row: ", c, " at=", r.at);
    CHECK(c == r.cls);
    const auto d = route(c, entering(r.at), r.shape);
    CHECK(d.disposition == Deliver);
    CHECK(d.persistence == r.pers);
    const Urgency u = urgency(c, r.shape, In);
    CHECK(u == r.urg);
    CHECK(csi_decide(u, CsiQueue{true, 1, 256}) == r.csi);
    const PushTarget sleeping{DeviceState::Hibernated, true, false, 0, 30'000};
    CHECK(push_decide(u, d.persistence, sleeping) == r.push);
  }
}

// Leaving: what a session2 device (or a legacy one, where the profile matters) sends, and the
// urgency its reflection has for the account's other devices.
TEST_CASE("§10 leaving: class, persistence, sibling urgency") {
  struct Row {
    S shape;
    Target to;
    Profile prof;
    MessageClass cls;
    Persistence pers;
    Urgency urg;
  };
  // clang-format off
  const Row rows[] = {
    // shape                             to     prof class         persist urg
    {S::chat().body(),                   OBare, S2,  ChatBody,     Pers,   Norm},
    {S::chat().body(),                   OFull, S2,  ChatBody,     OneDev, Norm},
    {S::chat().body(),                   OFull, Leg, ChatBody,     Pers,   Norm},
    {S::normal().body(),                 OBare, S2,  NormalBody,   Pers,   Norm},
    {S::chat().omemo(),                  OBare, S2,  Encrypted,    Pers,   Norm},
    {S::groupchat().body(),              Room,  S2,  Groupchat,    Kept,   Sil},
    {S::chat().muc_x().body(),           Occ,   S2,  MucPrivate,   Pers,   Norm},
    {S::headline().body(),               OBare, S2,  Headline,     AllOn,  Sil},
    {S::chat().state(),                  OBare, S2,  ChatState,    AllOn,  Sil},
    {S::chat().receipt(),                OFull, S2,  Receipt,      Pers,   Sil},
    {S::chat().displayed(),              OBare, S2,  Marker,       Pers,   Sil},
    {S::chat().body().replace(),         OBare, S2,  Correction,   Pers,   Norm},
    {S::chat().body().retract().store(), OBare, S2,  Retraction,   Pers,   Sil},
    {S::error(),                         OFull, S2,  Error,        OneDev, Norm},
    {S::presence(),                      Bare,  S2,  Presence,     AllOn,  Sil},
    {S::subscribe(),                     OBare, S2,  Subscription, Kept,   Norm},
    {S::iq(),                            OBare, S2,  Iq,           OneDev, Imm},
  };
  // clang-format on
  for (const auto& r : rows) {
    const MessageClass c = classify(r.shape);
    INFO("§10 row: ", c, " to=", r.to);
    CHECK(c == r.cls);
    const auto d = route(c, leaving(r.to, r.prof), r.shape);
    CHECK(d.disposition == Deliver);
    CHECK(d.persistence == r.pers);
    CHECK(d.archive == (r.pers == Pers));  // what a device sends is archived iff persistent
    CHECK(d.upstream);                     // and all of these go upstream
    CHECK(urgency(c, r.shape, Out) == r.urg);
  }
}

}  // namespace
}  // namespace s2::policy
