// XEP-0492 settings read from the account's bookmarks (notification_settings.h): which items give
// a setting, under which namespace, resolved for client/phone; which stanzas mean "read again".
#include <doctest/doctest.h>

#include <string>

#include "common/xml/stanza.h"
#include "proxy/notification_settings.h"

namespace {
using s2::policy::MucNotify;

std::string items(const std::string& inner, const char* node = "urn:xmpp:bookmarks:1") {
  return std::string(
             "<iq type='result'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
             "<items node='") +
         node + "'>" + inner + "</items></pubsub></iq>";
}

std::string bookmark(const char* jid, const std::string& notify) {
  return std::string("<item id='") + jid +
         "'><conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'><nick>al</nick>"
         "<extensions>" +
         notify + "</extensions></conference></item>";
}

s2::policy::ChatNotifySettings parse(const std::string& xml) {
  s2::Stanza s = s2::Stanza::parse(xml);
  REQUIRE(s);
  return s2::NotificationSettings::parse_items(s);
}
}  // namespace

TEST_CASE("NotificationSettings::parse_items: table") {
  const char* n1 = "urn:xmpp:notification-settings:1";
  const char* n0 = "urn:xmpp:notification-settings:0";
  auto notify = [](const char* ns, const std::string& body) {
    return std::string("<notify xmlns='") + ns + "'>" + body + "</notify>";
  };
  struct Row {
    std::string xml;
    size_t size;
    const char* chat;  // the one chat checked
    std::optional<MucNotify> want;
    const char* why;
  };
  const Row rows[] = {
      {items(bookmark("Room@Muc.Example", notify(n1, "<never/>"))), 1, "room@muc.example",
       MucNotify::Never, "fallback never; JID lower-cased"},
      {items(bookmark("r@muc.x", notify(n0, "<always/>"))), 1, "r@muc.x", MucNotify::Always,
       "XEP-0492 0.1 namespace"},
      {items(bookmark("r@muc.x", notify(n1,
                                        "<never identity-category='client' identity-type='pc'/>"
                                        "<on-mention identity-category='client' "
                                        "identity-type='phone'/><always/>"))),
       1, "r@muc.x", MucNotify::OnMention, "the phone's own element"},
      {items(bookmark("r@muc.x", notify(n1,
                                        "<never identity-category='client' "
                                        "identity-type='pc'/>"))),
       0, "r@muc.x", std::nullopt, "only another device type: defaults"},
      {items(bookmark("r@muc.x", "")), 0, "r@muc.x", std::nullopt, "bookmark without settings"},
      {items(bookmark("r@muc.x", notify(n1, "<sometimes/>"))), 0, "r@muc.x", std::nullopt,
       "unknown setting ignored"},
      {items(bookmark("r@muc.x", notify("urn:other", "<never/>"))), 0, "r@muc.x", std::nullopt,
       "another namespace"},
      {items(bookmark("r@muc.x", notify(n1, "<never xmlns='urn:other'/><always/>"))), 1, "r@muc.x",
       MucNotify::Always, "a child in another namespace is not a setting"},
      {items(bookmark("r@muc.x", notify(n1, "<never/>")), "urn:xmpp:bookmarks:0"), 0, "r@muc.x",
       std::nullopt, "another node"},
      {items(bookmark("a@muc.x", notify(n1, "<never/>")) +
             bookmark("b@muc.x", notify(n1, "<always/>")) + "<item id='c@muc.x'/>"),
       2, "b@muc.x", MucNotify::Always, "several items; an empty one"},
      {"<iq type='result'/>", 0, "r@muc.x", std::nullopt, "no pubsub payload"},
  };
  for (const auto& r : rows) {
    INFO(r.why);
    const auto got = parse(r.xml);
    CHECK(got.size() == r.size);
    auto it = got.find(r.chat);
    CHECK((it == got.end() ? std::nullopt : std::optional<MucNotify>(it->second)) == r.want);
  }
}

TEST_CASE("NotificationSettings::touches_bookmarks: table") {
  const char* ps = "http://jabber.org/protocol/pubsub";
  struct Row {
    std::string xml;
    bool want;
    const char* why;
  };
  const Row rows[] = {
      {std::string("<iq type='set'><pubsub xmlns='") + ps +
           "'><publish node='urn:xmpp:bookmarks:1'><item id='r@m'/></publish></pubsub></iq>",
       true, "publish"},
      {std::string("<iq type='set'><pubsub xmlns='") + ps +
           "'><retract node='urn:xmpp:bookmarks:1'><item id='r@m'/></retract></pubsub></iq>",
       true, "retract"},
      {std::string("<iq type='get'><pubsub xmlns='") + ps +
           "'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>",
       false, "a read changes nothing"},
      {std::string("<iq type='set'><pubsub xmlns='") + ps +
           "'><publish node='urn:xmpp:mds:displayed:0'/></pubsub></iq>",
       false, "another node"},
      {"<message from='a@x'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
       "<items node='urn:xmpp:bookmarks:1'><item id='r@m'/></items></event></message>",
       true, "PEP notification"},
      {"<message from='a@x'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
       "<items node='urn:xmpp:avatar:metadata'/></event></message>",
       false, "another node's notification"},
      {"<message><body>urn:xmpp:bookmarks:1</body></message>", false, "a chat message"},
      {"<presence/>", false, "presence"},
  };
  for (const auto& r : rows) {
    INFO(r.why);
    s2::Stanza s = s2::Stanza::parse(r.xml);
    REQUIRE(s);
    CHECK(s2::NotificationSettings::touches_bookmarks(s) == r.want);
  }
}
