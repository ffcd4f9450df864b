// classify(): every PROTOCOLS.md §10 traffic class from its typical shape, then the precedence
// rules for stanzas that carry several payloads at once (classify.h explains the order).
#include <doctest/doctest.h>

#include "policies/classify.h"
#include "tests/unit/policies/shapes.h"

namespace s2::policy {
namespace {

using namespace test;
using C = MessageClass;
using PT = PresenceType;

struct Row {
  S shape;
  C want;
  std::string_view why;
};

void check(const Row& r) {
  INFO(r.why);
  CHECK(classify(r.shape) == r.want);
}

TEST_CASE("classify: one row per PROTOCOLS.md §10 class") {
  // clang-format off
  const Row rows[] = {
    // shape                             class            why
    {S::chat().body(),                   C::ChatBody,     "chat + body"},
    {S::normal().body(),                 C::NormalBody,   "normal + body"},
    {S::chat().omemo(),                  C::Encrypted,    "OMEMO, no plain body"},
    {S::groupchat().body(),              C::Groupchat,    "groupchat from a room"},
    {S::chat().muc_x().body(),           C::MucPrivate,   "MUC PM: chat + muc#user x"},
    {S::normal().invite(),               C::MucInvite,    "mediated or direct invite"},
    {S::headline().body(),               C::Headline,     "headline"},
    {S::chat().state(),                  C::ChatState,    "chat state only"},
    {S::chat().receipt(),                C::Receipt,      "XEP-0184 receipt"},
    {S::chat().displayed(),              C::Marker,       "XEP-0333 displayed"},
    {S::chat().body().replace(),         C::Correction,   "XEP-0308 correction"},
    {S::chat().body().retract().store(), C::Retraction,   "XEP-0424, fallback body"},
    {S::propose(),                       C::Call,         "XEP-0353 propose"},
    {S::error(),                         C::Error,        "error reply"},
    {S::presence(),                      C::Presence,     "available presence"},
    {S::subscribe(),                     C::Subscription, "subscription request"},
    {S::iq(),                            C::Iq,           "iq"},
    {S::normal(),                        C::Other,        "empty message"},
  };
  // clang-format on
  for (const auto& r : rows) check(r);
}

TEST_CASE("classify: variants of each class") {
  // clang-format off
  const Row rows[] = {
    // shape                                class            why
    {S::chat().subject(),                   C::ChatBody,     "a subject is content"},
    {S::normal().subject(),                 C::NormalBody,   "subject-only normal"},
    {S::chat().enc(Encryption::Ox),         C::Encrypted,    "OX"},
    {S::chat().enc(Encryption::Otr).body(), C::Encrypted,    "OTR travels in the body"},
    {S::chat().enc(Encryption::Eme),        C::Encrypted,    "EME-declared other scheme"},
    {S::normal().omemo(),                   C::Encrypted,    "encrypted normal"},
    {S::chat().omemo().body(),              C::Encrypted,    "fallback body stays encrypted"},
    {S::chat().muc_x().omemo(),             C::MucPrivate,   "encrypted PM"},
    {S::normal().invite().body(),           C::MucInvite,    "invite with a reason body"},
    {S::headline(),                         C::Headline,     "body-less headline (PEP)"},
    {S::jmi(CallSignal::Retract),           C::Call,         "call retracted"},
    {S::jmi(CallSignal::Proceed).store(),   C::Call,         "call proceed with <store/>"},
    {S::unavailable(),                      C::Presence,     "unavailable"},
    {S::presence(PT::Probe),                C::Presence,     "probe"},
    {S::presence(PT::Error),                C::Presence,     "presence error (MUC join)"},
    {S::presence(PT::Subscribed),           C::Subscription, "subscription approved"},
    {S::presence(PT::Unsubscribe),          C::Subscription, "unsubscribe"},
    {S::presence(PT::Unsubscribed),         C::Subscription, "subscription revoked"},
    {S::iq_set(),                           C::Iq,           "iq set"},
    {S::iq_result(),                        C::Iq,           "iq result"},
    {S::iq_error(),                         C::Iq,           "iq error"},
    {S::normal().other(),                   C::Other,        "unknown payload only"},
    {S::normal().store(),                   C::Other,        "a hint alone is no content"},
    {S::chat().request(),                   C::Other,        "a receipt request alone"},
  };
  // clang-format on
  for (const auto& r : rows) check(r);
}

TEST_CASE("classify: precedence when payloads combine") {
  // clang-format off
  const Row rows[] = {
    // shape                                     class          why
    {S::error().body(),                          C::Error,      "type error beats a body"},
    {S::error().receipt(),                       C::Error,      "bounced receipt is an error"},
    {S::groupchat().state(),                     C::Groupchat,  "type groupchat dominates"},
    {S::groupchat().displayed(),                 C::Groupchat,  "MUC marker stays in the room"},
    {S::groupchat().subject(),                   C::Groupchat,  "room subject change"},
    {S::groupchat().body().replace(),            C::Groupchat,  "MUC correction"},
    {S::headline().body().request(),             C::Headline,   "headline beats a body"},
    {S::chat().body().state(),                   C::ChatBody,   "body beats chat state"},
    {S::chat().body().request(),                 C::ChatBody,   "body beats receipt request"},
    {S::chat().body().displayed(),               C::ChatBody,   "body beats a marker"},
    {S::chat().receipt().state(),                C::Receipt,    "receipt beats chat state"},
    {S::chat().receipt().displayed(),            C::Receipt,    "receipt beats marker"},
    {S::chat().displayed().state(),              C::Marker,     "marker beats chat state"},
    {S::chat().state().other(),                  C::ChatState,  "chat state + unknown payload"},
    {S::chat().body().retract().replace(),       C::Retraction, "retraction beats correction"},
    {S::chat().omemo().replace(),                C::Correction, "encrypted correction"},
    {S::chat().muc_x().state(),                  C::ChatState,  "PM chat state is a chat state"},
    {S::normal().muc_x().body(),                 C::NormalBody, "room notice, not a PM"},
    {S::chat().muc_x().body().invite(),          C::MucInvite,  "invite beats PM"},
    {S::chat().body().call(CallSignal::Propose), C::Call,       "call signal beats body"},
  };
  // clang-format on
  for (const auto& r : rows) check(r);
}

TEST_CASE("classify: every class has a distinct metrics name") {
  for (int i = 0; i <= static_cast<int>(C::Other); ++i) {
    const auto name = to_string(static_cast<C>(i));
    CHECK(name != "unknown");
    for (int j = 0; j < i; ++j) CHECK(name != to_string(static_cast<C>(j)));
  }
}

}  // namespace
}  // namespace s2::policy
