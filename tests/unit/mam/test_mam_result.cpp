// XEP-0313 results: server-role builders (result messages, fin, metadata), the
// client-role query builder, and the client-role parsers, with round trips.
#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "common/mam/datetime.h"
#include "common/mam/mam_query.h"
#include "common/mam/mam_result.h"
#include "tests/unit/session2/xml_canon.h"

namespace s2::mam {
namespace {

using session2::test::canon;
using session2::test::canon_serialised;

const int64_t kStamp = 1795600800123;  // 2026-11-25T10:00:00.123Z

Stanza chat(const char* body = "hi") {
  Stanza m = Stanza::parse(std::string("<message from='juliet@capulet.lit/balcony' "
                                       "to='romeo@montague.lit' type='chat' id='m1'><body>") +
                           body +
                           "</body><active xmlns='http://jabber.org/protocol/chatstates'/>"
                           "</message>");
  REQUIRE(m);
  return m;
}

}  // namespace

TEST_CASE("build_result_message") {
  const char* want =
      "<message to='romeo@montague.lit/orchard'>"
      "<result xmlns='urn:xmpp:mam:2' queryid='f27' id='28482-98726-73623'>"
      "<forwarded xmlns='urn:xmpp:forward:0'>"
      "<delay xmlns='urn:xmpp:delay' stamp='2026-11-25T10:00:00.123Z'/>"
      "<message xmlns='jabber:client' from='juliet@capulet.lit/balcony' to='romeo@montague.lit'"
      " type='chat' id='m1'><body>hi</body>"
      "<active xmlns='http://jabber.org/protocol/chatstates'/></message>"
      "</forwarded></result></message>";
  Stanza inner = chat();
  Stanza built =
      build_result_message("romeo@montague.lit/orchard", "f27", "28482-98726-73623", kStamp, inner);
  CHECK(canon_serialised(built) == canon(want));
  // The inner message is written with its namespace (not inherited from <forwarded/>).
  Stanza reparsed = Stanza::parse(built.to_string());
  CHECK(reparsed.child("result", kNsMam).child("forwarded", kNsForward).child("message").xmlns() ==
        "jabber:client");
  // The caller's stanza is left alone (copied, not re-parented or given an xmlns).
  CHECK(inner.xmlns().empty());
  CHECK(inner.to_string() == chat().to_string());

  // No queryid attribute when empty; no `to` when empty.
  Stanza bare = build_result_message("", "", "id1", 0, inner);
  CHECK_FALSE(bare.attr("to"));
  Stanza result = bare.child("result", kNsMam);
  REQUIRE(result);
  CHECK_FALSE(result.attr("queryid"));
  CHECK(result.attr_or("id") == "id1");
}

TEST_CASE("result message round trip") {
  struct Row {
    const char* queryid;
    const char* id;
    int64_t stamp;
  };
  const Row rows[] = {
      {"f27", "28482-98726-73623", kStamp},
      {"", "x", 0},
      {"q&<'\"", "id with spaces & <markup>", -1},
      {"q", "1", kMaxDatetimeMs},
  };
  for (const auto& r : rows) {
    INFO(r.id);
    Stanza built =
        build_result_message("a@b/c", r.queryid, r.id, r.stamp, chat("x &lt; y &amp; z"));
    auto item = parse_result_message(Stanza::parse(built.to_string()));
    REQUIRE(item);
    CHECK(item->queryid == r.queryid);
    CHECK(item->id == r.id);
    CHECK(item->stamp_ms == r.stamp);
    // The inner message comes back as a top-level stanza.
    CHECK(item->message.xmlns().empty());
    CHECK(item->message.is("message", "jabber:client"));
    CHECK(canon(item->message) == canon(chat("x &lt; y &amp; z")));
    CHECK(item->message.child("body").text_content() == "x < y & z");
    // Built again from the parsed item: identical.
    CHECK(canon_serialised(build_result_message("a@b/c", item->queryid, item->id, *item->stamp_ms,
                                                item->message)) == canon(built));
  }
}

TEST_CASE("parse_result_message: server variants and rejects") {
  const std::string fwd =
      "<forwarded xmlns='urn:xmpp:forward:0'>"
      "<delay xmlns='urn:xmpp:delay' stamp='2010-07-10T23:08:25Z'/>"
      "<message xmlns='jabber:client' to='juliet@capulet.lit/balcony' "
      "from='romeo@montague.lit/orchard' type='chat'><body>Call me.</body></message>"
      "</forwarded>";
  // XEP-0313 §4.2 example 4.
  auto ok = parse_result_message(
      Stanza::parse("<message id='aeb213' to='juliet@capulet.lit/chamber'>"
                    "<result xmlns='urn:xmpp:mam:2' queryid='f27' id='28482-98726-73623'>" +
                    fwd + "</result></message>"));
  REQUIRE(ok);
  CHECK(ok->queryid == "f27");
  CHECK(ok->id == "28482-98726-73623");
  CHECK(ok->stamp_ms == parse_datetime("2010-07-10T23:08:25Z"));
  CHECK(ok->message.attr_or("from") == "romeo@montague.lit/orchard");
  CHECK(ok->message.child("body").text_content() == "Call me.");

  struct Accept {
    const char* what;
    std::string xml;
    std::optional<int64_t> stamp;
  };
  const Accept accepts[] = {
      {"jabber:client written on the outer message",
       "<message xmlns='jabber:client'><result xmlns='urn:xmpp:mam:2' id='i'>" + fwd +
           "</result></message>",
       parse_datetime("2010-07-10T23:08:25Z")},
      {"no delay",
       "<message><result xmlns='urn:xmpp:mam:2' id='i'><forwarded xmlns='urn:xmpp:forward:0'>"
       "<message xmlns='jabber:client'/></forwarded></result></message>",
       std::nullopt},
      {"bad delay stamp reads as none",
       "<message><result xmlns='urn:xmpp:mam:2' id='i'><forwarded xmlns='urn:xmpp:forward:0'>"
       "<delay xmlns='urn:xmpp:delay' stamp='soon'/><message xmlns='jabber:client'/>"
       "</forwarded></result></message>",
       std::nullopt},
      {"jabber:server inner message",
       "<message><result xmlns='urn:xmpp:mam:2' id='i'><forwarded xmlns='urn:xmpp:forward:0'>"
       "<message xmlns='jabber:server'/></forwarded></result></message>",
       std::nullopt},
  };
  for (const auto& a : accepts) {
    INFO(a.what);
    auto item = parse_result_message(Stanza::parse(a.xml));
    REQUIRE(item);
    CHECK(item->id == "i");
    CHECK(item->queryid.empty());
    CHECK(item->stamp_ms == a.stamp);
    CHECK(item->message.xmlns().empty());
  }

  struct Reject {
    const char* what;
    std::string xml;
  };
  const Reject rejects[] = {
      {"not a message", "<iq><result xmlns='urn:xmpp:mam:2' id='i'>" + fwd + "</result></iq>"},
      {"no result", "<message><body>x</body></message>"},
      {"MAM v1 result",
       "<message><result xmlns='urn:xmpp:mam:1' id='i'>" + fwd + "</result></message>"},
      {"no id", "<message><result xmlns='urn:xmpp:mam:2'>" + fwd + "</result></message>"},
      {"empty id", "<message><result xmlns='urn:xmpp:mam:2' id=''>" + fwd + "</result></message>"},
      {"no forwarded", "<message><result xmlns='urn:xmpp:mam:2' id='i'/></message>"},
      {"forwarded in the wrong namespace",
       "<message><result xmlns='urn:xmpp:mam:2' id='i'><forwarded>"
       "<message xmlns='jabber:client'/></forwarded></result></message>"},
      {"no inner message",
       "<message><result xmlns='urn:xmpp:mam:2' id='i'><forwarded xmlns='urn:xmpp:forward:0'>"
       "<delay xmlns='urn:xmpp:delay' stamp='2010-07-10T23:08:25Z'/></forwarded></result>"
       "</message>"},
      {"inner message in the forward namespace",
       "<message><result xmlns='urn:xmpp:mam:2' id='i'><forwarded xmlns='urn:xmpp:forward:0'>"
       "<message/></forwarded></result></message>"},
      {"inner message in another namespace",
       "<message><result xmlns='urn:xmpp:mam:2' id='i'><forwarded xmlns='urn:xmpp:forward:0'>"
       "<message xmlns='urn:example'/></forwarded></result></message>"},
      {"two inner messages",
       "<message><result xmlns='urn:xmpp:mam:2' id='i'><forwarded xmlns='urn:xmpp:forward:0'>"
       "<message xmlns='jabber:client'/><message xmlns='jabber:client'/></forwarded></result>"
       "</message>"},
      {"two results", "<message><result xmlns='urn:xmpp:mam:2' id='i'>" + fwd +
                          "</result><result xmlns='urn:xmpp:mam:2' id='j'>" + fwd +
                          "</result></message>"},
      {"inner iq",
       "<message><result xmlns='urn:xmpp:mam:2' id='i'><forwarded xmlns='urn:xmpp:forward:0'>"
       "<iq xmlns='jabber:client'/></forwarded></result></message>"},
  };
  for (const auto& r : rejects) {
    INFO(r.what);
    Stanza el = Stanza::parse(r.xml);
    REQUIRE(el);
    CHECK_FALSE(parse_result_message(el));
  }
  CHECK_FALSE(parse_result_message(Stanza()));
}

TEST_CASE("build_fin_iq and parse_fin") {
  struct Row {
    FinInfo fin;
    const char* want;
  };
  const Row rows[] = {
      {{true, "28482-98726-73623", "09af3-cc343-b409f", 20, 0},
       "<iq type='result' id='juliet1' to='juliet@capulet.lit/chamber'>"
       "<fin xmlns='urn:xmpp:mam:2' complete='true'>"
       "<set xmlns='http://jabber.org/protocol/rsm'><first index='0'>28482-98726-73623</first>"
       "<last>09af3-cc343-b409f</last><count>20</count></set></fin></iq>"},
      {{false, "a", "b", std::nullopt, std::nullopt},
       "<iq type='result' id='juliet1' to='juliet@capulet.lit/chamber'>"
       "<fin xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>"
       "<first>a</first><last>b</last></set></fin></iq>"},
      {{true, "", "", 0, 5},  // empty page: no first (nor its index), no last
       "<iq type='result' id='juliet1' to='juliet@capulet.lit/chamber'>"
       "<fin xmlns='urn:xmpp:mam:2' complete='true'><set xmlns='http://jabber.org/protocol/rsm'>"
       "<count>0</count></set></fin></iq>"},
      {{false, "", "", std::nullopt, std::nullopt},
       "<iq type='result' id='juliet1' to='juliet@capulet.lit/chamber'>"
       "<fin xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'/></fin></iq>"},
      {{false, "x", "x", UINT64_MAX, UINT64_MAX - 1},
       "<iq type='result' id='juliet1' to='juliet@capulet.lit/chamber'>"
       "<fin xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>"
       "<first index='18446744073709551614'>x</first><last>x</last>"
       "<count>18446744073709551615</count></set></fin></iq>"},
  };
  for (const auto& r : rows) {
    INFO(r.want);
    Stanza built = build_fin_iq("juliet@capulet.lit/chamber", "juliet1", r.fin);
    CHECK(canon_serialised(built) == canon(r.want));
    auto back = parse_fin(Stanza::parse(built.to_string()));
    REQUIRE(back);
    CHECK(back->complete == r.fin.complete);
    CHECK(back->first == r.fin.first);
    CHECK(back->last == r.fin.last);
    CHECK(back->count == r.fin.count);
    CHECK(back->first_index == (r.fin.first.empty() ? std::nullopt : r.fin.first_index));
  }
  CHECK_FALSE(build_fin_iq("", "i", {}).attr("to"));
}

TEST_CASE("parse_fin: variants and rejects") {
  struct Row {
    const char* xml;
    bool ok;
    bool complete;
    std::optional<uint64_t> count;
  };
  const Row rows[] = {
      {"<iq type='result' id='i'><fin xmlns='urn:xmpp:mam:2' complete='1'/></iq>", true, true,
       std::nullopt},
      {"<iq type='result' id='i'><fin xmlns='urn:xmpp:mam:2' complete='false'/></iq>", true, false,
       std::nullopt},
      {"<iq type='result' id='i'><fin xmlns='urn:xmpp:mam:2' complete='yes'/></iq>", true, false,
       std::nullopt},
      {"<iq type='result' id='i'><fin xmlns='urn:xmpp:mam:2'><set "
       "xmlns='http://jabber.org/protocol/rsm'><count> 12 </count></set></fin></iq>",
       true, false, 12},
      {"<iq type='result' id='i'><fin xmlns='urn:xmpp:mam:2'><set "
       "xmlns='http://jabber.org/protocol/rsm'><count>many</count></set></fin></iq>",
       true, false, std::nullopt},
      {"<iq xmlns='jabber:client' type='result' id='i'><fin xmlns='urn:xmpp:mam:2'/></iq>", true,
       false, std::nullopt},
      {"<iq type='error' id='i'><fin xmlns='urn:xmpp:mam:2'/></iq>", false, false, std::nullopt},
      {"<iq type='set' id='i'><fin xmlns='urn:xmpp:mam:2'/></iq>", false, false, std::nullopt},
      {"<iq type='result' id='i'/>", false, false, std::nullopt},
      {"<iq type='result' id='i'><fin xmlns='urn:xmpp:mam:1'/></iq>", false, false, std::nullopt},
      {"<message type='result'><fin xmlns='urn:xmpp:mam:2'/></message>", false, false,
       std::nullopt},
      {"<iq type='result' id='i'><query xmlns='urn:xmpp:mam:2'><fin/></query></iq>", false, false,
       std::nullopt},
  };
  for (const auto& r : rows) {
    INFO(r.xml);
    auto fin = parse_fin(Stanza::parse(r.xml));
    REQUIRE(fin.has_value() == r.ok);
    if (!fin) continue;
    CHECK(fin->complete == r.complete);
    CHECK(fin->count == r.count);
  }
  // A malformed index reads as absent; first/last are trimmed.
  auto fin = parse_fin(Stanza::parse(
      "<iq type='result' id='i'><fin xmlns='urn:xmpp:mam:2'><set "
      "xmlns='http://jabber.org/protocol/rsm'><first index='-1'> a </first><last>\nb\n</last>"
      "</set></fin></iq>"));
  REQUIRE(fin);
  CHECK(fin->first == "a");
  CHECK(fin->last == "b");
  CHECK_FALSE(fin->first_index);
}

TEST_CASE("build_metadata_iq and parse_metadata") {
  Stanza full = build_metadata_iq("a@b/c", "md1", "YWxwaGEg", 0, "b21lZ2Eg", kStamp);
  CHECK(canon_serialised(full) ==
        canon("<iq type='result' id='md1' to='a@b/c'><metadata xmlns='urn:xmpp:mam:2'>"
              "<start id='YWxwaGEg' timestamp='1970-01-01T00:00:00.000Z'/>"
              "<end id='b21lZ2Eg' timestamp='2026-11-25T10:00:00.123Z'/></metadata></iq>"));
  auto md = parse_metadata(Stanza::parse(full.to_string()));
  REQUIRE(md);
  CHECK(md->first_id == "YWxwaGEg");
  CHECK(md->first_ms == 0);
  CHECK(md->last_id == "b21lZ2Eg");
  CHECK(md->last_ms == kStamp);

  Stanza empty = build_metadata_iq("", "md2", "", 5, "", 6);
  CHECK(canon_serialised(empty) ==
        canon("<iq type='result' id='md2'><metadata xmlns='urn:xmpp:mam:2'/></iq>"));
  md = parse_metadata(Stanza::parse(empty.to_string()));
  REQUIRE(md);
  CHECK(md->first_id.empty());
  CHECK(md->last_id.empty());
  CHECK_FALSE(md->first_ms);
  CHECK_FALSE(md->last_ms);

  CHECK_FALSE(parse_metadata(Stanza::parse("<iq type='result'/>")));
  CHECK_FALSE(
      parse_metadata(Stanza::parse("<iq type='get'><metadata xmlns='urn:xmpp:mam:2'/></iq>")));
  md = parse_metadata(Stanza::parse(
      "<iq type='result'><metadata xmlns='urn:xmpp:mam:2'><start id='s' timestamp='bad'/>"
      "</metadata></iq>"));
  REQUIRE(md);
  CHECK(md->first_id == "s");
  CHECK_FALSE(md->first_ms);
}

TEST_CASE("build_mam_query_iq") {
  struct Row {
    ClientQuery q;
    const char* queryid;
    const char* want;
  };
  const Row rows[] = {
      {{},
       "q1",
       "<iq type='set' id='mam1'><query xmlns='urn:xmpp:mam:2' queryid='q1'>"
       "<x xmlns='jabber:x:data' type='submit'>"
       "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field></x>"
       "<set xmlns='http://jabber.org/protocol/rsm'><max>100</max></set></query></iq>"},
      {{kStamp, "09af3", false, 50, std::nullopt},
       "",
       "<iq type='set' id='mam1'><query xmlns='urn:xmpp:mam:2'>"
       "<x xmlns='jabber:x:data' type='submit'>"
       "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
       "<field var='start'><value>2026-11-25T10:00:00.123Z</value></field></x>"
       "<set xmlns='http://jabber.org/protocol/rsm'><max>50</max><after>09af3</after></set>"
       "</query></iq>"},
      {{kStamp, std::nullopt, false, 100, kStamp + 2000},
       "q4",  // a time window: start and end
       "<iq type='set' id='mam1'><query xmlns='urn:xmpp:mam:2' queryid='q4'>"
       "<x xmlns='jabber:x:data' type='submit'>"
       "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
       "<field var='start'><value>2026-11-25T10:00:00.123Z</value></field>"
       "<field var='end'><value>2026-11-25T10:00:02.123Z</value></field></x>"
       "<set xmlns='http://jabber.org/protocol/rsm'><max>100</max></set></query></iq>"},
      {{std::nullopt, std::nullopt, true, 20, std::nullopt},
       "q2",
       "<iq type='set' id='mam1'><query xmlns='urn:xmpp:mam:2' queryid='q2'>"
       "<x xmlns='jabber:x:data' type='submit'>"
       "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field></x>"
       "<set xmlns='http://jabber.org/protocol/rsm'><max>20</max><before/></set></query></iq>"},
      {{std::nullopt, "a", true, 0, std::nullopt},
       "q3",  // after wins over before
       "<iq type='set' id='mam1'><query xmlns='urn:xmpp:mam:2' queryid='q3'>"
       "<x xmlns='jabber:x:data' type='submit'>"
       "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field></x>"
       "<set xmlns='http://jabber.org/protocol/rsm'><max>0</max><after>a</after></set>"
       "</query></iq>"},
  };
  for (const auto& r : rows) {
    INFO(r.want);
    Stanza iq = build_mam_query_iq("mam1", r.queryid, r.q);
    CHECK(canon_serialised(iq) == canon(r.want));
    // The server-role parser reads back what the client role wrote.
    Stanza parsed = Stanza::parse(iq.to_string());
    REQUIRE(parsed);
    auto req = parse_mam_query(parsed.child("query", kNsMam));
    REQUIRE(req.ok());
    CHECK(req->queryid == r.queryid);
    CHECK(req->start_ms == r.q.start_ms);
    CHECK(req->max == r.q.max);
    CHECK(req->end_ms == r.q.end_ms);
    CHECK(req->rsm_after == r.q.rsm_after);
    CHECK(req->rsm_before ==
          (!r.q.rsm_after && r.q.rsm_before_last ? std::optional<std::string>("") : std::nullopt));
  }
}

}  // namespace s2::mam
