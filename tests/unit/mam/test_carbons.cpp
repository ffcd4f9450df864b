// XEP-0280 carbons: wrap/unwrap round trips, the XEP's examples, rejects, and the
// XEP-0297 forwarding helpers.
#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "common/mam/carbons.h"
#include "common/mam/datetime.h"
#include "tests/unit/session2/xml_canon.h"

namespace s2::mam {
namespace {

using session2::test::canon;
using session2::test::canon_serialised;

const char* kInner =
    "<message from='juliet@capulet.example/balcony' to='romeo@montague.example/garden' "
    "type='chat'><body>What man art thou that, thus bescreen'd in night, so stumblest on my "
    "counsel?</body><thread>0e3141cd80894871a68e6fe6b1ec56fa</thread></message>";

}  // namespace

TEST_CASE("wrap_carbon") {
  struct Row {
    CarbonKind kind;
    std::string inner;
    const char* want;
  };
  const Row rows[] = {
      {CarbonKind::Received,
       "<message from='j@c/b' to='r@m/g' type='chat'><body>x</body></message>",
       "<message from='r@m' to='r@m/phone' type='chat'><received xmlns='urn:xmpp:carbons:2'>"
       "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='j@c/b' "
       "to='r@m/g' type='chat'><body>x</body></message></forwarded></received></message>"},
      {CarbonKind::Sent, "<message to='j@c' type='normal'><body>x</body></message>",
       "<message from='r@m' to='r@m/phone' type='normal'><sent xmlns='urn:xmpp:carbons:2'>"
       "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' to='j@c' "
       "type='normal'><body>x</body></message></forwarded></sent></message>"},
      {CarbonKind::Sent, "<message to='j@c'><body>x</body></message>",  // type defaults to chat
       "<message from='r@m' to='r@m/phone' type='chat'><sent xmlns='urn:xmpp:carbons:2'>"
       "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' to='j@c'>"
       "<body>x</body></message></forwarded></sent></message>"},
  };
  for (const auto& r : rows) {
    INFO(r.want);
    Stanza inner = Stanza::parse(r.inner);
    REQUIRE(inner);
    Stanza w = wrap_carbon(r.kind, "r@m", "r@m/phone", inner);
    CHECK(canon_serialised(w) == canon(r.want));
    Stanza reparsed = Stanza::parse(w.to_string());
    CHECK(reparsed.child_ns(kNsCarbons).child("forwarded", kNsForward).child("message").xmlns() ==
          "jabber:client");
    CHECK(inner.xmlns().empty());  // the caller's stanza is untouched
  }
}

TEST_CASE("carbons round trip") {
  for (CarbonKind kind : {CarbonKind::Received, CarbonKind::Sent}) {
    CAPTURE(static_cast<int>(kind));
    Stanza inner = Stanza::parse(kInner);
    REQUIRE(inner);
    Stanza w = wrap_carbon(kind, "romeo@montague.example", "romeo@montague.example/home", inner);
    auto c = unwrap_carbon(Stanza::parse(w.to_string()));
    REQUIRE(c);
    CHECK(c->kind == kind);
    CHECK(c->inner.xmlns().empty());
    CHECK(canon(c->inner) == canon(kInner));
    // Wrapping what was unwrapped gives the same carbon.
    CHECK(canon_serialised(wrap_carbon(kind, "romeo@montague.example",
                                       "romeo@montague.example/home", c->inner)) == canon(w));
  }
}

TEST_CASE("unwrap_carbon: XEP-0280 examples") {
  // §7, example 12 (received) and §8, example 13 (sent).
  auto rc = unwrap_carbon(Stanza::parse(
      "<message xmlns='jabber:client' from='romeo@montague.example' "
      "to='romeo@montague.example/home' type='chat'>"
      "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
      "<message xmlns='jabber:client' from='juliet@capulet.example/balcony' "
      "to='romeo@montague.example/garden' type='chat'><body>What man art thou?</body>"
      "<thread>0e3141cd80894871a68e6fe6b1ec56fa</thread></message></forwarded></received>"
      "</message>"));
  REQUIRE(rc);
  CHECK(rc->kind == CarbonKind::Received);
  CHECK(rc->inner.attr_or("from") == "juliet@capulet.example/balcony");
  CHECK(rc->inner.child("body").text_content() == "What man art thou?");
  CHECK(rc->inner.child("thread", "jabber:client"));

  auto sc = unwrap_carbon(Stanza::parse(
      "<message from='romeo@montague.example' to='romeo@montague.example/garden' type='chat'>"
      "<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
      "<message xmlns='jabber:client' to='juliet@capulet.example/balcony' "
      "from='romeo@montague.example/home' type='chat'><body>Neither, fair saint.</body>"
      "</message></forwarded></sent></message>"));
  REQUIRE(sc);
  CHECK(sc->kind == CarbonKind::Sent);
  CHECK(sc->inner.attr_or("to") == "juliet@capulet.example/balcony");
}

TEST_CASE("unwrap_carbon: rejects") {
  const std::string fwd =
      "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><body>x</body>"
      "</message></forwarded>";
  struct Row {
    const char* what;
    std::string xml;
  };
  const Row rows[] = {
      {"plain message", "<message><body>x</body></message>"},
      {"not a message", "<iq><received xmlns='urn:xmpp:carbons:2'>" + fwd + "</received></iq>"},
      {"carbons v1 namespace",
       "<message><received xmlns='urn:xmpp:carbons:1'>" + fwd + "</received></message>"},
      {"receipt, not a carbon",
       "<message><received xmlns='urn:xmpp:receipts' id='x'/><body>x</body></message>"},
      {"private hint only", "<message><private xmlns='urn:xmpp:carbons:2'/></message>"},
      {"both sent and received", "<message><received xmlns='urn:xmpp:carbons:2'>" + fwd +
                                     "</received><sent xmlns='urn:xmpp:carbons:2'>" + fwd +
                                     "</sent></message>"},
      {"received twice", "<message><received xmlns='urn:xmpp:carbons:2'>" + fwd +
                             "</received><received xmlns='urn:xmpp:carbons:2'>" + fwd +
                             "</received></message>"},
      {"no forwarded", "<message><sent xmlns='urn:xmpp:carbons:2'/></message>"},
      {"forwarded in the carbons namespace",
       "<message><sent xmlns='urn:xmpp:carbons:2'><forwarded><message "
       "xmlns='jabber:client'/></forwarded></sent></message>"},
      {"no inner message",
       "<message><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'/>"
       "</sent></message>"},
      {"inner message without its namespace",
       "<message><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
       "<message/></forwarded></sent></message>"},
      {"inner presence",
       "<message><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
       "<presence xmlns='jabber:client'/></forwarded></sent></message>"},
      {"two inner messages",
       "<message><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
       "<message xmlns='jabber:client'/><message xmlns='jabber:client'/></forwarded></sent>"
       "</message>"},
      {"forwarded nested deeper",
       "<message><sent xmlns='urn:xmpp:carbons:2'><x>" + fwd + "</x></sent></message>"},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    Stanza el = Stanza::parse(r.xml);
    REQUIRE(el);
    CHECK_FALSE(unwrap_carbon(el));
  }
  CHECK_FALSE(unwrap_carbon(Stanza()));
}

TEST_CASE("forwarded helpers") {
  Stanza inner = Stanza::parse("<message to='a@b'><body>x</body></message>");
  REQUIRE(inner);
  Stanza f = build_forwarded(inner, 1000);
  CHECK(canon_serialised(f) ==
        canon("<forwarded xmlns='urn:xmpp:forward:0'>"
              "<delay xmlns='urn:xmpp:delay' stamp='1970-01-01T00:00:01.000Z'/>"
              "<message xmlns='jabber:client' to='a@b'><body>x</body></message></forwarded>"));
  auto p = parse_forwarded(Stanza::parse(f.to_string()));
  REQUIRE(p);
  CHECK(p->stamp_ms == 1000);
  CHECK(canon(p->message) == canon(inner));

  Stanza nodelay = build_forwarded(inner);
  CHECK_FALSE(nodelay.child("delay", kNsDelay));
  p = parse_forwarded(nodelay);  // also straight from the built tree
  REQUIRE(p);
  CHECK_FALSE(p->stamp_ms);

  // Other children of <forwarded/> are ignored; the first <delay/> counts.
  p = parse_forwarded(
      Stanza::parse("<forwarded xmlns='urn:xmpp:forward:0'><foo xmlns='urn:x'/>"
                    "<delay xmlns='urn:xmpp:delay' stamp='2000-01-01T00:00:00+01:00'/>"
                    "<delay xmlns='urn:xmpp:delay' stamp='2001-01-01T00:00:00Z'/>"
                    "<message xmlns='jabber:client'/></forwarded>"));
  REQUIRE(p);
  CHECK(p->stamp_ms == parse_datetime("1999-12-31T23:00:00Z"));
  CHECK_FALSE(parse_forwarded(Stanza()));
  CHECK_FALSE(parse_forwarded(Stanza::parse("<message/>")));
}

}  // namespace s2::mam
