// route(): Message Routing 2.0 (ARCHITECTURE.md §2) as tables — persistence first, then the
// entering and leaving fan-out, the leaving rewrites, devices that are gone, and invariants that
// must hold for every combination of class, addressing, profile and presence.
#include <doctest/doctest.h>

#include <vector>

#include "policies/route.h"
#include "tests/unit/policies/shapes.h"

namespace s2::policy {
namespace {

using namespace test;
using PT = PresenceType;

const StanzaError kUnavailable{ErrorCondition::ServiceUnavailable, ErrorType::Cancel};

TEST_CASE("route: persistence follows addressing") {
  struct Row {
    S shape;
    Direction dir;
    Target to;
    Profile sender;
    Persistence want;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // shape                                      dir  to       prof persistence why
    // ARCHITECTURE.md §2, leaving: the table read literally by a session2 device.
    {S::chat().body(),                    Out, OBare,   S2,  Pers,   "bare ⇒ persistent"},
    {S::chat().body().no_store(),         Out, OBare,   S2,  AllOn,  "bare + no-store ⇒ online"},
    {S::chat().body().no_perm(),          Out, OBare,   S2,  AllOn,  "no-permanent-store too"},
    {S::chat().body(),                    Out, OFull,   S2,  OneDev, "full JID ⇒ that device"},
    {S::chat().body(),                    Out, Bare,    S2,  Pers,   "note to self"},
    {S::chat().body(),                    Out, Dev,     S2,  OneDev, "to a sibling device"},
    {S::chat().body(),                    Out, Foreign, S2,  OneDev, "to a non-proxy own client"},
    {S::normal().body(),                  Out, OFull,   S2,  OneDev, "normal + body to full"},
    {S::chat().omemo(),                   Out, OBare,   S2,  Pers,   "OMEMO to bare"},
    {S::chat().omemo(),                   Out, OFull,   S2,  OneDev, "OMEMO to one device"},
    // Hints move persistence either way; no-store wins a conflict.
    {S::chat().body().store(),            Out, OFull,   S2,  Pers,   "<store/> beats full JID"},
    {S::chat().body().store().no_store(), Out, OBare,   S2,  AllOn,  "store + no-store: no-store"},
    {S::chat().body().store().no_store(), Out, OFull,   S2,  OneDev, "…to a full JID as well"},
    {S::chat().state(),                   Out, OBare,   S2,  AllOn,  "chat state ephemeral"},
    {S::chat().state(),                   Out, OFull,   S2,  OneDev, "chat state to full"},
    {S::chat().state().store(),           Out, OBare,   S2,  Pers,   "<store/> keeps it"},
    {S::normal().other().store(),         Out, OBare,   S2,  Pers,   "unknown payload + store"},
    {S::headline().body().store(),        Out, OBare,   S2,  AllOn,  "headline never stored"},
    {S::chat().displayed().store(),       Out, OBare,   S2,  Pers,   "marker + store"},
    {S::chat().displayed().no_store(),    Out, OBare,   S2,  AllOn,  "marker + no-store"},
    // Leaving: what is not addressing-sensitive.
    {S::chat().receipt(),                 Out, OFull,   S2,  Pers,   "receipt: archived state"},
    {S::chat().displayed(),               Out, OFull,   S2,  Pers,   "marker to a full JID"},
    {S::chat().body().replace(),          Out, OFull,   S2,  Pers,   "correction edits history"},
    {S::chat().body().retract(),          Out, OFull,   S2,  Pers,   "retraction edits history"},
    {S::chat().body(),                    Out, Occ,     S2,  Pers,   "PM: no bare JID to use"},
    {S::chat().muc_x().body(),            Out, Occ,     S2,  Pers,   "PM with muc#user x"},
    {S::chat().muc_x().body().no_store(), Out, Occ,     S2,  OneDev, "PM + no-store"},
    {S::normal().invite(),                Out, OFull,   S2,  Pers,   "invite is always history"},
    {S::groupchat().body(),               Out, Room,    S2,  Kept,   "room MAM keeps it"},
    {S::groupchat().body().no_store(),    Out, Room,    S2,  Kept,   "hints are the room's"},
    {S::subscribe(),                      Out, OBare,   S2,  Kept,   "roster keeps it"},
    {S::presence(),                       Out, Bare,    S2,  AllOn,  "presence broadcast"},
    {S::presence(),                       Out, Room,    S2,  AllOn,  "MUC join presence"},
    {S::presence(),                       Out, OFull,   S2,  OneDev, "directed presence"},
    {S::iq(),                             Out, OBare,   S2,  OneDev, "iq: that device only"},
    {S::error(),                          Out, OFull,   S2,  OneDev, "own error reply"},
    {S::error().linked(),                 Out, OFull,   S2,  OneDev, "own error never history"},
    // Leaving from a legacy-profile device: it is a legacy sender (RFC 6121 semantics).
    {S::chat().body(),                    Out, OFull,   Leg, Pers,   "legacy resource locking"},
    {S::chat().body(),                    Out, Dev,     Leg, Pers,   "legacy to sibling"},
    {S::chat().omemo(),                   Out, OFull,   Leg, Pers,   "legacy OMEMO to full"},
    {S::chat().body().no_store(),         Out, OFull,   Leg, OneDev, "legacy + no-store"},
    {S::chat().state(),                   Out, OFull,   Leg, OneDev, "legacy chat state"},
    // Entering (§2 border rules): the legacy sender's expectations.
    {S::chat().body(),                    In,  Bare,    S2,  Pers,   "legacy chat to bare"},
    {S::chat().body(),                    In,  Dev,     S2,  Pers,   "legacy chat to full: spread"},
    {S::chat().body(),                    In,  Anc,     S2,  Pers,   "locked onto the anchor"},
    {S::normal().body(),                  In,  Dev,     S2,  Pers,   "normal + body to full"},
    {S::chat().omemo(),                   In,  Dev,     S2,  Pers,   "OMEMO to full"},
    {S::chat().body().no_store(),         In,  Bare,    S2,  AllOn,  "bare + no-store"},
    {S::chat().body().no_store(),         In,  Dev,     S2,  OneDev, "full + no-store"},
    {S::chat().state(),                   In,  Bare,    S2,  AllOn,  "chat state to bare"},
    {S::chat().state(),                   In,  Dev,     S2,  OneDev, "chat state to full"},
    {S::headline().body(),                In,  Bare,    S2,  AllOn,  "headline"},
    {S::headline().body(),                In,  Dev,     S2,  OneDev, "headline to full"},
    {S::chat().receipt(),                 In,  Dev,     S2,  Pers,   "receipt: silent history"},
    {S::chat().displayed(),               In,  Bare,    S2,  Pers,   "marker: silent history"},
    {S::chat().body().replace(),          In,  Dev,     S2,  Pers,   "correction"},
    {S::chat().body().retract(),          In,  Bare,    S2,  Pers,   "retraction"},
    {S::chat().muc_x().body(),            In,  Dev,     S2,  Pers,   "received MUC PM"},
    {S::groupchat().body(),               In,  Dev,     S2,  Kept,   "room MAM"},
    {S::error().linked(),                 In,  Dev,     S2,  Pers,   "error linked to archive"},
    {S::error(),                          In,  Dev,     S2,  OneDev, "error to ephemeral send"},
    {S::error(),                          In,  Bare,    S2,  AllOn,  "unlinked bounce to bare"},
    {S::error().linked().no_store(),      In,  Dev,     S2,  OneDev, "no-store on an error"},
    {S::presence(),                       In,  Dev,     S2,  OneDev, "presence at a link"},
    {S::presence(),                       In,  Bare,    S2,  AllOn,  "presence at the anchor"},
    {S::subscribe(),                      In,  Dev,     S2,  Kept,   "pending in the roster"},
    {S::iq(),                             In,  Dev,     S2,  OneDev, "iq"},
    {S::propose(),                        In,  Bare,    S2,  AllOn,  "JMI without store"},
    {S::propose().store(),                In,  Bare,    S2,  Pers,   "JMI + store"},
    // Entering carbons: a copy for the whole account, whatever the inner `to`.
    {S::chat().body().sent_cc(),          In,  OFull,   S2,  Pers,   "sent by a non-proxy client"},
    {S::chat().state().sent_cc(),         In,  OFull,   S2,  AllOn,  "its chat state"},
    {S::chat().body().rcvd_cc(),          In,  Foreign, S2,  Pers,   "non-proxy client got it"},
    {S::chat().body().sent_cc(),          In,  OFull,   Leg, Pers,   "profile irrelevant entering"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why, " dir=", r.dir, " to=", r.to);
    const Addressing a{r.dir, r.to, r.sender, true};
    CHECK(persistence(classify(r.shape), r.shape, a) == r.want);
    CHECK(route(classify(r.shape), a, r.shape).persistence == r.want);
  }
}

// What the hub does with what arrives from upstream (Direction::FromLegacy). The outcome column
// folds disposition, fan-out and proxy together; archiving always equals ToAll (see invariants).
enum class Outcome { ToAll, ToOnline, ToOne, ToProxy, Dropped, Bounced };
constexpr auto ToAll = Outcome::ToAll, ToOnline = Outcome::ToOnline, ToOne = Outcome::ToOne,
               ToProxy = Outcome::ToProxy, Dropped = Outcome::Dropped, Bounced = Outcome::Bounced;

doctest::String toString(Outcome o) {
  const char* names[] = {"to_all", "to_online", "to_one", "to_proxy", "dropped", "bounced"};
  return names[static_cast<int>(o)];
}

Outcome outcome(const RouteDecision& d) {
  if (d.disposition == Disposition::Drop) return Dropped;
  if (d.disposition == Disposition::Bounce) return Bounced;
  if (d.proxy) return ToProxy;
  switch (d.devices) {
    case Fanout::AllDevices:
      return ToAll;
    case Fanout::AllOnlineDevices:
      return ToOnline;
    case Fanout::OneDevice:
      return ToOne;
    case Fanout::None:
      break;
  }
  return Dropped;
}

TEST_CASE("route: entering fan-out") {
  struct Row {
    S shape;
    Target at;
    bool present;
    Outcome want;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // shape                          at       here outcome   why
    // Persistent: archived, every device now or at its next sync, whatever the addressing.
    {S::chat().body(),                Bare,    yes, ToAll,    "bare: every device"},
    {S::chat().body(),                Dev,     yes, ToAll,    "legacy sender expects it spread"},
    {S::chat().body(),                Dev,     no,  ToAll,    "device gone: still history"},
    {S::chat().body(),                Anc,     yes, ToAll,    "to the anchor's resource"},
    {S::chat().body().rcvd_cc(),      Foreign, yes, ToAll,    "a non-proxy client got it"},
    {S::chat().body().sent_cc(),      OBare,   yes, ToAll,    "a non-proxy client sent it"},
    {S::normal().body(),              Bare,    yes, ToAll,    "normal + body"},
    {S::chat().omemo(),               Bare,    yes, ToAll,    "OMEMO"},
    {S::chat().muc_x().body(),        Dev,     yes, ToAll,    "received MUC PM"},
    {S::normal().invite(),            Bare,    yes, ToAll,    "invitation"},
    {S::chat().receipt(),             Dev,     yes, ToAll,    "receipt state for all"},
    {S::chat().displayed(),           Bare,    yes, ToAll,    "marker"},
    {S::chat().body().replace(),      Bare,    yes, ToAll,    "correction"},
    {S::chat().body().retract(),      Dev,     yes, ToAll,    "retraction"},
    {S::normal().other().store(),     Bare,    yes, ToAll,    "unknown payload + store"},
    {S::propose().store(),            Bare,    yes, ToAll,    "a call rings on every device"},
    {S::error().linked(),             Dev,     yes, ToAll,    "error about history"},
    {S::error().linked(),             Dev,     no,  ToAll,    "…sending device gone"},
    // Ephemeral to the account: the devices online now.
    {S::chat().body().no_store(),     Bare,    yes, ToOnline, "bare + no-store"},
    {S::chat().state(),               Bare,    yes, ToOnline, "chat state to the bare JID"},
    {S::chat().state(),               Anc,     yes, Bounced,  "rerouted full-JID stanza (ejabberd)"},
    {S::chat().body().no_store(),     Anc,     yes, Bounced,  "…ephemeral body too: never rerouted"},
    {S::chat().state(),               Bare,    no,  ToOnline, "the bare JID is always the account"},
    {S::chat().state().sent_cc(),     OFull,   yes, ToOnline, "non-proxy client's state"},
    {S::headline().body(),            Bare,    yes, ToOnline, "headline to the bare JID"},
    {S::normal().other(),             Bare,    yes, ToOnline, "unknown payload"},
    {S::error(),                      Bare,    yes, ToOnline, "bounce not linked to history"},
    // Ephemeral to one device: that device, never another one.
    {S::chat().state(),               Dev,     yes, ToOne,    "chat state to a full JID"},
    {S::chat().state(),               Dev,     no,  Bounced,  "gone: bounce, never reroute"},
    {S::chat().body().no_store(),     Dev,     no,  Bounced,  "ephemeral body to a gone device"},
    {S::headline().body(),            Dev,     yes, ToOne,    "headline to a full JID"},
    {S::headline().body(),            Dev,     no,  Dropped,  "headlines get no error"},
    {S::headline().body(),            Anc,     yes, Dropped,  "each link got a copy"},
    {S::error(),                      Dev,     yes, ToOne,    "error about an ephemeral send"},
    {S::error(),                      Dev,     no,  Dropped,  "never an error for an error"},
    // Groupchat: the occupant device only; the room's MAM is the history.
    {S::groupchat().body(),           Dev,     yes, ToOne,    "occupant device only"},
    {S::groupchat().body(),           Dev,     no,  Bounced,  "room drops the ghost"},
    {S::groupchat().body(),           Bare,    yes, Dropped,  "the anchor is no occupant"},
    {S::groupchat().body().rcvd_cc(), Foreign, yes, Dropped,  "groupchat is never carbon-copied"},
    // Presence and subscriptions: each link hears its own; the anchor's copy is the proxy's.
    {S::presence(),                   Dev,     yes, ToOne,    "the link's own presence broadcast"},
    {S::presence(),                   Dev,     no,  Dropped,  "RFC 6121 §8.5.3.2.2: ignore"},
    {S::presence(),                   Bare,    yes, ToProxy,  "the anchor's copy"},
    {S::unavailable(),                Anc,     yes, ToProxy,  "the anchor's copy"},
    {S::subscribe(),                  Dev,     yes, ToOne,    "request heard on the link"},
    {S::subscribe(),                  Dev,     no,  Dropped,  "roster resends it"},
    {S::subscribe(),                  Bare,    yes, ToProxy,  "the anchor's copy"},
    // Iq: that device only, or the proxy itself.
    {S::iq(),                         Dev,     yes, ToOne,    "iq to a device"},
    {S::iq_set(),                     Dev,     no,  Bounced,  "RFC 6121 §8.5.3.2.3"},
    {S::iq_result(),                  Dev,     no,  Dropped,  "never answer a result"},
    {S::iq_error(),                   Dev,     no,  Dropped,  "never answer an error"},
    {S::iq().for_proxy(),             Dev,     yes, ToProxy,  "server ping to a link"},
    {S::iq().for_proxy(),             Dev,     no,  ToProxy,  "…answered while the device sleeps"},
    {S::iq(),                         Anc,     yes, ToProxy,  "the anchor answers"},
    {S::iq_set(),                     Bare,    yes, ToProxy,  "roster push to the anchor"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why, " at=", r.at, " present=", r.present);
    const auto d = route(classify(r.shape), entering(r.at, r.present), r.shape);
    CHECK(outcome(d) == r.want);
    CHECK(d.archive == (r.want == ToAll));
    CHECK_FALSE(d.upstream);
    CHECK_FALSE(d.include_sender);
    CHECK(d.rewrites == Rewrites{});
    if (r.want == Bounced) CHECK(d.error == kUnavailable);
  }
}

// What the hub does with what a device sends (Direction::FromDevice): which devices get it (the
// sender too?), whether it goes upstream, whether the proxy consumes it. Archived ⇔ All.
TEST_CASE("route: leaving fan-out") {
  struct Row {
    S shape;
    Target to;
    Profile sender;
    Fanout devices;
    bool self, up, proxy;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // shape                              to       prof  devices self  up    proxy  why
    {S::chat().body(),                      OBare,   S2,  All,    yes, yes, no,  "persistent"},
    {S::chat().body(),                      OBare,   Leg, All,    no,  yes, no,  "no self echo"},
    {S::chat().body().priv(),               OBare,   S2,  All,    yes, yes, no,  "one history"},
    {S::chat().body().no_store(),           OBare,   S2,  Online, no,  yes, no,  "ephemeral"},
    {S::chat().body().no_store().priv(),    OBare,   S2,  NoDev,  no,  yes, no,  "private"},
    {S::chat().body().no_store().no_copy(), OBare,   S2,  NoDev,  no,  yes, no,  "no-copy"},
    {S::chat().body(),                      OFull,   S2,  NoDev,  no,  yes, no,  "one resource"},
    {S::chat().body(),                      OFull,   Leg, All,    no,  yes, no,  "legacy: spread"},
    {S::chat().body(),                      Foreign, S2,  NoDev,  no,  yes, no,  "own non-proxy"},
    {S::chat().body(),                      Occ,     S2,  All,    yes, yes, no,  "MUC PM"},
    {S::chat().muc_x().body(),              Occ,     Leg, All,    no,  yes, no,  "legacy PM"},
    {S::chat().body(),                      Bare,    S2,  All,    yes, yes, no,  "note to self"},
    {S::chat().body(),                      Anc,     S2,  All,    yes, no,  no,  "proxy's own"},
    {S::chat().body(),                      Dev,     S2,  One,    no,  no,  no,  "sibling only"},
    {S::chat().body(),                      Dev,     Leg, All,    no,  no,  no,  "legacy sibling"},
    {S::chat().omemo(),                     OBare,   S2,  All,    yes, yes, no,  "OMEMO"},
    {S::normal().invite(),                  OBare,   S2,  All,    yes, yes, no,  "invite"},
    {S::chat().receipt(),                   OFull,   S2,  All,    yes, yes, no,  "receipt"},
    {S::chat().displayed(),                 OBare,   Leg, All,    no,  yes, no,  "marker"},
    {S::chat().body().replace(),            OBare,   S2,  All,    yes, yes, no,  "correction"},
    {S::chat().state(),                     OBare,   S2,  Online, no,  yes, no,  "carbon-like"},
    {S::chat().state().priv(),              OBare,   S2,  NoDev,  no,  yes, no,  "private"},
    {S::chat().state(),                     OFull,   S2,  NoDev,  no,  yes, no,  "one resource"},
    {S::chat().state(),                     Bare,    S2,  Online, no,  no,  no,  "to own account"},
    {S::chat().state().priv(),              Bare,    S2,  Online, no,  no,  no,  "still own"},
    {S::headline().body(),                  OBare,   S2,  NoDev,  no,  yes, no,  "not copied"},
    {S::groupchat().body(),                 Room,    S2,  NoDev,  no,  yes, no,  "room reflects"},
    {S::presence(),                         Bare,    S2,  NoDev,  no,  yes, yes, "broadcast"},
    {S::unavailable(),                      Bare,    S2,  NoDev,  no,  yes, yes, "going away"},
    {S::presence(),                         Room,    S2,  NoDev,  no,  yes, no,  "MUC join"},
    {S::presence(),                         OFull,   S2,  NoDev,  no,  yes, no,  "directed"},
    {S::presence(PT::Probe),                Bare,    S2,  NoDev,  no,  yes, no,  "probe"},
    {S::subscribe(),                        OBare,   S2,  NoDev,  no,  yes, no,  "roster"},
    {S::iq(),                               OBare,   S2,  NoDev,  no,  yes, no,  "iq upstream"},
    {S::iq(),                               Bare,    S2,  NoDev,  no,  yes, no,  "roster get"},
    {S::iq().for_proxy(),                   Bare,    S2,  NoDev,  no,  no,  yes, "MAM query"},
    {S::iq_set().for_proxy(),               Bare,    Leg, NoDev,  no,  no,  yes, "carbons on"},
    {S::iq(),                               Anc,     S2,  NoDev,  no,  no,  yes, "to the anchor"},
    {S::iq(),                               Dev,     S2,  One,    no,  no,  no,  "Jingle sibling"},
    {S::error(),                            OFull,   S2,  NoDev,  no,  yes, no,  "error reply"},
    {S::error(),                            Dev,     S2,  One,    no,  no,  no,  "to sibling"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why, " to=", r.to);
    const auto d = route(classify(r.shape), leaving(r.to, r.sender), r.shape);
    CHECK(d.disposition == Deliver);
    CHECK(d.devices == r.devices);
    CHECK(d.archive == (r.devices == All));
    CHECK(d.include_sender == r.self);
    CHECK(d.upstream == r.up);
    CHECK(d.proxy == r.proxy);
  }
}

TEST_CASE("route: leaving rewrites") {
  struct Row {
    S shape;
    Target to;
    Profile sender;
    bool no_store, priv, origin_id, neg_priority, strip;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // shape                        to     prof  nostore priv oid  prio strip why
    {S::chat().body(),            OBare,   S2,  no,  no,  yes, no,  yes, "persistent: origin-id"},
    {S::chat().body(),            OFull,   S2,  yes, yes, no,  no,  yes, "ephemeral full JID"},
    {S::chat().body(),            OFull,   Leg, no,  no,  yes, no,  yes, "legacy: persistent"},
    {S::chat().body(),            Foreign, S2,  yes, yes, no,  no,  yes, "own non-proxy client"},
    {S::chat().body().store(),    OFull,   S2,  no,  no,  yes, no,  yes, "asked to store"},
    {S::chat().omemo(),           OFull,   S2,  yes, yes, no,  no,  yes, "OMEMO to one device"},
    {S::chat().state(),           OFull,   S2,  no,  no,  no,  no,  yes, "standalone stays standalone"},
    {S::chat().state(),           OBare,   S2,  no,  no,  no,  no,  yes, "bare: nothing to add"},
    {S::chat().body().no_store(), OBare,   S2,  no,  no,  no,  no,  yes, "bare + own no-store"},
    {S::chat().receipt(),         OFull,   S2,  no,  no,  yes, no,  yes, "receipt: persistent"},
    {S::chat().muc_x().body(),    Occ,     S2,  no,  no,  yes, no,  yes, "PM: persistent"},
    {S::groupchat().body(),       Room,    S2,  no,  no,  yes, no,  yes, "match the reflection"},
    {S::chat().body(),            Bare,    S2,  no,  no,  yes, no,  yes, "note to self"},
    {S::error(),                  OFull,   S2,  no,  no,  no,  no,  yes, "errors unchanged"},
    {S::presence(),               Bare,    S2,  no,  no,  no,  yes, no,  "link priority -1"},
    {S::unavailable(),            Bare,    S2,  no,  no,  no,  no,  no,  "no priority needed"},
    {S::presence(),               Room,    S2,  no,  no,  no,  no,  no,  "directed: as sent"},
    {S::iq(),                     OBare,   S2,  no,  no,  no,  no,  no,  "iq as sent"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why, " to=", r.to);
    const auto w = route(classify(r.shape), leaving(r.to, r.sender), r.shape).rewrites;
    CHECK(w.add_no_store == r.no_store);
    CHECK(w.add_private == r.priv);
    CHECK(w.add_origin_id == r.origin_id);
    CHECK(w.negative_priority == r.neg_priority);
    CHECK(w.strip_claimed_stanza_ids == r.strip);
  }
}

// ARCHITECTURE.md §2: full JID ⇒ that device only, never rerouted, an error back if it is gone.
TEST_CASE("route: a device that is gone") {
  struct Row {
    S shape;
    Direction dir;
    Disposition disp;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // shape                              dir  disposition why
    {S::chat().state(),           In,  Bounce,  "sender unlocks the resource (RFC 6121 §5.1)"},
    {S::chat().state(),           Out, Bounce,  "sibling gone: the sending device learns it"},
    {S::chat().body(),            Out, Bounce,  "session2 body to a gone sibling"},
    {S::jmi(CallSignal::Proceed), In,  Bounce,  "call signal to a gone device"},
    {S::normal().other(),         In,  Bounce,  "unknown payload"},
    {S::groupchat().body(),       In,  Bounce,  "RFC 6121 §8.5.3.2.1 groupchat"},
    {S::iq(IqType::Get),          In,  Bounce,  "RFC 6121 §8.5.3.2.3 iq get"},
    {S::iq_set(),                 Out, Bounce,  "iq set to a gone sibling"},
    {S::iq_result(),              In,  Drop,    "RFC 6120 §8.2.3: never answer a result"},
    {S::iq_error(),               Out, Drop,    "…or an error"},
    {S::error(),                  In,  Drop,    "RFC 6120 §8.3.1: no error for an error"},
    {S::error(),                  Out, Drop,    "…in both directions"},
    {S::headline().body(),        In,  Drop,    "headlines are fire-and-forget"},
    {S::presence(),               In,  Drop,    "RFC 6121 §8.5.3.2.2: ignore"},
    {S::subscribe(),              In,  Drop,    "the roster resends pending requests"},
    // Persistent stanzas are never for one device, so a gone device changes nothing.
    {S::chat().body(),            In,  Deliver, "legacy chat to a gone full JID: history"},
    {S::chat().body(),            Out, Bounce,  "…but a session2 sibling send is not"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why, " dir=", r.dir);
    const auto c = classify(r.shape);
    const Addressing gone{r.dir, Target::OwnDevice, Profile::Session2, false};
    const auto d = route(c, gone, r.shape);
    CHECK(d.disposition == r.disp);
    CHECK(d.error.has_value() == (r.disp == Disposition::Bounce));
    if (d.error) CHECK(*d.error == kUnavailable);
  }
}

// Properties of every combination: the tables above pick the rows that matter; these rules must
// hold for all of them.
TEST_CASE("route: invariants over every class × addressing × profile × presence") {
  const std::vector<S> shapes = {
      S::chat().body(),
      S::chat().body().no_store(),
      S::chat().body().store(),
      S::normal().body(),
      S::chat().omemo(),
      S::groupchat().body(),
      S::chat().muc_x().body(),
      S::normal().invite(),
      S::headline().body(),
      S::chat().state(),
      S::chat().state().store(),
      S::chat().receipt(),
      S::chat().displayed(),
      S::chat().body().replace(),
      S::chat().body().retract(),
      S::propose(),
      S::error(),
      S::error().linked(),
      S::presence(),
      S::unavailable(),
      S::subscribe(),
      S::iq(),
      S::iq_result(),
      S::iq().for_proxy(),
      S::normal().other(),
      S::chat().body().priv(),
      S::chat().state().no_copy(),
  };
  const Target targets[] = {Bare, Anc, Dev, Foreign, OBare, OFull, Room, Occ};
  int combinations = 0;
  for (const auto& s : shapes) {
    const auto c = classify(s);
    for (const auto dir : {In, Out}) {
      for (const auto to : targets) {
        for (const auto prof : {S2, Leg}) {
          for (const bool present : {true, false}) {
            ++combinations;
            const Addressing a{dir, to, prof, present};
            const auto d = route(c, a, s);
            INFO("class=", c, " dir=", dir, " to=", to, " present=", present);
            // Archived ⇔ persistent and delivered; only persistent stanzas reach offline devices.
            CHECK(d.archive == (d.persistence == Pers && d.disposition == Deliver));
            CHECK((d.devices == All) == d.archive);
            // Bounce ⇔ an error to return; nothing else happens to a bounced or dropped stanza.
            CHECK((d.disposition == Bounce) == d.error.has_value());
            if (d.disposition != Deliver) {
              CHECK(d.devices == NoDev);
              CHECK_FALSE(d.upstream);
              CHECK_FALSE(d.archive);
            }
            // Never rerouted: a stanza for one device that is gone reaches no other device.
            if (to == Dev && !present && d.persistence != Pers) CHECK(d.devices == NoDev);
            // Only one device is ever chosen for one-device stanzas, and only when it is there.
            if (d.devices == One) CHECK((to == Dev && present));
            // Entering stanzas never go back upstream; leaving ones only as the device sent them.
            if (dir == In) CHECK_FALSE(d.upstream);
            // Iq is never history, never fanned out.
            if (c == MessageClass::Iq) CHECK((d.devices == NoDev || d.devices == One));
            // Ephemeral-to-one-resource sends that go upstream are hidden from MAM and Carbons.
            if (dir == Out && d.upstream && d.persistence == OneDev &&
                s.f.kind == StanzaKind::Message && c != MessageClass::Error &&
                c != MessageClass::ChatState) {
              CHECK(d.rewrites.add_no_store);
              CHECK(d.rewrites.add_private);
            }
            // Everything persistent a device sends carries an origin-id.
            if (dir == Out && d.archive) CHECK(d.rewrites.add_origin_id);
          }
        }
      }
    }
  }
  CHECK(combinations == static_cast<int>(shapes.size()) * 2 * 8 * 2 * 2);
}

TEST_CASE("route: error names are the RFC 6120 ones") {
  CHECK(to_string(ErrorCondition::ServiceUnavailable) == "service-unavailable");
  CHECK(to_string(ErrorType::Cancel) == "cancel");
  CHECK(to_string(ErrorType::Wait) == "wait");
}

}  // namespace
}  // namespace s2::policy
