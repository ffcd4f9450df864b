// Stream Management (XEP-0198) tests: element parsers and builders, and SmState
// counting, acks, wrap-around at 2^32, the queue bound and resumption.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/session2/sm.h"
#include "tests/unit/session2/xml_canon.h"

namespace s2::session2 {
namespace {

using test::canon;
using test::canon_serialised;

Stanza msg(int n) {
  Stanza m = Stanza::element("message");
  m.set_attr("id", "m" + std::to_string(n));
  return m;
}

std::vector<std::string> ids(const std::vector<Stanza>& v) {
  std::vector<std::string> out;
  for (const auto& s : v) out.push_back(s.attr_or("id"));
  return out;
}

void send(SmState& sm, int from, int to) {
  for (int i = from; i <= to; ++i) REQUIRE(sm.on_outbound(msg(i)) == SmState::Outbound::Queued);
}

}  // namespace

TEST_CASE("SM builders") {
  struct Row {
    Stanza built;
    const char* want;
  };
  const Row rows[] = {
      {build_sm_enable({}), "<enable xmlns='urn:xmpp:sm:3'/>"},
      {build_sm_enable({true, 300}), "<enable xmlns='urn:xmpp:sm:3' resume='true' max='300'/>"},
      {build_sm_enabled({}), "<enabled xmlns='urn:xmpp:sm:3'/>"},
      {build_sm_enabled({"some-long-sm-id", true, 600, "[2001:41D0:1:A49b::1]:9222"}),
       "<enabled xmlns='urn:xmpp:sm:3' id='some-long-sm-id' resume='true' max='600'"
       " location='[2001:41D0:1:A49b::1]:9222'/>"},
      {build_sm_resume("sm-1", 4294967295u),
       "<resume xmlns='urn:xmpp:sm:3' previd='sm-1' h='4294967295'/>"},
      {build_sm_resumed("sm-1", 0), "<resumed xmlns='urn:xmpp:sm:3' previd='sm-1' h='0'/>"},
      {build_sm_failed(), "<failed xmlns='urn:xmpp:sm:3'/>"},
      {build_sm_failed("item-not-found", 7u),
       "<failed xmlns='urn:xmpp:sm:3' h='7'>"
       "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"},
      {build_sm_failed("unexpected-request"),
       "<failed xmlns='urn:xmpp:sm:3'>"
       "<unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"},
      {build_sm_ack(12), "<a xmlns='urn:xmpp:sm:3' h='12'/>"},
      {build_sm_request(), "<r xmlns='urn:xmpp:sm:3'/>"},
      {build_handled_count_too_high(10, 8),
       "<handled-count-too-high xmlns='urn:xmpp:sm:3' h='10' send-count='8'/>"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.want);
    CHECK(canon_serialised(r.built) == canon(r.want));
  }
}

TEST_CASE("SM parsers: valid elements") {
  auto en = parse_sm_enable(Stanza::parse("<enable xmlns='urn:xmpp:sm:3' resume='1' max='60'/>"));
  REQUIRE(en.ok());
  CHECK(en->resume);
  CHECK(en->max == 60u);
  en = parse_sm_enable(Stanza::parse("<enable xmlns='urn:xmpp:sm:3'/>"));
  REQUIRE(en.ok());
  CHECK_FALSE(en->resume);
  CHECK_FALSE(en->max);

  auto ed = parse_sm_enabled(Stanza::parse(
      "<enabled xmlns='urn:xmpp:sm:3' id='x' resume='true' max='600' location='h:1'/>"));
  REQUIRE(ed.ok());
  CHECK(ed->id == "x");
  CHECK(ed->resume);
  CHECK(ed->max == 600u);
  CHECK(ed->location == "h:1");
  ed = parse_sm_enabled(Stanza::parse("<enabled xmlns='urn:xmpp:sm:3'/>"));
  REQUIRE(ed.ok());
  CHECK(ed->id.empty());
  CHECK_FALSE(ed->resume);

  auto rs = parse_sm_resume(Stanza::parse("<resume xmlns='urn:xmpp:sm:3' previd='p' h='0'/>"));
  REQUIRE(rs.ok());
  CHECK(rs->previd == "p");
  CHECK(rs->h == 0u);
  auto rd =
      parse_sm_resumed(Stanza::parse("<resumed xmlns='urn:xmpp:sm:3' previd='p' h='4294967295'/>"));
  REQUIRE(rd.ok());
  CHECK(rd->h == 4294967295u);

  auto f =
      parse_sm_failed(Stanza::parse("<failed xmlns='urn:xmpp:sm:3' h='5'><item-not-found "
                                    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"));
  REQUIRE(f.ok());
  CHECK(f->condition == "item-not-found");
  CHECK(f->h == 5u);
  f = parse_sm_failed(Stanza::parse("<failed xmlns='urn:xmpp:sm:3'/>"));
  REQUIRE(f.ok());
  CHECK(f->condition.empty());
  CHECK_FALSE(f->h);

  auto a = parse_sm_ack(Stanza::parse("<a xmlns='urn:xmpp:sm:3' h='3'/>"));
  REQUIRE(a.ok());
  CHECK(a->h == 3u);
  CHECK(parse_sm_request(Stanza::parse("<r xmlns='urn:xmpp:sm:3'/>")).ok());
}

TEST_CASE("SM parsers: errors") {
  const std::string long_id(kMaxSmIdBytes + 1, 'i');
  struct Row {
    std::string xml;
    const char* condition;
  };
  const Row rows[] = {
      {"<enable xmlns='urn:xmpp:sm:3' resume='yes'/>", "bad-request"},
      {"<enable xmlns='urn:xmpp:sm:3' max='-1'/>", "bad-request"},
      {"<enable xmlns='urn:xmpp:sm:2'/>", "undefined-condition"},  // not SM 3 at all
      {"<resume xmlns='urn:xmpp:sm:3' h='1'/>", "bad-request"},
      {"<resume xmlns='urn:xmpp:sm:3' previd='p'/>", "bad-request"},
      {"<resume xmlns='urn:xmpp:sm:3' previd='p' h='x'/>", "bad-request"},
      {"<resume xmlns='urn:xmpp:sm:3' previd='p' h='4294967296'/>", "bad-request"},
      {"<resume xmlns='urn:xmpp:sm:3' previd='" + long_id + "' h='1'/>", "bad-request"},
      {"<enabled xmlns='urn:xmpp:sm:3' resume='true'/>", "undefined-condition"},
      {"<enabled xmlns='urn:xmpp:sm:3' id='x' max='big'/>", "undefined-condition"},
      {"<resumed xmlns='urn:xmpp:sm:3' previd='p'/>", "undefined-condition"},
      {"<resumed xmlns='urn:xmpp:sm:3' h='1'/>", "undefined-condition"},
      {"<failed xmlns='urn:xmpp:sm:3' h='1.5'/>", "undefined-condition"},
      {"<a xmlns='urn:xmpp:sm:3'/>", "undefined-condition"},
      {"<a xmlns='urn:xmpp:sm:3' h=''/>", "undefined-condition"},
      {"<a xmlns='urn:xmpp:sm:3' h='abc'/>", "undefined-condition"},
      {"<a xmlns='urn:xmpp:sm:3' h='4294967296'/>", "undefined-condition"},
      {"<a xmlns='urn:xmpp:sm:3' h='-0'/>", "undefined-condition"},
      {"<t xmlns='urn:xmpp:sm:3'/>", "unsupported-stanza-type"},
      {"<a h='1'/>", "undefined-condition"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.xml);
    auto res = parse_sm(Stanza::parse(r.xml));
    REQUIRE_FALSE(res.ok());
    CHECK(res.error().condition == r.condition);
  }
}

TEST_CASE("parse_sm dispatches") {
  CHECK(
      std::holds_alternative<SmAck>(*parse_sm(Stanza::parse("<a xmlns='urn:xmpp:sm:3' h='1'/>"))));
  CHECK(std::holds_alternative<SmRequest>(*parse_sm(Stanza::parse("<r xmlns='urn:xmpp:sm:3'/>"))));
  CHECK(std::holds_alternative<SmEnable>(
      *parse_sm(Stanza::parse("<enable xmlns='urn:xmpp:sm:3'/>"))));
  CHECK(std::holds_alternative<SmEnabled>(
      *parse_sm(Stanza::parse("<enabled xmlns='urn:xmpp:sm:3'/>"))));
  CHECK(std::holds_alternative<SmResume>(
      *parse_sm(Stanza::parse("<resume xmlns='urn:xmpp:sm:3' previd='p' h='1'/>"))));
  CHECK(std::holds_alternative<SmResumed>(
      *parse_sm(Stanza::parse("<resumed xmlns='urn:xmpp:sm:3' previd='p' h='1'/>"))));
  CHECK(std::holds_alternative<SmFailed>(
      *parse_sm(Stanza::parse("<failed xmlns='urn:xmpp:sm:3'/>"))));
  CHECK_FALSE(parse_sm(Stanza()).ok());
  // The typed parsers reject other elements with their own condition.
  auto e = parse_sm_enable(Stanza::parse("<enable xmlns='urn:xmpp:sm:2'/>"));
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().condition == "bad-request");
  auto a = parse_sm_ack(Stanza::parse("<r xmlns='urn:xmpp:sm:3'/>"));
  REQUIRE_FALSE(a.ok());
  CHECK(a.error().condition == "undefined-condition");
}

TEST_CASE("only message, presence and iq are counted") {
  struct Row {
    const char* xml;
    bool counted;
  };
  const Row rows[] = {
      {"<message/>", true},
      {"<presence/>", true},
      {"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>", true},
      {"<message xmlns='jabber:client'/>", true},
      {"<message xmlns='jabber:server'/>", true},
      {"<message xmlns='urn:example'/>", false},
      {"<r xmlns='urn:xmpp:sm:3'/>", false},
      {"<a xmlns='urn:xmpp:sm:3' h='1'/>", false},
      {"<enable xmlns='urn:xmpp:sm:3'/>", false},
      {"<features xmlns='http://etherx.jabber.org/streams'/>", false},
  };
  for (const auto& r : rows) {
    CAPTURE(r.xml);
    Stanza s = Stanza::parse(r.xml);
    REQUIRE(s);
    CHECK(is_sm_counted(s) == r.counted);
    SmState sm;
    CHECK(sm.on_inbound(s) == r.counted);
    CHECK(sm.inbound_h() == (r.counted ? 1u : 0u));
    CHECK((sm.on_outbound(s) == SmState::Outbound::Queued) == r.counted);
    CHECK(sm.sent_count() == (r.counted ? 1u : 0u));
  }
  CHECK_FALSE(is_sm_counted(Stanza()));
}

TEST_CASE("inbound h wraps at 2^32") {
  SmState sm = SmState::restore(10, 4294967294u, 0);
  CHECK(sm.on_inbound(msg(1)));
  CHECK(sm.inbound_h() == 4294967295u);
  CHECK(canon_serialised(sm.build_ack()) == canon("<a xmlns='urn:xmpp:sm:3' h='4294967295'/>"));
  CHECK(sm.on_inbound(msg(2)));
  CHECK(sm.inbound_h() == 0u);
  CHECK(sm.on_inbound(msg(3)));
  CHECK(sm.inbound_h() == 1u);
}

TEST_CASE("acks: partial, duplicate, too high, backwards") {
  SmState sm;
  send(sm, 1, 5);
  CHECK(sm.sent_count() == 5u);
  CHECK(sm.unacked_count() == 5u);

  auto r = sm.on_ack(2);  // partial
  REQUIRE(r.ok());
  CHECK(ids(*r) == std::vector<std::string>{"m1", "m2"});
  CHECK(sm.acked_h() == 2u);
  CHECK(sm.unacked_count() == 3u);

  r = sm.on_ack(2);  // duplicate: nothing new
  REQUIRE(r.ok());
  CHECK(r->empty());
  CHECK(sm.unacked_count() == 3u);

  r = sm.on_ack(6);  // §4: more than was sent
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().condition == "undefined-condition");
  CHECK(r.error().text == "You acknowledged 6 stanzas, but I only sent you 5 so far.");
  CHECK(sm.acked_h() == 2u);  // unchanged
  CHECK(sm.unacked_count() == 3u);

  r = sm.on_ack(1);  // backwards
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().condition == "undefined-condition");
  CHECK(r.error().text.find("lower") != std::string::npos);

