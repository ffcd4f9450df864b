// delivery_facts: a stanza as a device receives it → class, urgency and CSI coalescing key, with
// the daemon-only facts (direction, MUC nick, mentions, carbons, MAM results) filled in.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <string_view>

#include "proxy/delivery_urgency.h"

namespace s2 {
namespace {

using C = policy::MessageClass;
using U = policy::Urgency;

constexpr std::string_view kAccount = "alice@legacy.test";

std::string carbon(std::string_view kind, std::string_view inner) {
  return "<message from='alice@legacy.test' to='alice@legacy.test/phone' type='chat'><" +
         std::string(kind) + " xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
         std::string(inner) + "</forwarded></" + std::string(kind) + "></message>";
}

TEST_CASE("delivery urgency: one row per kind of delivery") {
  const std::map<std::string, std::string> nicks = {{"room@muc.legacy.test", "Ally"}};
  const DeliveryView view{kAccount, &nicks};
  struct Row {
    std::string xml;
    C cls;
    U want;
    std::string_view why;
  };
  const std::string chat_from_bob =
      "<message xmlns='jabber:client' from='bob@legacy.test/b1' to='alice@legacy.test' "
      "type='chat'><body>hi</body></message>";
  const std::string state_from_bob =
      "<message xmlns='jabber:client' from='bob@legacy.test/b1' to='alice@legacy.test' "
      "type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>";
  const Row rows[] = {
      {chat_from_bob, C::ChatBody, U::Urgent, "a contact's message"},
      {state_from_bob, C::ChatState, U::Silent, "a contact's chat state"},
      {"<message from='bob@legacy.test/b1' type='chat'><body>x</body>"
       "<active xmlns='http://jabber.org/protocol/chatstates'/></message>",
       C::ChatBody, U::Urgent, "a body beats the chat state riding along"},
      {"<message from='alice@legacy.test/laptop' to='alice@legacy.test/phone' type='chat'>"
       "<body>note to self</body></message>",
       C::ChatBody, U::Normal, "from the account itself: at most normal"},
      {carbon("received",
              "<message xmlns='jabber:client' from='bob@legacy.test/b1' "
              "to='alice@legacy.test/laptop' type='chat'><body>hi</body></message>"),
       C::ChatBody, U::Urgent, "received carbon: the inner message counts"},
      {carbon("sent",
              "<message xmlns='jabber:client' from='alice@legacy.test/laptop' "
              "to='bob@legacy.test' type='chat'><body>hi</body></message>"),
       C::ChatBody, U::Normal, "sent carbon: our own words"},
      {carbon("sent",
              "<message xmlns='jabber:client' from='alice@legacy.test/laptop' "
              "to='bob@legacy.test' type='chat'><paused "
              "xmlns='http://jabber.org/protocol/chatstates'/></message>"),
       C::ChatState, U::Silent, "sent carbon of a chat state"},
      {"<message from='bob@legacy.test/b1' type='chat'><received xmlns='urn:xmpp:receipts' "
       "id='m1'/></message>",
       C::Receipt, U::Silent, "receipt"},
      {"<message from='bob@legacy.test/b1' type='chat'><displayed "
       "xmlns='urn:xmpp:chat-markers:0' id='m1'/></message>",
       C::Marker, U::Silent, "marker"},
      {"<message from='bob@legacy.test/b1' type='chat'><body>fixed</body><replace "
       "xmlns='urn:xmpp:message-correct:0' id='m1'/></message>",
       C::Correction, U::Normal, "correction"},
      {"<message from='bob@legacy.test/b1' type='error' id='m1'><error type='cancel'>"
       "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
       C::Error, U::Normal, "error: flushes, never pushes"},
      {"<message from='news.legacy.test' type='headline'><body>news</body></message>", C::Headline,
       U::Silent, "headline"},
      {"<presence from='bob@legacy.test/b1'><show>away</show></presence>", C::Presence, U::Silent,
       "presence"},
      {"<presence from='bob@legacy.test/b1' type='unavailable'/>", C::Presence, U::Silent,
       "unavailable"},
      {"<presence from='bob@legacy.test' type='subscribe'/>", C::Subscription, U::Urgent,
       "subscription request"},
      {"<presence from='bob@legacy.test' type='subscribed'/>", C::Subscription, U::Normal,
       "subscription answer"},
      {"<iq from='bob@legacy.test/b1' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>", C::Iq,
       U::Immediate, "iq"},
      {"<iq type='result' id='r'/>", C::Iq, U::Immediate, "iq result"},
      {"<message from='alice@legacy.test' to='alice@legacy.test/phone'><result "
       "xmlns='urn:xmpp:mam:2' queryid='q' id='1'><forwarded xmlns='urn:xmpp:forward:0'>"
       "<message xmlns='jabber:client' from='bob@legacy.test/b1' type='chat'><composing "
       "xmlns='http://jabber.org/protocol/chatstates'/></message></forwarded></result></message>",
       C::Other, U::Immediate, "MAM result: part of the answer to an iq"},
      // MUC: the nick this device joined room@muc with is "Ally"; other rooms use "alice".
      {"<message from='room@muc.legacy.test/bob' type='groupchat'><body>hello all</body>"
       "</message>",
       C::Groupchat, U::Silent, "groupchat without mention"},
      {"<message from='room@muc.legacy.test/bob' type='groupchat'><body>hey ally, look</body>"
       "</message>",
       C::Groupchat, U::Urgent, "nick as a word (case folded)"},
      {"<message from='room@muc.legacy.test/bob' type='groupchat'><body>Allyson is here</body>"
       "</message>",
       C::Groupchat, U::Silent, "nick inside a longer word"},
      {"<message from='room@muc.legacy.test/bob' type='groupchat'><body>alice?</body></message>",
       C::Groupchat, U::Silent, "the local part is not the nick in this room"},
      {"<message from='ROOM@muc.legacy.test/bob' type='groupchat'><body>ping alice@legacy.test"
       "</body></message>",
       C::Groupchat, U::Urgent, "bare JID as a word (room JID case folded)"},
      {"<message from='other@muc.legacy.test/bob' type='groupchat'><body>alice: hi</body>"
       "</message>",
       C::Groupchat, U::Urgent, "unknown room: the local part is the nick"},
      {"<message from='room@muc.legacy.test/bob' type='groupchat'><body>look</body><reference "
       "xmlns='urn:xmpp:reference:0' type='mention' begin='0' end='4' "
       "uri='xmpp:alice@legacy.test'/></message>",
       C::Groupchat, U::Urgent, "XEP-0372 mention of the account"},
      {"<message from='room@muc.legacy.test/bob' type='groupchat'><body>look</body><reference "
       "xmlns='urn:xmpp:reference:0' type='mention' uri='xmpp:room@muc.legacy.test/Ally'/>"
       "</message>",
       C::Groupchat, U::Urgent, "XEP-0372 mention of the occupant"},
      {"<message from='room@muc.legacy.test/bob' type='groupchat'><body>look</body><reference "
       "xmlns='urn:xmpp:reference:0' type='data' uri='xmpp:alice@legacy.test'/></message>",
       C::Groupchat, U::Silent, "a reference that is not a mention"},
      {"<message from='room@muc.legacy.test/Ally' type='groupchat'><body>Ally here</body>"
       "</message>",
       C::Groupchat, U::Silent, "our own reflection never mentions us"},
      {"<message from='room@muc.legacy.test' type='groupchat'><subject>new</subject></message>",
       C::Groupchat, U::Normal, "room subject"},
      {"<message from='room@muc.legacy.test/bob' type='groupchat'><composing "
       "xmlns='http://jabber.org/protocol/chatstates'/></message>",
       C::Groupchat, U::Silent, "groupchat chat state"},
      {"<message from='room@muc.legacy.test/bob' to='alice@legacy.test/phone' type='chat'>"
       "<body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>",
       C::MucPrivate, U::Urgent, "MUC PM"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.why);
    const auto s = Stanza::parse(r.xml);
    REQUIRE(s);
    const auto f = delivery_facts(s, view);
    CHECK(f.cls == r.cls);
    CHECK(policy::to_string(f.urgency) == policy::to_string(r.want));
  }
}

TEST_CASE("delivery urgency: CSI coalescing keys") {
  const DeliveryView view{kAccount, nullptr};
  auto key = [&](const std::string& xml) { return delivery_facts(Stanza::parse(xml), view); };
  const auto p1 = key("<presence from='bob@legacy.test/b1'><show>away</show></presence>");
  const auto p2 = key("<presence from='Bob@legacy.test/b1' type='unavailable'/>");
  const auto p3 = key("<presence from='bob@legacy.test/b2'/>");
  REQUIRE(p1.coalesce_key);
  CHECK(p1.coalesce_key == p2.coalesce_key);  // latest presence of one full JID wins
  CHECK(p1.coalesce_key != p3.coalesce_key);  // per full JID
  CHECK_FALSE(key("<presence from='bob@legacy.test' type='subscribe'/>").coalesce_key);

  const auto s1 =
      key("<message from='bob@legacy.test/b1' type='chat'><composing "
          "xmlns='http://jabber.org/protocol/chatstates'/></message>");
  const auto s2 =
      key("<message from='bob@legacy.test/b1' type='chat'><paused "
          "xmlns='http://jabber.org/protocol/chatstates'/></message>");
  REQUIRE(s1.coalesce_key);
  CHECK(s1.coalesce_key == s2.coalesce_key);
  CHECK(s1.coalesce_key != p1.coalesce_key);  // a chat state never replaces a presence
  // A sibling's chat state (sent carbon) is keyed by its addressee.
  const auto sent_bob = key(carbon("sent",
                                   "<message xmlns='jabber:client' from='alice@legacy.test/laptop' "
                                   "to='bob@legacy.test' type='chat'><paused "
                                   "xmlns='http://jabber.org/protocol/chatstates'/></message>"));
  const auto sent_carol =
      key(carbon("sent",
                 "<message xmlns='jabber:client' from='alice@legacy.test/laptop' "
                 "to='carol@legacy.test' type='chat'><paused "
                 "xmlns='http://jabber.org/protocol/chatstates'/></message>"));
  REQUIRE(sent_bob.coalesce_key);
  CHECK(sent_bob.coalesce_key != sent_carol.coalesce_key);
  // Kept: a chat state with <store/>, a body, a receipt.
  CHECK_FALSE(key("<message from='bob@legacy.test/b1' type='chat'><composing "
                  "xmlns='http://jabber.org/protocol/chatstates'/><store xmlns='urn:xmpp:hints'/>"
                  "</message>")
                  .coalesce_key);
  CHECK_FALSE(
      key("<message from='bob@legacy.test/b1' type='chat'><body>x</body></message>").coalesce_key);
  CHECK_FALSE(key("<message from='bob@legacy.test/b1' type='chat'><received "
                  "xmlns='urn:xmpp:receipts' id='m'/></message>")
                  .coalesce_key);
}

TEST_CASE("delivery urgency: whole-word match") {
  struct Row {
    std::string_view text, word;
    bool want;
  };
  const Row rows[] = {
      {"alice", "alice", true},    {"Alice!", "alice", true},     {"hi alice, hi", "ALICE", true},
      {"malice", "alice", false},  {"alice2", "alice", false},    {"alice_", "alice", false},
      {"(alice)", "alice", true},  {"", "alice", false},          {"alice", "", false},
      {"ali", "alice", false},     {"a alice", "alice", true},    {"alicé", "alic", false},
      {"xx alice", "alice", true}, {"alice-bob", "alice", false},
  };
  for (const auto& r : rows) {
    CAPTURE(r.text);
    CAPTURE(r.word);
    CHECK(contains_word(r.text, r.word) == r.want);
  }
}

}  // namespace
}  // namespace s2

