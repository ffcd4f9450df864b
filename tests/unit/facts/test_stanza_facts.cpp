// stanza_facts: real-looking stanzas → the MessageFeatures the policies see (and the class
// classify() gives them), ids for the mirror and dedup, the dedup fingerprint content, and the
// in-place rewrites the routing decisions ask for.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "policies/classify.h"
#include "policies/dedup.h"
#include "policies/stanza_facts.h"
#include "tests/unit/policies/shapes.h"

namespace s2 {
namespace {

using policy::CallSignal;
using policy::Encryption;
using policy::MessageFeatures;
using policy::test::S;
using C = policy::MessageClass;
using PT = policy::PresenceType;
using IT = policy::IqType;

// Every field, so a failing row prints what differs.
std::string describe(const MessageFeatures& f) {
  std::string out;
  out += "kind=" + std::to_string(static_cast<int>(f.kind));
  out += " type=" + std::to_string(static_cast<int>(f.type));
  out += " presence=" + std::to_string(static_cast<int>(f.presence));
  out += " iq=" + std::to_string(static_cast<int>(f.iq));
  out += " enc=" + std::to_string(static_cast<int>(f.encryption));
  out += " call=" + std::to_string(static_cast<int>(f.call));
  out += " fwd=" + std::to_string(static_cast<int>(f.forwarded));
  const std::pair<const char*, bool> flags[] = {
      {"body", f.has_body},
      {"subject", f.has_subject},
      {"state", f.chat_state},
      {"request", f.receipt_request},
      {"receipt", f.receipt},
      {"displayed", f.marker_displayed},
      {"correction", f.correction},
      {"retraction", f.retraction},
      {"other", f.other_payload},
      {"store", f.hints.store},
      {"no_store", f.hints.no_store},
      {"no_perm", f.hints.no_permanent_store},
      {"no_copy", f.hints.no_copy},
      {"private", f.carbons_private},
      {"muc_x", f.muc_user_x},
      {"invite", f.muc_invite},
      {"mention", f.mentions_user},
      {"own_reflection", f.muc_own_reflection},
      {"linked", f.refers_to_archived},
      {"for_proxy", f.iq_for_proxy},
  };
  for (const auto& [name, on] : flags) {
    if (on) {
      out += ' ';
      out += name;
    }
  }
  return out;
}

struct Row {
  std::string_view xml;
  S want;
  C cls;
  std::string_view why;
};

void check(const Row& r) {
  INFO(r.why);
  INFO(r.xml);
  const Stanza s = Stanza::parse(r.xml);
  REQUIRE(s);
  const MessageFeatures got = stanza_features(s);
  CHECK(describe(got) == describe(r.want));
  CHECK(policy::classify(got) == r.cls);
}

TEST_CASE("stanza_features: messages") {
  // clang-format off
  const Row rows[] = {
    {"<message to='juliet@capulet.lit' from='romeo@montague.lit/orchard' type='chat' id='m1'>"
     "<body>Wherefore art thou?</body></message>",
     S::chat().body(), C::ChatBody, "chat + body"},
    {"<message to='juliet@capulet.lit' type='chat' id='m2'><body>hi</body>"
     "<active xmlns='http://jabber.org/protocol/chatstates'/>"
     "<request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/>"
     "<origin-id xmlns='urn:xmpp:sid:0' id='o2'/>"
     "<stanza-id xmlns='urn:xmpp:sid:0' id='s2' by='juliet@capulet.lit'/></message>",
     S::chat().body().state().request(), C::ChatBody, "Conversations-style chat with riders"},
    {"<message to='juliet@capulet.lit' type='chat'>"
     "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
     S::chat().state(), C::ChatState, "chat state only"},
    {"<message to='juliet@capulet.lit' type='chat'>"
     "<paused xmlns='http://jabber.org/protocol/chatstates'/><no-store xmlns='urn:xmpp:hints'/>"
     "</message>",
     S::chat().state().no_store(), C::ChatState, "chat state with no-store"},
    {"<message to='juliet@capulet.lit' type='chat' id='e1'>"
     "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='123'>"
     "<key rid='456'>a2V5</key><iv>aXY=</iv></header><payload>cGF5</payload></encrypted>"
     "<store xmlns='urn:xmpp:hints'/></message>",
     S::chat().omemo().store(), C::Encrypted, "OMEMO (axolotl) without body"},
    {"<message to='juliet@capulet.lit' type='chat' id='e2'>"
     "<body>I sent you an OMEMO encrypted message but your client doesn't seem to support that."
     "</body><encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'/>"
     "<payload>eA==</payload></encrypted>"
     "<encryption xmlns='urn:xmpp:eme:0' namespace='eu.siacs.conversations.axolotl'/>"
     "<store xmlns='urn:xmpp:hints'/></message>",
     S::chat().omemo().body().store(), C::Encrypted, "OMEMO with fallback body and EME"},
    {"<message to='juliet@capulet.lit' type='chat'><encrypted xmlns='urn:xmpp:omemo:2'>"
     "<header sid='27183'><keys jid='juliet@capulet.lit'><key rid='31415'>Yg==</key></keys>"
     "</header><payload>Yw==</payload></encrypted></message>",
     S::chat().omemo(), C::Encrypted, "OMEMO 2"},
    {"<message to='juliet@capulet.lit' type='chat'><openpgp xmlns='urn:xmpp:openpgp:0'>"
     "BASE64</openpgp><body>This message is encrypted with OpenPGP</body></message>",
     S::chat().enc(Encryption::Ox).body(), C::Encrypted, "OX with fallback body"},
    {"<message to='juliet@capulet.lit' type='chat'><body>?OTRv3?</body></message>",
     S::chat().enc(Encryption::Otr).body(), C::Encrypted, "OTR query in the body"},
    {"<message to='juliet@capulet.lit' type='chat'><body>?OTR:AAMDKqr</body>"
     "<encryption xmlns='urn:xmpp:eme:0' namespace='urn:xmpp:otr:0'/></message>",
     S::chat().enc(Encryption::Otr).body(), C::Encrypted, "OTR declared by EME"},
    {"<message to='juliet@capulet.lit' type='chat'><body>[encrypted]</body>"
     "<encryption xmlns='urn:xmpp:eme:0' namespace='urn:example:secret' name='Secret'/></message>",
     S::chat().enc(Encryption::Eme).body(), C::Encrypted, "EME naming another scheme"},
    {"<message to='juliet@capulet.lit' type='chat'><body>This message is encrypted.</body>"
     "<x xmlns='jabber:x:encrypted'>hQEMA</x></message>",
     S::chat().enc(Encryption::Eme).body(), C::Encrypted, "obsolete XEP-0027 OpenPGP"},
    {"<message to='romeo@montague.lit/orchard' id='r1'>"
     "<received xmlns='urn:xmpp:receipts' id='m1'/></message>",
     S::normal().receipt(), C::Receipt, "XEP-0184 receipt"},
    {"<message to='romeo@montague.lit' type='chat'><received xmlns='urn:xmpp:receipts' id='m1'/>"
     "<received xmlns='urn:xmpp:chat-markers:0' id='m1'/><store xmlns='urn:xmpp:hints'/></message>",
     S::chat().receipt().store(), C::Receipt, "receipt + obsolete marker received"},
    {"<message to='romeo@montague.lit' type='chat'>"
     "<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/><store xmlns='urn:xmpp:hints'/>"
     "</message>",
     S::chat().displayed().store(), C::Marker, "XEP-0333 displayed"},
    {"<message to='romeo@montague.lit' type='chat'>"
     "<acknowledged xmlns='urn:xmpp:chat-markers:0' id='m1'/></message>",
     S::chat(), C::Other, "obsolete acknowledged marker alone"},
    {"<message to='romeo@montague.lit' type='chat'>"
     "<markable xmlns='urn:xmpp:chat-markers:0'/></message>",
     S::chat(), C::Other, "markable alone"},
    {"<message to='juliet@capulet.lit' type='chat' id='m3'><body>But soft!</body>"
     "<replace xmlns='urn:xmpp:message-correct:0' id='m1'/></message>",
     S::chat().body().replace(), C::Correction, "XEP-0308 correction"},
    {"<message to='juliet@capulet.lit' type='chat' id='x1'>"
     "<retract xmlns='urn:xmpp:message-retract:1' id='m1'/>"
     "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>"
     "<body>/me retracted a previous message, but it's unsupported by your client.</body>"
     "<store xmlns='urn:xmpp:hints'/></message>",
     S::chat().retract().body().store(), C::Retraction, "XEP-0424 retraction, fallback body"},
    {"<message to='juliet@capulet.lit' type='chat'>"
     "<apply-to xmlns='urn:xmpp:fasten:0' id='m1'>"
     "<retract xmlns='urn:xmpp:message-retract:0'/></apply-to></message>",
     S::chat().retract(), C::Retraction, "XEP-0424 < 0.4 via fasten"},
    {"<message to='juliet@capulet.lit' type='chat'>"
     "<retracted xmlns='urn:xmpp:message-retract:1' id='m1' stamp='2024-01-01T00:00:00Z'/>"
     "</message>",
     S::chat().other(), C::Other, "a MAM tombstone is not a retraction"},
    {"<message to='juliet@capulet.lit' from='news.capulet.lit' type='headline'>"
     "<subject>Weather</subject><body>Rain</body></message>",
     S::headline().subject().body(), C::Headline, "headline"},
    {"<message from='romeo@montague.lit' to='juliet@capulet.lit/balcony' type='headline'>"
     "<event xmlns='http://jabber.org/protocol/pubsub#event'>"
     "<items node='urn:xmpp:avatar:metadata'/></event></message>",
     S::headline().other(), C::Headline, "PEP notification"},
    {"<message from='coven@chat.shakespeare.lit/thirdwitch' type='groupchat' id='g1'>"
     "<body>Harpier cries</body><occupant-id xmlns='urn:xmpp:occupant-id:0' id='abc'/>"
     "<stanza-id xmlns='urn:xmpp:sid:0' id='s9' by='coven@chat.shakespeare.lit'/></message>",
     S::groupchat().body().other(), C::Groupchat, "groupchat"},
    {"<message from='coven@chat.shakespeare.lit/secondwitch' type='groupchat'>"
     "<subject/></message>",
     S::groupchat().subject(), C::Groupchat, "empty room subject"},
    {"<message from='coven@chat.shakespeare.lit/firstwitch' type='chat'>"
     "<body>I'll give thee a wind.</body><x xmlns='http://jabber.org/protocol/muc#user'/>"
     "</message>",
     S::chat().body().muc_x(), C::MucPrivate, "MUC PM"},
    {"<message to='coven@chat.shakespeare.lit/firstwitch' type='chat'>"
     "<x xmlns='http://jabber.org/protocol/muc#user'/>"
     "<encrypted xmlns='urn:xmpp:omemo:2'><payload>eA==</payload></encrypted></message>",
     S::chat().muc_x().omemo(), C::MucPrivate, "encrypted MUC PM"},
    {"<message from='coven@chat.shakespeare.lit' to='hecate@shakespeare.lit'>"
     "<x xmlns='http://jabber.org/protocol/muc#user'>"
     "<invite from='crone1@shakespeare.lit/desktop'><reason>Hey Hecate</reason></invite>"
     "<password>cauldronburn</password></x></message>",
     S::normal().muc_x().invite(), C::MucInvite, "mediated invite"},
    {"<message from='crone1@shakespeare.lit/desktop' to='hecate@shakespeare.lit'>"
     "<x xmlns='jabber:x:conference' jid='darkcave@macbeth.shakespeare.lit' "
     "reason='Hey Hecate'/><body>Join us</body></message>",
     S::normal().invite().body(), C::MucInvite, "direct invite with a body"},
    {"<message from='romeo@montague.lit/orchard' to='juliet@capulet.lit' type='chat'>"
     "<propose xmlns='urn:xmpp:jingle-message:0' id='ca3cf894'>"
     "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>"
     "<store xmlns='urn:xmpp:hints'/></message>",
     S::propose().store(), C::Call, "JMI propose"},
    {"<message to='juliet@capulet.lit' type='chat'>"
     "<retract xmlns='urn:xmpp:jingle-message:0' id='ca3cf894'/></message>",
     S::jmi(CallSignal::Retract), C::Call, "JMI retract (not a message retraction)"},
    {"<message to='romeo@montague.lit/orchard' type='chat'>"
     "<proceed xmlns='urn:xmpp:jingle-message:1' id='ca3cf894'/></message>",
     S::jmi(CallSignal::Proceed), C::Call, "JMI proceed, namespace :1"},
    {"<message to='romeo@montague.lit' type='chat'>"
     "<accept xmlns='urn:xmpp:jingle-message:0' id='ca3cf894'/></message>",
     S::jmi(CallSignal::Accept), C::Call, "JMI accept"},
    {"<message to='romeo@montague.lit' type='chat'>"
     "<reject xmlns='urn:xmpp:jingle-message:0' id='ca3cf894'/></message>",
     S::jmi(CallSignal::Reject), C::Call, "JMI reject"},
    {"<message to='romeo@montague.lit' type='chat'>"
     "<finish xmlns='urn:xmpp:jingle-message:0' id='ca3cf894'>"
     "<reason xmlns='urn:xmpp:jingle:1'><success/></reason></finish></message>",
     S::jmi(CallSignal::Finish), C::Call, "JMI finish"},
    {"<message to='juliet@capulet.lit' type='chat'>"
     "<ringing xmlns='urn:xmpp:jingle-message:0' id='ca3cf894'/></message>",
     S::chat().other(), C::Other, "unknown JMI element"},
    {"<message from='juliet@capulet.lit' to='romeo@montague.lit/orchard' type='error' id='m1'>"
     "<body>Wherefore art thou?</body><error type='cancel'>"
     "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
     S::error().body(), C::Error, "error bounce with original body"},
    {"<message to='juliet@capulet.lit'><subject>Plans</subject><body>Meet me</body>"
     "<thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread></message>",
     S::normal().subject().body(), C::NormalBody, "normal with subject and thread"},
    {"<message to='juliet@capulet.lit' type='chat'><subject>Hello</subject></message>",
     S::chat().subject(), C::ChatBody, "subject only"},
    {"<message to='juliet@capulet.lit' type='chat'/>", S::chat(), C::Other, "empty message"},
    {"<message to='juliet@capulet.lit'><body/></message>", S::normal(), C::Other, "empty body"},
    {"<message to='juliet@capulet.lit' type='chat'><store xmlns='urn:xmpp:hints'/>"
     "<no-store xmlns='urn:xmpp:hints'/></message>",
     S::chat().store().no_store(), C::Other, "hints alone: store + no-store"},
    {"<message to='juliet@capulet.lit' type='chat'><body>x</body>"
     "<no-permanent-store xmlns='urn:xmpp:hints'/><no-copy xmlns='urn:xmpp:hints'/>"
     "<private xmlns='urn:xmpp:carbons:2'/></message>",
     S::chat().body().no_perm().no_copy().priv(), C::ChatBody, "no-permanent-store, no-copy"},
    {"<message to='juliet@capulet.lit' type='chat'><body>https://example.org/a.jpg</body>"
     "<x xmlns='jabber:x:oob'><url>https://example.org/a.jpg</url></x></message>",
     S::chat().body().other(), C::ChatBody, "file share with its URL body"},
    {"<message to='juliet@capulet.lit' type='chat'>"
     "<reactions xmlns='urn:xmpp:reactions:0' id='m1'><reaction>👍</reaction></reactions>"
     "<store xmlns='urn:xmpp:hints'/></message>",
     S::chat().other().store(), C::Other, "body-less reaction"},
    {"<message to='juliet@capulet.lit' type='chat'><thread>t1</thread>"
     "<delay xmlns='urn:xmpp:delay' from='capulet.lit' stamp='2002-09-10T23:08:25Z'/>"
     "<x xmlns='jabber:x:delay' stamp='20020910T23:08:25'/>"
     "<addresses xmlns='http://jabber.org/protocol/address'><address type='to' "
     "jid='a@b'/></addresses><nick xmlns='http://jabber.org/protocol/nick'>Romeo</nick>"
     "<origin-id xmlns='urn:xmpp:sid:0' id='o'/></message>",
     S::chat(), C::Other, "routing metadata only"},
    {"<message to='juliet@capulet.lit' type='fancy'><body>hi</body></message>",
     S::normal().body(), C::NormalBody, "unknown type is normal"},
    {"<message xmlns='jabber:client' to='juliet@capulet.lit' type='chat'><body>hi</body>"
     "</message>",
     S::chat().body(), C::ChatBody, "explicit jabber:client"},
    {"<message xmlns='jabber:server' from='romeo@montague.lit' to='juliet@capulet.lit' "
     "type='chat'><body>hi</body></message>",
     S::chat().body(), C::ChatBody, "server-to-server namespace"},
    {"<message to='juliet@capulet.lit' type='chat'><body xml:lang='de'/>"
     "<body xml:lang='en'>Hello</body></message>",
     S::chat().body(), C::ChatBody, "second xml:lang body has the text"},
    {"<message to='juliet@capulet.lit' type='chat'><body xmlns='urn:example:other'>hi</body>"
     "</message>",
     S::chat().other(), C::Other, "a foreign <body> is not a body"},
    {"<message from='juliet@capulet.lit' to='juliet@capulet.lit/balcony' type='chat'>"
     "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
     "<message xmlns='jabber:client' type='chat'><body>hi</body></message></forwarded>"
     "</received></message>",
     S::chat().other(), C::Other, "a carbon wrapper is not unwrapped here"},
  };
  // clang-format on
  for (const auto& r : rows) check(r);
}

TEST_CASE("stanza_features: presence and iq") {
  // clang-format off
  const Row rows[] = {
    {"<presence/>", S::presence(), C::Presence, "initial presence"},
    {"<presence><show>away</show><status>Out</status><priority>5</priority>"
     "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>",
     S::presence().other(), C::Presence, "presence with caps"},
    {"<presence type='unavailable'/>", S::unavailable(), C::Presence, "unavailable"},
    {"<presence to='juliet@capulet.lit' type='subscribe'/>", S::subscribe(), C::Subscription,
     "subscribe"},
    {"<presence type='subscribed'/>", S::presence(PT::Subscribed), C::Subscription, "subscribed"},
    {"<presence type='unsubscribe'/>", S::presence(PT::Unsubscribe), C::Subscription,
     "unsubscribe"},
    {"<presence type='unsubscribed'/>", S::presence(PT::Unsubscribed), C::Subscription,
     "unsubscribed"},
    {"<presence type='probe'/>", S::presence(PT::Probe), C::Presence, "probe"},
    {"<presence type='error'><error type='cancel'>"
     "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>",
     S::presence(PT::Error), C::Presence, "presence error"},
    {"<presence type='bogus'/>", S::presence(), C::Presence, "unknown presence type"},
    {"<presence from='coven@chat.shakespeare.lit/thirdwitch'>"
     "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>"
     "</x></presence>",
     S::presence().muc_x(), C::Presence, "MUC occupant presence"},
    {"<iq type='get' id='p1' to='capulet.lit'><ping xmlns='urn:xmpp:ping'/></iq>",
     S::iq().other(), C::Iq, "ping"},
    {"<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='a@b'/></query></iq>",
     S::iq_set().other(), C::Iq, "roster push"},
    {"<iq type='result' id='p1'/>", S::iq_result(), C::Iq, "empty result"},
    {"<iq type='error' id='p1'><error type='cancel'>"
     "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
     S::iq_error(), C::Iq, "iq error"},
    {"<iq id='x'/>", S::iq(IT::Get), C::Iq, "missing iq type"},
  };
  // clang-format on
  for (const auto& r : rows) check(r);
}

TEST_CASE("stanza_features: the inner message of a carbon reads like the live one") {
  const Stanza carbon = Stanza::parse(
      "<message from='juliet@capulet.lit' to='juliet@capulet.lit/balcony' type='chat'>"
      "<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
      "<message xmlns='jabber:client' to='romeo@montague.lit' type='chat'>"
      "<body>hi</body><thread>t</thread><active xmlns='http://jabber.org/protocol/chatstates'/>"
      "</message></forwarded></sent></message>");
  REQUIRE(carbon);
  const Stanza inner = carbon.child("sent", "urn:xmpp:carbons:2")
                           .child("forwarded", "urn:xmpp:forward:0")
                           .child("message", "jabber:client");
  REQUIRE(inner);
  CHECK(describe(stanza_features(inner)) == describe(S::chat().body().state()));
}

TEST_CASE("stanza_features: null stanza gives defaults") {
  CHECK(describe(stanza_features(Stanza{})) == describe(MessageFeatures{}));
}

// ---- message_ids ----------------------------------------------------------------------------

MessageIds ids_of(std::string_view xml) {
  const Stanza s = Stanza::parse(xml);
  REQUIRE(s);
  return message_ids(s);
}

TEST_CASE("message_ids: id, origin-id and every stanza-id") {
  const MessageIds m = ids_of(
      "<message type='chat' id='abc'><body>hi</body>"
      "<stanza-id xmlns='urn:xmpp:sid:0' id='s1' by='juliet@capulet.lit'/>"
      "<origin-id xmlns='urn:xmpp:sid:0' id='o1'/>"
      "<origin-id xmlns='urn:xmpp:sid:0' id='o2'/>"
      "<stanza-id xmlns='urn:xmpp:sid:0' id='s2' by='coven@chat.shakespeare.lit'/>"
      "<stanza-id xmlns='urn:xmpp:sid:0' id='s3'/>"
      "<stanza-id xmlns='urn:example:not-sid' id='nope' by='x'/></message>");
  CHECK(m.id == "abc");
  CHECK(m.origin_id == "o1");
  REQUIRE(m.stanza_ids.size() == 3);
  CHECK(m.stanza_ids[0] == std::pair<std::string, std::string>{"s1", "juliet@capulet.lit"});
  CHECK(m.stanza_ids[1] == std::pair<std::string, std::string>{"s2", "coven@chat.shakespeare.lit"});
  CHECK(m.stanza_ids[2] == std::pair<std::string, std::string>{"s3", ""});
  CHECK(m.ref_id.empty());
}

TEST_CASE("message_ids: nothing") {
  const MessageIds m = ids_of("<message><body>hi</body></message>");
  CHECK(m.id.empty());
  CHECK(m.origin_id.empty());
  CHECK(m.stanza_ids.empty());
  CHECK(m.ref_id.empty());
}

TEST_CASE("message_ids: ref_id of each referring payload") {
  struct RefRow {
    std::string_view xml;
    std::string_view ref;
  };
  // clang-format off
  const RefRow rows[] = {
    {"<message id='r'><received xmlns='urn:xmpp:receipts' id='m1'/></message>", "m1"},
    {"<message id='r'><displayed xmlns='urn:xmpp:chat-markers:0' id='m2'/></message>", "m2"},
    {"<message id='r'><body>x</body><replace xmlns='urn:xmpp:message-correct:0' id='m3'/>"
     "</message>", "m3"},
    {"<message id='r'><retract xmlns='urn:xmpp:message-retract:1' id='m4'/><body>x</body>"
     "</message>", "m4"},
    {"<message id='r'><retract xmlns='urn:xmpp:message-retract:0' id='m5'/></message>", "m5"},
    {"<message id='r'><apply-to xmlns='urn:xmpp:fasten:0' id='m6'>"
     "<retract xmlns='urn:xmpp:message-retract:0'/></apply-to></message>", "m6"},
    // classify() precedence: retraction > correction > receipt > marker.
    {"<message id='r'><received xmlns='urn:xmpp:receipts' id='a'/>"
     "<displayed xmlns='urn:xmpp:chat-markers:0' id='b'/></message>", "a"},
    {"<message id='r'><displayed xmlns='urn:xmpp:chat-markers:0' id='b'/>"
     "<replace xmlns='urn:xmpp:message-correct:0' id='c'/></message>", "c"},
    {"<message id='r'><replace xmlns='urn:xmpp:message-correct:0' id='c'/>"
     "<retract xmlns='urn:xmpp:message-retract:1' id='d'/></message>", "d"},
    // An error bounce refers to the stanza it echoes: its own id.
    {"<message id='m7' type='error'><received xmlns='urn:xmpp:receipts' id='zz'/>"
     "<error type='cancel'/></message>", "m7"},
    // Not references: a receipt request, an obsolete marker, a JMI retract.
    {"<message id='r'><request xmlns='urn:xmpp:receipts'/><body>x</body></message>", ""},
    {"<message id='r'><received xmlns='urn:xmpp:chat-markers:0' id='m8'/></message>", ""},
    {"<message id='r'><retract xmlns='urn:xmpp:jingle-message:0' id='m9'/></message>", ""},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.xml);
    CHECK(ids_of(r.xml).ref_id == r.ref);
  }
}

// ---- fingerprint_content ----------------------------------------------------------------------

std::string fp_of(std::string_view xml) {
  const Stanza s = Stanza::parse(xml);
  REQUIRE(s);
  return fingerprint_content(s);
}

// The inner message of a carbon wrapping `inner_xml`, serialised and parsed again.
Stanza carbon_inner(std::string_view inner_xml) {
  const std::string wrapper =
      "<message from='juliet@capulet.lit' to='juliet@capulet.lit/balcony' type='chat'>"
      "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
      "<delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z'/>" +
      std::string(inner_xml) + "</forwarded></received></message>";
  const Stanza carbon = Stanza::parse(wrapper);
  REQUIRE(carbon);
  const Stanza inner = carbon.child("received", "urn:xmpp:carbons:2")
                           .child("forwarded", "urn:xmpp:forward:0")
                           .child("message", "jabber:client");
  REQUIRE(inner);
  return inner;
}

TEST_CASE("fingerprint_content: the body text when there is one") {
  CHECK(fp_of("<message type='chat'><body>hello</body><active "
              "xmlns='http://jabber.org/protocol/chatstates'/></message>") == "hello");
  CHECK(fp_of("<message><body xml:lang='de'/><body xml:lang='en'>hi</body></message>") == "hi");
  CHECK(fp_of("<message type='chat'/>").empty());
  CHECK(fp_of("<message type='chat'><thread>t</thread><store xmlns='urn:xmpp:hints'/>"
              "<stanza-id xmlns='urn:xmpp:sid:0' id='1' by='a@b'/></message>")
            .empty());
}

TEST_CASE("fingerprint_content: live, carbon and MAM copies agree") {
  const std::string_view variants[][2] = {
      // live (as the upstream delivers it)      inner message of the copy
      {"<message from='romeo@montague.lit/o' to='juliet@capulet.lit' type='chat' id='1'>"
       "<body>Wherefore</body><stanza-id xmlns='urn:xmpp:sid:0' id='s1' by='juliet@capulet.lit'/>"
       "</message>",
       "<message xmlns='jabber:client' from='romeo@montague.lit/o' to='juliet@capulet.lit' "
       "type='chat' id='1'><body>Wherefore</body></message>"},
      {"<message type='chat' id='2'><received xmlns='urn:xmpp:receipts' id='m1'/>"
       "<store xmlns='urn:xmpp:hints'/></message>",
       "<message xmlns='jabber:client' type='chat' id='2'>"
       "<received xmlns='urn:xmpp:receipts' id='m1'/>"
       "<stanza-id xmlns='urn:xmpp:sid:0' id='s2' by='juliet@capulet.lit'/>"
       "<delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z'/></message>"},
      {"<message type='chat' id='3'><encrypted xmlns='eu.siacs.conversations.axolotl'>"
       "<header sid='1'><key rid='2' prekey='true'>a2V5</key><iv>aXY=</iv></header>"
       "<payload>cA==</payload></encrypted><thread>t9</thread></message>",
       "<message xmlns='jabber:client' type='chat' id='3'>"
       "<encrypted xmlns='eu.siacs.conversations.axolotl'>\n  "
       "<header sid='1'><key prekey='true' rid='2'>a2V5</key><iv>aXY=</iv></header>\n  "
       "<payload>cA==</payload></encrypted><origin-id xmlns='urn:xmpp:sid:0' id='o'/></message>"},
      {"<message type='chat' id='4'><displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>"
       "<active xmlns='http://jabber.org/protocol/chatstates'/></message>",
       "<message xmlns='jabber:client' type='chat' id='4'>"
       "<active xmlns='http://jabber.org/protocol/chatstates'/>"
       "<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>"
       "<private xmlns='urn:xmpp:carbons:2'/></message>"},
  };
  for (const auto& v : variants) {
    INFO(v[0]);
    const std::string live = fp_of(v[0]);
    CHECK_FALSE(live.empty());
    const Stanza inner = carbon_inner(v[1]);
    CHECK(fingerprint_content(inner) == live);
    // Re-serialised (as the mirror stores it, or a MAM result carries it).
    const Stanza again = Stanza::parse(inner.to_string());
    REQUIRE(again);
    CHECK(fingerprint_content(again) == live);
  }
}

TEST_CASE("fingerprint_content: differs when the content differs") {
  const std::string base = fp_of("<message><body>hello</body></message>");
  CHECK(fp_of("<message><body>hello!</body></message>") != base);
  const std::string r1 = fp_of("<message><received xmlns='urn:xmpp:receipts' id='m1'/></message>");
  const std::string r2 = fp_of("<message><received xmlns='urn:xmpp:receipts' id='m2'/></message>");
  const std::string d1 =
      fp_of("<message><displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/></message>");
  const std::string s1 =
      fp_of("<message><received xmlns='urn:example:receipts' id='m1'/></message>");
  CHECK(r1 != r2);
  CHECK(r1 != d1);
  CHECK(r1 != s1);  // the namespace is part of it
  CHECK(fp_of("<message><x xmlns='urn:a'><y>ab</y></x></message>") !=
        fp_of("<message><x xmlns='urn:a'><y>a</y><y>b</y></x></message>"));
  CHECK(fp_of("<message><x xmlns='urn:a' k='v'/></message>") !=
        fp_of("<message><x xmlns='urn:a' k='w'/></message>"));
  // An empty body is not a body: the canonical form is used (and the body element is part of it).
  CHECK(fp_of("<message><body/><received xmlns='urn:xmpp:receipts' id='m1'/></message>") != r1);
}

// ---- rewrites -------------------------------------------------------------------------------

// Serialisation with attributes sorted (libstrophe writes them in hash order): name, own xmlns,
// attributes, text, children.
std::string sorted_xml(const Stanza& e) {
  std::string out = "<" + e.name();
  std::vector<std::string> attrs;
  if (xmpp_stanza_t* raw = e.get()) {
    const int n = xmpp_stanza_get_attribute_count(raw);
    std::vector<const char*> kv(2 * static_cast<size_t>(std::max(n, 0)));
    const int got = n > 0 ? xmpp_stanza_get_attributes(raw, kv.data(), 2 * n) : 0;
    for (int i = 0; i + 1 < got; i += 2) {
      attrs.push_back(std::string(kv[i]) + "='" + kv[i + 1] + "'");
    }
  }
  std::sort(attrs.begin(), attrs.end());
  for (const std::string& a : attrs) out += " " + a;
  out += ">" + e.text_content();
  for (const Stanza& c : e.children()) out += sorted_xml(c);
  return out + "</" + e.name() + ">";
}

// `s` equals the element `want_xml` describes, attribute order aside.
std::string normalised(std::string_view want_xml) {
  const Stanza w = Stanza::parse(want_xml);
  REQUIRE(w);
  return sorted_xml(w);
}

std::vector<std::string> stanza_id_bys(const Stanza& s) {
  std::vector<std::string> out;
  for (const auto& [id, by] : message_ids(s).stanza_ids) out.push_back(id + "@" + by);
  return out;
}

TEST_CASE("strip_claimed_stanza_ids: account, domain and by-less ids go, others stay") {
  Stanza s = Stanza::parse(
      "<message to='juliet@capulet.lit' type='chat' id='m'>"
      "<stanza-id xmlns='urn:xmpp:sid:0' id='forged1' by='juliet@capulet.lit'/>"
      "<stanza-id xmlns='urn:xmpp:sid:0' id='room' by='coven@chat.shakespeare.lit'/>"
      "<body>hi</body>"
      "<stanza-id xmlns='urn:xmpp:sid:0' id='forged2' by='Juliet@Capulet.LIT'/>"
      "<stanza-id xmlns='urn:xmpp:sid:0' id='forged3' by='capulet.lit'/>"
      "<stanza-id xmlns='urn:xmpp:sid:0' id='forged4'/>"
      "<stanza-id xmlns='urn:xmpp:sid:0' id='other' by='romeo@montague.lit'/>"
      "<origin-id xmlns='urn:xmpp:sid:0' id='o'/></message>");
  REQUIRE(s);
  const Stanza alias = s;  // shares the node: the edit is in place
  CHECK(strip_claimed_stanza_ids(s, "juliet@capulet.lit", "capulet.lit") == 4);
  CHECK(stanza_id_bys(alias) ==
        std::vector<std::string>{"room@coven@chat.shakespeare.lit", "other@romeo@montague.lit"});
  CHECK(alias.child("body").text_content() == "hi");
  CHECK(message_ids(alias).origin_id == "o");
  // Nothing left to strip: no change at all.
  const std::string before = s.to_string();
  CHECK(strip_claimed_stanza_ids(s, "juliet@capulet.lit", "capulet.lit") == 0);
  CHECK(s.to_string() == before);
}

TEST_CASE("strip_claimed_stanza_ids: a message without stanza-ids is untouched") {
  Stanza s = Stanza::parse("<message><body>hi</body></message>");
  const std::string before = s.to_string();
  CHECK(strip_claimed_stanza_ids(s, "juliet@capulet.lit", "capulet.lit") == 0);
  CHECK(s.to_string() == before);
}

TEST_CASE("set_stanza_id replaces the one with the same by") {
  Stanza s = Stanza::parse(
      "<message><body>hi</body>"
      "<stanza-id xmlns='urn:xmpp:sid:0' id='old' by='juliet@capulet.lit'/>"
      "<stanza-id xmlns='urn:xmpp:sid:0' id='room' by='coven@chat.shakespeare.lit'/></message>");
  REQUIRE(s);
  set_stanza_id(s, "JULIET@capulet.lit", "new");
  CHECK(stanza_id_bys(s) ==
        std::vector<std::string>{"room@coven@chat.shakespeare.lit", "new@JULIET@capulet.lit"});
  Stanza bare = Stanza::parse("<message/>");
  set_stanza_id(bare, "juliet@capulet.lit", "x1");
  CHECK(sorted_xml(bare) ==
        normalised("<message><stanza-id xmlns='urn:xmpp:sid:0' by='juliet@capulet.lit' id='x1'/>"
                   "</message>"));
  // It round-trips and is read back.
  const Stanza again = Stanza::parse(bare.to_string());
  CHECK(stanza_id_bys(again) == std::vector<std::string>{"x1@juliet@capulet.lit"});
}

TEST_CASE("ensure_origin_id") {
  Stanza s = Stanza::parse("<message><body>hi</body></message>");
  CHECK(ensure_origin_id(s, "fresh") == "fresh");
  CHECK(message_ids(s).origin_id == "fresh");
  CHECK(ensure_origin_id(s, "other") == "fresh");  // already there
  CHECK(sorted_xml(s) ==
        normalised(
            "<message><body>hi</body><origin-id xmlns='urn:xmpp:sid:0' id='fresh'/></message>"));
  Stanza has = Stanza::parse("<message><origin-id xmlns='urn:xmpp:sid:0' id='theirs'/></message>");
  CHECK(ensure_origin_id(has, "fresh") == "theirs");
  Stanza empty = Stanza::parse("<message><origin-id xmlns='urn:xmpp:sid:0'/></message>");
  CHECK(ensure_origin_id(empty, "fresh") == "fresh");
  CHECK(sorted_xml(empty) ==
        normalised("<message><origin-id xmlns='urn:xmpp:sid:0' id='fresh'/></message>"));
}

TEST_CASE("add_delay") {
  Stanza s = Stanza::parse("<message><body>hi</body></message>");
  add_delay(s, "capulet.lit", "2002-09-10T23:08:25Z");
  const Stanza d = s.child("delay", "urn:xmpp:delay");
  REQUIRE(d);
  CHECK(d.attr_or("from") == "capulet.lit");
  CHECK(d.attr_or("stamp") == "2002-09-10T23:08:25Z");
  add_delay(s, "other", "2020-01-01T00:00:00Z");  // already delayed: unchanged
  CHECK(s.child("delay", "urn:xmpp:delay").attr_or("stamp") == "2002-09-10T23:08:25Z");
  Stanza nofrom = Stanza::parse("<message/>");
  add_delay(nofrom, "", "2002-09-10T23:08:25Z");
  CHECK(sorted_xml(nofrom) ==
        normalised(
            "<message><delay xmlns='urn:xmpp:delay' stamp='2002-09-10T23:08:25Z'/></message>"));
  // A legacy jabber:x:delay does not count.
  Stanza legacy = Stanza::parse(
      "<message><x xmlns='jabber:x:delay' stamp='20020910T23:08:25'/>"
      "</message>");
  add_delay(legacy, "", "2002-09-10T23:08:25Z");
  CHECK(legacy.child("delay", "urn:xmpp:delay"));
}

TEST_CASE("add_hint_no_store and add_carbons_private are idempotent") {
  Stanza s = Stanza::parse("<message type='chat'><body>hi</body></message>");
  add_hint_no_store(s);
  add_hint_no_store(s);
  add_carbons_private(s);
  add_carbons_private(s);
  CHECK(sorted_xml(s) == normalised("<message type='chat'><body>hi</body>"
                                    "<no-store xmlns='urn:xmpp:hints'/>"
                                    "<private xmlns='urn:xmpp:carbons:2'/></message>"));
  const MessageFeatures f = stanza_features(s);
  CHECK(f.hints.no_store);
  CHECK(f.carbons_private);
  CHECK_FALSE(f.other_payload);
}

TEST_CASE("set_presence_priority") {
  Stanza s = Stanza::parse(
      "<presence><show>dnd</show><priority>5</priority>"
      "<priority xmlns='urn:example:other'>7</priority><priority>9</priority></presence>");
  REQUIRE(s);
  set_presence_priority(s, -1);
  CHECK(s.to_string() ==
        "<presence><show>dnd</show><priority xmlns=\"urn:example:other\">7</priority>"
        "<priority>-1</priority></presence>");
  Stanza none = Stanza::parse("<presence/>");
  set_presence_priority(none, -1);
  CHECK(none.to_string() == "<presence><priority>-1</priority></presence>");
  Stanza client =
      Stanza::parse("<presence xmlns='jabber:client'><priority>1</priority></presence>");
  set_presence_priority(client, 0);
  CHECK(client.xmlns() == "jabber:client");
  CHECK(sorted_xml(client) ==
        normalised("<presence xmlns='jabber:client'><priority>0</priority></presence>"));
  // A jabber:server stanza (built, as s2s would carry it): its un-namespaced <priority> matches.
  Stanza server = Stanza::element("presence", "jabber:server");
  server.add_child(Stanza::element("priority").add_text("3"));
  set_presence_priority(server, -1);
  CHECK(sorted_xml(server) ==
        normalised("<presence xmlns='jabber:server'><priority>-1</priority></presence>"));
}

TEST_CASE("the rewrites feed the policies as expected") {
  // A forged stanza-id claiming the account must not become the dedup key.
  Stanza s = Stanza::parse(
      "<message from='mallory@evil.example/x' to='juliet@capulet.lit' type='chat' id='1'>"
      "<body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='juliet@capulet.lit'/>"
      "</message>");
  REQUIRE(s);
  CHECK(strip_claimed_stanza_ids(s, "juliet@capulet.lit", "capulet.lit") == 1);
  const MessageIds ids = message_ids(s);
  std::vector<policy::StanzaIdRef> refs;
  for (const auto& [id, by] : ids.stanza_ids) refs.push_back({id, by});
  const std::string content = fingerprint_content(s);
  policy::DedupInput in;
  in.stanza_ids = refs;
  in.from = "mallory@evil.example/x";
  in.to = "juliet@capulet.lit";
  in.type = "chat";
  in.id = ids.id;
  in.content = content;
  CHECK(policy::dedup_key(in, "juliet@capulet.lit", true).source ==
        policy::DedupSource::Fingerprint);
}

}  // namespace
}  // namespace s2