  r = sm.on_ack(5);  // the rest
  REQUIRE(r.ok());
  CHECK(ids(*r) == std::vector<std::string>{"m3", "m4", "m5"});
  CHECK(sm.unacked_count() == 0u);

  r = sm.on_ack(4294967295u);  // "-1": backwards, not a huge ack
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().text.find("lower") != std::string::npos);
}

TEST_CASE("outbound counter and acks across the 2^32 wrap") {
  SmState sm = SmState::restore(10, 0, 4294967293u);
  CHECK(sm.acked_h() == 4294967293u);
  send(sm, 1, 5);  // sequence numbers 4294967294, 4294967295, 0, 1, 2
  CHECK(sm.sent_count() == 2u);
  CHECK(sm.unacked_count() == 5u);

  auto r = sm.on_ack(4294967295u);
  REQUIRE(r.ok());
  CHECK(ids(*r) == std::vector<std::string>{"m1", "m2"});
  r = sm.on_ack(3);  // past the wrap, beyond what was sent
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().condition == "undefined-condition");
  r = sm.on_ack(1);
  REQUIRE(r.ok());
  CHECK(ids(*r) == std::vector<std::string>{"m3", "m4"});
  r = sm.on_ack(2);
  REQUIRE(r.ok());
  CHECK(ids(*r) == std::vector<std::string>{"m5"});
  CHECK(sm.unacked_count() == 0u);
}