namespace s2 {
namespace {

TEST_CASE("delivery urgency: the chat's XEP-0492 setting") {
  const std::map<std::string, std::string> nicks = {{"room@muc.legacy.test", "Ally"}};
  const policy::ChatNotifySettings settings = {{"room@muc.legacy.test", policy::MucNotify::Never},
                                               {"loud@muc.legacy.test", policy::MucNotify::Always},
                                               {"bob@legacy.test", policy::MucNotify::Never}};
  const DeliveryView view{kAccount, &nicks, &settings};
  struct Row {
    std::string xml;
    U want;
    std::string_view why;
  };
  const Row rows[] = {
      {"<message from='Room@muc.legacy.test/bob' type='groupchat'><body>Ally: "
       "look</body></message>",
       U::Silent, "muted room (JID case folded): a mention waits"},
      {"<message from='loud@muc.legacy.test/bob' type='groupchat'><body>hello</body></message>",
       U::Urgent, "room set to always"},
      {"<message from='other@muc.legacy.test/bob' type='groupchat'><body>alice: "
       "hi</body></message>",
       U::Urgent, "no setting: on mention"},
      {"<message from='bob@legacy.test/b1' type='chat'><body>hi</body></message>", U::Silent,
       "1:1 chat set to never"},
      {"<message from='carol@legacy.test/c' type='chat'><body>hi</body></message>", U::Urgent,
       "1:1 without setting: always"},
      {carbon("received",
              "<message from='bob@legacy.test/b1' to='alice@legacy.test/pc' type='chat'>"
              "<body>hi</body></message>"),
       U::Silent, "a received carbon from the muted peer"},
  };
  for (const auto& r : rows) {
    INFO(r.why);
    Stanza s = Stanza::parse(r.xml);
    REQUIRE(s);
    CHECK(delivery_facts(s, view).urgency == r.want);
  }
}

}  // namespace
}  // namespace s2
