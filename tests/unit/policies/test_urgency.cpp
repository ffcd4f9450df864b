// urgency(): PROTOCOLS.md §10's urgency column, the groupchat mention/preference rule, hints that
// do not change urgency, and the cap on what the account sent itself (urgency.h).
#include <doctest/doctest.h>

#include "policies/urgency.h"
#include "tests/unit/policies/shapes.h"

namespace s2::policy {
namespace {

using namespace test;
using PT = PresenceType;
constexpr auto kNever = MucNotify::Never, kMention = MucNotify::OnMention,
               kAlways = MucNotify::Always;

TEST_CASE("urgency: class, direction and preferences") {
  struct Row {
    S shape;
    Direction dir;
    MucNotify muc;
    Urgency want;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // shape                                           dir  room pref urgency why
    // §10 "→ urgency" column, entering.
    {S::chat().body(),                            In,  kMention, Urg,  "chat + body"},
    {S::normal().body(),                          In,  kMention, Urg,  "normal + body"},
    {S::chat().omemo(),                           In,  kMention, Urg,  "OMEMO without body"},
    {S::chat().muc_x().body(),                    In,  kMention, Urg,  "MUC PM"},
    {S::normal().invite(),                        In,  kMention, Urg,  "invitation"},
    {S::headline().body(),                        In,  kMention, Sil,  "headline"},
    {S::chat().state(),                           In,  kMention, Sil,  "never urgent"},
    {S::chat().receipt(),                         In,  kMention, Sil,  "receipt"},
    {S::chat().displayed(),                       In,  kMention, Sil,  "marker never urgent"},
    {S::chat().body().replace(),                  In,  kMention, Norm, "correction"},
    {S::chat().body().retract(),                  In,  kMention, Sil,  "fallback body ignored"},
    {S::error(),                                  In,  kMention, Norm, "error reply"},
    {S::presence(),                               In,  kMention, Sil,  "never urgent"},
    {S::unavailable(),                            In,  kMention, Sil,  "unavailable"},
    {S::subscribe(),                              In,  kMention, Urg,  "subscription request"},
    {S::presence(PT::Subscribed),                 In,  kMention, Norm, "subscription answer"},
    {S::presence(PT::Unsubscribed),               In,  kMention, Norm, "subscription revoked"},
    {S::iq(),                                     In,  kMention, Imm,  "iq: never queued"},
    {S::iq_result(),                              Out, kMention, Imm,  "iq result too"},
    {S::normal().other(),                         In,  kMention, Sil,  "unknown payload"},
    // Calls: a proposal must ring, the rest only updates the call UI.
    {S::propose(),                                In,  kMention, Urg,  "JMI propose"},
    {S::jmi(CallSignal::Retract),                 In,  kMention, Norm, "caller hung up"},
    {S::jmi(CallSignal::Accept),                  In,  kMention, Norm, "answered elsewhere"},
    // Groupchat: urgent only on mention or preference.
    {S::groupchat().body(),                       In,  kMention, Sil,  "busy room waits"},
    {S::groupchat().body().mention(),             In,  kMention, Urg,  "mention"},
    {S::groupchat().omemo().mention(),            In,  kMention, Urg,  "encrypted mention"},
    {S::groupchat().body(),                       In,  kAlways,  Urg,  "room set to always"},
    {S::groupchat().body().mention(),             In,  kNever,   Sil,  "muted room"},
    {S::groupchat().state(),                      In,  kAlways,  Sil,  "MUC chat state"},
    {S::groupchat().state().mention(),            In,  kAlways,  Sil,  "no content"},
    {S::groupchat().subject(),                    In,  kMention, Norm, "room subject change"},
    {S::groupchat().displayed(),                  In,  kAlways,  Sil,  "MUC marker"},
    // Hints move persistence, not urgency.
    {S::chat().displayed().store(),               In,  kMention, Sil,  "persistent, not urgent"},
    {S::chat().receipt().store(),                 In,  kMention, Sil,  "stored receipt"},
    {S::chat().state().store(),                   In,  kMention, Sil,  "stored chat state"},
    {S::chat().body().no_store(),                 In,  kMention, Urg,  "ephemeral, urgent"},
    {S::chat().body().no_perm(),                  In,  kMention, Urg,  "same"},
    // What the account sent itself: at most Normal.
    {S::chat().body(),                            Out, kMention, Norm, "own, to siblings"},
    {S::chat().omemo(),                           Out, kMention, Norm, "own OMEMO"},
    {S::chat().body().sent_cc(),                  In,  kMention, Norm, "own, other client"},
    {S::chat().body().rcvd_cc(),                  In,  kMention, Urg,  "someone wrote to us"},
    {S::groupchat().body().mention().from_self(), In,  kMention, Norm, "own MUC message"},
    {S::groupchat().body().from_self(),           In,  kAlways,  Norm, "own, room on always"},
    {S::chat().state(),                           Out, kMention, Sil,  "own chat state"},
    {S::subscribe(),                              Out, kMention, Norm, "own request"},
    {S::propose(),                                Out, kMention, Norm, "own call"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why, " dir=", r.dir);
    CHECK(urgency(classify(r.shape), r.shape, r.dir, NotifyPrefs{r.muc}) == r.want);
  }
}

TEST_CASE("urgency: default preferences are mention-only") {
  CHECK(urgency(MessageClass::Groupchat, S::groupchat().body(), In) == Sil);
  CHECK(urgency(MessageClass::Groupchat, S::groupchat().body().mention(), In) == Urg);
}

}  // namespace
}  // namespace s2::policy