TEST_CASE("the queue is bounded and refuses before counting") {
  SmState sm(3);
  CHECK(sm.max_queue() == 3u);
  send(sm, 1, 3);
  CHECK(sm.on_outbound(msg(4)) == SmState::Outbound::QueueFull);
  CHECK(sm.sent_count() == 3u);
  CHECK(sm.unacked_count() == 3u);
  // Nonzas pass even when the queue is full.
  CHECK(sm.on_outbound(build_sm_request()) == SmState::Outbound::NotCounted);
  REQUIRE(sm.on_ack(1).ok());
  CHECK(sm.on_outbound(msg(4)) == SmState::Outbound::Queued);
  CHECK(sm.sent_count() == 4u);
  auto r = sm.on_ack(4);
  REQUIRE(r.ok());
  CHECK(ids(*r) == std::vector<std::string>{"m2", "m3", "m4"});

  SmState none(0);
  CHECK(none.on_outbound(msg(1)) == SmState::Outbound::QueueFull);
  CHECK(none.sent_count() == 0u);
}

TEST_CASE("resume returns what to retransmit and keeps it queued") {
  SmState sm;
  send(sm, 1, 5);
  REQUIRE(sm.on_ack(2).ok());
  auto r = sm.on_resume(3);  // peer handled m3 before the stream broke
  REQUIRE(r.ok());
  CHECK(ids(*r) == std::vector<std::string>{"m4", "m5"});
  CHECK(sm.acked_h() == 3u);
  CHECK(sm.unacked_count() == 2u);
  CHECK(sm.sent_count() == 5u);  // retransmission keeps sequence numbers
  send(sm, 6, 6);
  auto a = sm.on_ack(6);
  REQUIRE(a.ok());
  CHECK(ids(*a) == std::vector<std::string>{"m4", "m5", "m6"});

  r = sm.on_resume(6);  // nothing left
  REQUIRE(r.ok());
  CHECK(r->empty());

  r = sm.on_resume(9);  // h too high on resume
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().condition == "undefined-condition");

  SmState wrap = SmState::restore(10, 0, 4294967294u);
  send(wrap, 1, 4);
  r = wrap.on_resume(0);
  REQUIRE(r.ok());
  CHECK(ids(*r) == std::vector<std::string>{"m3", "m4"});
}

TEST_CASE("take_unacked drains the queue") {
  SmState sm;
  send(sm, 1, 3);
  REQUIRE(sm.on_ack(1).ok());
  auto left = sm.take_unacked();
  CHECK(ids(left) == std::vector<std::string>{"m2", "m3"});
  CHECK(sm.unacked_count() == 0u);
  CHECK(sm.acked_h() == 3u);
  CHECK(sm.on_ack(3).ok());
  CHECK_FALSE(sm.on_ack(4).ok());
}

}  // namespace s2::session2
