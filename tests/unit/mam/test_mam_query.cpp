// XEP-0313 query parsing (server role): every form field, RSM, flip-page, every
// reject, and the form discovery answer.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/mam/datetime.h"
#include "common/mam/mam_query.h"
#include "tests/unit/session2/xml_canon.h"

namespace s2::mam {
namespace {

using session2::test::canon;
using session2::test::canon_serialised;

std::string field(const std::string& var, const std::string& value) {
  return "<field var='" + var + "'><value>" + value + "</value></field>";
}

std::string form(const std::string& fields) {
  return "<x xmlns='jabber:x:data' type='submit'>" + fields + "</x>";
}

std::string form_type() { return field("FORM_TYPE", "urn:xmpp:mam:2"); }

std::string rsm(const std::string& body) {
  return "<set xmlns='http://jabber.org/protocol/rsm'>" + body + "</set>";
}

std::string query(const std::string& body) {
  return "<query xmlns='urn:xmpp:mam:2' queryid='f27'>" + body + "</query>";
}

MamRequest parse_ok(const std::string& xml) {
  Stanza el = Stanza::parse(xml);
  REQUIRE_MESSAGE(el, xml);
  auto r = parse_mam_query(el);
  if (!r) FAIL_CHECK(xml << " -> " << r.error().condition << ": " << r.error().text);
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE("MAM query: empty query") {
  MamRequest r = parse_ok("<query xmlns='urn:xmpp:mam:2'/>");
  CHECK(r.queryid.empty());
  CHECK(r.with.empty());
  CHECK_FALSE(r.start_ms);
  CHECK_FALSE(r.end_ms);
  CHECK_FALSE(r.after_id);
  CHECK_FALSE(r.before_id);
  CHECK(r.ids.empty());
  CHECK_FALSE(r.max);
  CHECK_FALSE(r.rsm_after);
  CHECK_FALSE(r.rsm_before);
  CHECK_FALSE(r.rsm_index);
  CHECK_FALSE(r.flip_page);
}

TEST_CASE("MAM query: XEP-0313 examples") {
  // §4.1.1 filtering by JID, §4.1.2 by time, §4.2 paging.
  MamRequest r = parse_ok(
      "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>"
      "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
      "<field var='with'><value>juliet@capulet.lit</value></field></x></query>");
  CHECK(r.with == "juliet@capulet.lit");

  r = parse_ok(
      "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>"
      "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
      "<field var='start'><value>2010-06-07T00:00:00Z</value></field>"
      "<field var='end'><value>2010-07-07T13:23:54Z</value></field></x></query>");
  CHECK(r.start_ms == parse_datetime("2010-06-07T00:00:00Z"));
  CHECK(r.end_ms == parse_datetime("2010-07-07T13:23:54Z"));

  r = parse_ok(
      "<query xmlns='urn:xmpp:mam:2' queryid='f27'><x xmlns='jabber:x:data' type='submit'>"
      "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
      "<field var='start'><value>2010-08-07T00:00:00Z</value></field></x>"
      "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max>"
      "<after>09af3-cc343-b409f</after></set></query>");
  CHECK(r.queryid == "f27");
  CHECK(r.max == 10u);
  CHECK(r.rsm_after == "09af3-cc343-b409f");
  CHECK_FALSE(r.rsm_before);

  // §4.1.4 extended: ids, after-id/before-id, flip-page.
  r = parse_ok(
      "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>"
      "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
      "<field var='ids'><value>28482-98726-73623</value><value>09af3-cc343-b409f</value>"
      "</field></x></query>");
  CHECK(r.ids == std::vector<std::string>{"28482-98726-73623", "09af3-cc343-b409f"});
}

TEST_CASE("MAM query: every field and RSM element") {
  const std::string xml = query(
      form(form_type() + field("with", "juliet@capulet.lit/balcony") +
           field("start", "2026-01-01T00:00:00Z") + field("end", "2026-01-02T00:00:00.5+01:00") +
           field("after-id", "a1") + field("before-id", "b2") +
           "<field var='ids' type='text-multi'><value>i1</value><value> i2 </value>"
           "<value>i3</value></field>") +
      rsm("<max>50</max><before/><index>0</index>") + "<flip-page/>");
  MamRequest r = parse_ok(xml);
  CHECK(r.queryid == "f27");
  CHECK(r.with == "juliet@capulet.lit/balcony");
  CHECK(r.start_ms == parse_datetime("2026-01-01T00:00:00Z"));
  CHECK(r.end_ms == parse_datetime("2026-01-01T23:00:00.500Z"));
  CHECK(r.after_id == "a1");
  CHECK(r.before_id == "b2");
  CHECK(r.ids == std::vector<std::string>{"i1", "i2", "i3"});
  CHECK(r.max == 50u);
  CHECK_FALSE(r.rsm_after);
  CHECK(r.rsm_before == "");  // <before/>: last page, allowed with before-id
  CHECK(r.rsm_index == 0u);
  CHECK(r.flip_page);
}

TEST_CASE("MAM query: accepted variants") {
  struct Row {
    const char* what;
    std::string xml;
    void (*check)(const MamRequest&);
  };
  const Row rows[] = {
      {"no FORM_TYPE", query(form(field("with", "a@b"))),
       [](const MamRequest& r) { CHECK(r.with == "a@b"); }},
      {"values are trimmed",
       query(form(field("FORM_TYPE", "\n  urn:xmpp:mam:2 \t") + field("with", " \n a@b \r\n") +
                  field("start", " 1970-01-01T00:00:00Z\n") + field("before-id", "  x  ")) +
             rsm("<max> 7 </max><after> y </after>")),
       [](const MamRequest& r) {
         CHECK(r.with == "a@b");
         CHECK(r.start_ms == 0);
         CHECK(r.before_id == "x");
         CHECK(r.max == 7u);
         CHECK(r.rsm_after == "y");
       }},
      {"fields without value or with an empty one are absent",
       query(form("<field var='with'/><field var='start'><value/></field>"
                  "<field var='end'><value>  </value></field><field var='after-id'/>"
                  "<field var='before-id'><value></value></field><field var='ids'/>")),
       [](const MamRequest& r) {
         CHECK(r.with.empty());
         CHECK_FALSE(r.start_ms);
         CHECK_FALSE(r.end_ms);
         CHECK_FALSE(r.after_id);
         CHECK_FALSE(r.before_id);
         CHECK(r.ids.empty());
       }},
      {"start after end is allowed",
       query(form(field("start", "2026-02-01T00:00:00Z") + field("end", "2026-01-01T00:00:00Z"))),
       [](const MamRequest& r) { CHECK(*r.start_ms > *r.end_ms); }},
      {"RSM before with an id", query(rsm("<before>zz</before>")),
       [](const MamRequest& r) { CHECK(r.rsm_before == "zz"); }},
      {"RSM before and after together", query(rsm("<after>a</after><before>b</before>")),
       [](const MamRequest& r) {
         CHECK(r.rsm_after == "a");
         CHECK(r.rsm_before == "b");
       }},
      {"RSM max bounds", query(rsm("<max>0</max>")),
       [](const MamRequest& r) { CHECK(r.max == 0u); }},
      {"RSM max upper bound", query(rsm("<max>1000000</max>")),
       [](const MamRequest& r) { CHECK(r.max == 1000000u); }},
      {"RSM index", query(rsm("<index>42</index>")),
       [](const MamRequest& r) { CHECK(r.rsm_index == 42u); }},
      {"after-id with RSM before", query(form(field("after-id", "a")) + rsm("<before>b</before>")),
       [](const MamRequest& r) {
         CHECK(r.after_id == "a");
         CHECK(r.rsm_before == "b");
       }},
      {"unknown children are ignored",
       query("<foo xmlns='urn:example'/>" + form("<title>t</title>" + field("with", "a@b")) +
             rsm("<first>f</first><count>3</count><max>5</max>") + "<flip-page/><flip-page/>"),
       [](const MamRequest& r) {
         CHECK(r.with == "a@b");
         CHECK(r.max == 5u);
         CHECK(r.flip_page);
       }},
      {"elements of other namespaces are not the form or the set",
       query("<x xmlns='jabber:x:oob'/><set xmlns='urn:example'><max>x</max></set>"
             "<flip-page xmlns='urn:example'/>"),
       [](const MamRequest& r) {
         CHECK_FALSE(r.max);
         CHECK_FALSE(r.flip_page);
       }},
      {"ids exactly at the limit",
       [] {
         std::string values;
         for (size_t i = 0; i < kMaxQueryIds; ++i)
           values += "<value>" + std::to_string(i) + "</value>";
         return query(form("<field var='ids'>" + values + "</field>"));
       }(),
       [](const MamRequest& r) { CHECK(r.ids.size() == kMaxQueryIds); }},
      {"UTF-8 and escaped values", query(form(field("with", "r&#xe9;mi@caf&#xe9;.example"))),
       [](const MamRequest& r) { CHECK(r.with == "r\xc3\xa9mi@caf\xc3\xa9.example"); }},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    r.check(parse_ok(r.xml));
  }
}

TEST_CASE("MAM query: inside an iq, namespaces inherited from the tree") {
  Stanza iq = Stanza::parse(
      "<iq type='set' id='q1'><query xmlns='urn:xmpp:mam:2' queryid='abc'>"
      "<x xmlns='jabber:x:data' type='submit'><field var='with'><value>a@b</value></field></x>"
      "<set xmlns='http://jabber.org/protocol/rsm'><max>3</max></set><flip-page/></query></iq>");
  REQUIRE(iq);
  Stanza q = iq.child("query", kNsMam);
  REQUIRE(q);
  auto r = parse_mam_query(q);
  REQUIRE(r.ok());
  CHECK(r->queryid == "abc");
  CHECK(r->with == "a@b");
  CHECK(r->max == 3u);
  CHECK(r->flip_page);
}

TEST_CASE("MAM query: rejects") {
  std::string too_many;
  for (size_t i = 0; i <= kMaxQueryIds; ++i) too_many += "<value>" + std::to_string(i) + "</value>";
  struct Row {
    const char* what;
    std::string xml;
    const char* condition;
  };
  const Row rows[] = {
      {"MAM v1 namespace", "<query xmlns='urn:xmpp:mam:1'/>", "bad-request"},
      {"wrong element", "<fin xmlns='urn:xmpp:mam:2'/>", "bad-request"},
      {"no namespace", "<query/>", "bad-request"},
      {"form of type form", query("<x xmlns='jabber:x:data' type='form'/>"), "bad-request"},
      {"form of type cancel", query("<x xmlns='jabber:x:data' type='cancel'/>"), "bad-request"},
      {"form without type", query("<x xmlns='jabber:x:data'/>"), "bad-request"},
      {"two forms", query(form("") + form("")), "bad-request"},
      {"two RSM sets", query(rsm("") + rsm("")), "bad-request"},
      {"wrong FORM_TYPE", query(form(field("FORM_TYPE", "urn:xmpp:mam:1"))), "bad-request"},
      {"empty FORM_TYPE", query(form("<field var='FORM_TYPE'/>")), "bad-request"},
      {"unknown field", query(form(field("withtext", "hi"))), "bad-request"},
      {"fulltext field", query(form(field("{urn:xmpp:fulltext:0}fulltext", "hi"))), "bad-request"},
      {"include-groupchat", query(form(field("include-groupchat", "true"))), "bad-request"},
      {"field names are case-sensitive", query(form(field("With", "a@b"))), "bad-request"},
      {"field without var", query(form("<field><value>x</value></field>")), "bad-request"},
      {"field with empty var", query(form("<field var=''><value>x</value></field>")),
       "bad-request"},
      {"duplicate with", query(form(field("with", "a@b") + field("with", "a@b"))), "bad-request"},
      {"duplicate start",
       query(form(field("start", "2026-01-01T00:00:00Z") + field("start", "2026-01-01T00:00:00Z"))),
       "bad-request"},
      {"duplicate ids", query(form(field("ids", "a") + field("ids", "b"))), "bad-request"},
      {"duplicate FORM_TYPE", query(form(form_type() + form_type())), "bad-request"},
      {"duplicate empty field", query(form("<field var='end'/><field var='end'/>")), "bad-request"},
      {"two values for with",
       query(form("<field var='with'><value>a@b</value><value>c@d</value>"
                  "</field>")),
       "bad-request"},
      {"two values for after-id",
       query(form("<field var='after-id'><value>a</value><value>b</value></field>")),
       "bad-request"},
      {"two values for start",
       query(form("<field var='start'><value>2026-01-01T00:00:00Z</value>"
                  "<value>2026-01-01T00:00:00Z</value></field>")),
       "bad-request"},
      {"bad start", query(form(field("start", "yesterday"))), "bad-request"},
      {"bad end", query(form(field("end", "2026-13-01T00:00:00Z"))), "bad-request"},
      {"date-only start", query(form(field("start", "2026-01-01"))), "bad-request"},
      {"empty ids value", query(form("<field var='ids'><value>a</value><value> </value></field>")),
       "bad-request"},
      {"too many ids", query(form("<field var='ids'>" + too_many + "</field>")),
       "policy-violation"},
      {"negative max", query(rsm("<max>-1</max>")), "bad-request"},
      {"non-numeric max", query(rsm("<max>ten</max>")), "bad-request"},
      {"empty max", query(rsm("<max/>")), "bad-request"},
      {"fractional max", query(rsm("<max>1.5</max>")), "bad-request"},
      {"max above 10^6", query(rsm("<max>1000001</max>")), "bad-request"},
      {"huge max", query(rsm("<max>99999999999999999999999</max>")), "bad-request"},
      {"duplicate max", query(rsm("<max>1</max><max>2</max>")), "bad-request"},
      {"empty after", query(rsm("<after/>")), "bad-request"},
      {"blank after", query(rsm("<after>  </after>")), "bad-request"},
      {"duplicate after", query(rsm("<after>a</after><after>b</after>")), "bad-request"},
      {"duplicate before", query(rsm("<before/><before/>")), "bad-request"},
      {"bad index", query(rsm("<index>x</index>")), "bad-request"},
      {"empty index", query(rsm("<index/>")), "bad-request"},
      {"duplicate index", query(rsm("<index>1</index><index>1</index>")), "bad-request"},
      {"after-id and RSM after", query(form(field("after-id", "a")) + rsm("<after>b</after>")),
       "bad-request"},
      {"before-id and RSM before with an id",
       query(form(field("before-id", "a")) + rsm("<before>b</before>")), "bad-request"},
      {"reject wins over a later valid field",
       query(form(field("unknown", "x") + field("with", "a@b"))), "bad-request"},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    Stanza el = Stanza::parse(r.xml);
    REQUIRE_MESSAGE(el, r.xml);
    auto got = parse_mam_query(el);
    REQUIRE_FALSE(got.ok());
    CHECK(got.error().condition == r.condition);
    CHECK_FALSE(got.error().text.empty());
  }
  CHECK_FALSE(parse_mam_query(Stanza()).ok());
}

TEST_CASE("MAM query: error texts quote peer input briefly and on UTF-8 boundaries") {
  std::string var;
  for (int i = 0; i < 100; ++i) var += "\xc3\xa9";  // 200 bytes of é
  auto r = parse_mam_query(Stanza::parse(query(form(field(var, "x")))));
  REQUIRE_FALSE(r.ok());
  const std::string& text = r.error().text;
  CHECK(text.size() < 120);
  CHECK(text.find("is not supported") != std::string::npos);
  // Every 0xC3 lead byte is followed by its continuation byte.
  for (size_t i = 0; i < text.size(); ++i) {
    if (static_cast<unsigned char>(text[i]) == 0xC3) {
      REQUIRE(i + 1 < text.size());
      CHECK(static_cast<unsigned char>(text[i + 1]) == 0xA9);
    }
  }
}

TEST_CASE("MAM form discovery") {
  const char* want =
      "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='form'>"
      "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
      "<field var='with' type='jid-single'/>"
      "<field var='start' type='text-single'/>"
      "<field var='end' type='text-single'/>"
      "<field var='after-id' type='text-single'/>"
      "<field var='before-id' type='text-single'/>"
      "<field var='ids' type='text-multi'/>"
      "</x></query>";
  CHECK(canon_serialised(build_mam_form_fields()) == canon(want));
  // Submitting the offered form (as type submit) with every field filled in is accepted.
  Stanza q = build_mam_form_fields();
  Stanza x = q.child("x", kNsData);
  x.set_attr("type", "submit");
  for (Stanza f : x.children()) {
    if (f.attr_or("var") == "FORM_TYPE") continue;
    Stanza v = Stanza::element("value");
    const std::string var = f.attr_or("var");
    v.add_text(var == "start" || var == "end" ? "2026-01-01T00:00:00Z" : "v-" + var);
    f.add_child(v);
  }
  auto r = parse_mam_query(Stanza::parse(q.to_string()));
  REQUIRE(r.ok());
  CHECK(r->with == "v-with");
  CHECK(r->after_id == "v-after-id");
  CHECK(r->before_id == "v-before-id");
  CHECK(r->ids == std::vector<std::string>{"v-ids"});
  CHECK(r->start_ms == r->end_ms);
}

}  // namespace s2::mam
