// XEP-0490 server assist: what is taken out of a device's message and what is
// published; the feature added to the account's disco#info.
#include <doctest/doctest.h>

#include <string>

#include "common/xml/stanza.h"
#include "proxy/displayed_sync.h"

namespace {
constexpr const char* kMds = "urn:xmpp:mds:displayed:0";

struct AssistCase {
  const char* name;
  const char* message;
  bool published;    // a payload comes back
  const char* left;  // the message afterwards
};
}  // namespace

TEST_CASE("DisplayedSync::take_assist: table") {
  const AssistCase cases[] = {
      {"marker + assist",
       "<message to='bob@x'><displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>"
       "<displayed xmlns='urn:xmpp:mds:displayed:0'><stanza-id xmlns='urn:xmpp:sid:0' by='a@x' "
       "id='7'/></displayed></message>",
       true,
       "<message to=\"bob@x\"><displayed xmlns=\"urn:xmpp:chat-markers:0\" id=\"m1\"/></message>"},
      {"no assist: untouched",
       "<message to='bob@x'><displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/></message>", false,
       "<message to=\"bob@x\"><displayed xmlns=\"urn:xmpp:chat-markers:0\" id=\"m1\"/></message>"},
      {"assist without stanza-id: stripped, not published",
       "<message to='bob@x'><body>hi</body><displayed xmlns='urn:xmpp:mds:displayed:0'/></message>",
       false, "<message to=\"bob@x\"><body>hi</body></message>"},
      {"two stanza-ids: stripped, not published",
       "<message to='bob@x'><body>hi</body><displayed xmlns='urn:xmpp:mds:displayed:0'>"
       "<stanza-id xmlns='urn:xmpp:sid:0' id='1'/><stanza-id xmlns='urn:xmpp:sid:0' "
       "id='2'/></displayed></message>",
       false, "<message to=\"bob@x\"><body>hi</body></message>"},
      {"stanza-id in another namespace: not a state",
       "<message to='bob@x'><body>hi</body><displayed xmlns='urn:xmpp:mds:displayed:0'>"
       "<stanza-id xmlns='urn:other' id='1'/></displayed></message>",
       false, "<message to=\"bob@x\"><body>hi</body></message>"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    s2::Stanza m = s2::Stanza::parse(c.message);
    REQUIRE(m);
    auto payload = s2::DisplayedSync::take_assist(m);
    CHECK(payload.has_value() == c.published);
    CHECK(m.to_string() == s2::Stanza::parse(c.left).to_string());
    if (payload) {
      CHECK(payload->is("displayed", kMds));
      CHECK(payload->child("stanza-id", "urn:xmpp:sid:0").attr_or("id") == "7");
      CHECK(payload->child("stanza-id", "urn:xmpp:sid:0").attr_or("by") == "a@x");
    }
  }
}

TEST_CASE("DisplayedSync::advertise: once, top-level disco#info only") {
  const char* feature = "urn:xmpp:mds:server-assist:0";
  auto count = [&](const s2::Stanza& iq) {
    int n = 0;
    for (auto& f : iq.child("query").children())
      if (f.attr_or("var") == feature) ++n;
    return n;
  };
  s2::Stanza iq = s2::Stanza::parse(
      "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'>"
      "<feature var='urn:xmpp:mam:2'/></query></iq>");
  s2::DisplayedSync::advertise(iq, "a@x");
  CHECK(count(iq) == 1);
  s2::DisplayedSync::advertise(iq, "a@x");
  CHECK(count(iq) == 1);
  s2::Stanza node = s2::Stanza::parse(
      "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info' node='x'/></iq>");
  s2::DisplayedSync::advertise(node, "a@x");
  CHECK(count(node) == 0);
  s2::Stanza items = s2::Stanza::parse(
      "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
  s2::DisplayedSync::advertise(items, "a@x");
  CHECK(count(items) == 0);
}
