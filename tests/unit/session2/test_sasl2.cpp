// SASL2 (XEP-0388) element tests: the PROTOCOLS.md §1 examples, xmpp.js variants and
// hostile input, as tables.
#include <doctest/doctest.h>

#include <string>

#include "common/session2/codec.h"
#include "common/session2/sasl2.h"
#include "tests/unit/session2/xml_canon.h"

namespace s2::session2 {
namespace {

using test::canon;
using test::canon_serialised;

const AuthenticationFeature kOffer{
    {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"},
    true,
    {"urn:xmpp:carbons:2", "urn:xmpp:csi:0", "urn:xmpp:sm:3"},
    {"HT-SHA-256-NONE"},
    true,
};

Authenticate parse_ok(const std::string& xml, const AuthenticationFeature* offer = &kOffer) {
  Stanza el = Stanza::parse(xml);
  REQUIRE(el);
  auto r = parse_authenticate(el, offer);
  if (!r) FAIL_CHECK(xml << " -> " << r.error().condition << ": " << r.error().text);
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE("authentication feature is exactly PROTOCOLS.md §1") {
  const char* expected =
      "<authentication xmlns='urn:xmpp:sasl:2'>"
      "<mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism>"
      "<mechanism>PLAIN</mechanism>"
      "<inline>"
      "<bind xmlns='urn:xmpp:bind:0'><inline>"
      "<feature var='urn:xmpp:carbons:2'/><feature var='urn:xmpp:csi:0'/>"
      "<feature var='urn:xmpp:sm:3'/>"
      "</inline></bind>"
      "<fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-NONE</mechanism></fast>"
      "<sm xmlns='urn:xmpp:sm:3'/>"
      "</inline></authentication>";
  CHECK(canon_serialised(build_authentication_feature(kOffer)) == canon(expected));

  struct Row {
    AuthenticationFeature f;
    const char* want;
  };
  const Row rows[] = {
      {{{"PLAIN"}, false, {}, {}, false},
       "<authentication xmlns='urn:xmpp:sasl:2'><mechanism>PLAIN</mechanism></authentication>"},
      {{{"PLAIN"}, true, {}, {}, false},
       "<authentication xmlns='urn:xmpp:sasl:2'><mechanism>PLAIN</mechanism>"
       "<inline><bind xmlns='urn:xmpp:bind:0'/></inline></authentication>"},
      {{{"PLAIN"}, false, {}, {}, true},
       "<authentication xmlns='urn:xmpp:sasl:2'><mechanism>PLAIN</mechanism>"
       "<inline><sm xmlns='urn:xmpp:sm:3'/></inline></authentication>"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.want);
    CHECK(canon_serialised(build_authentication_feature(r.f)) == canon(r.want));
  }
}

TEST_CASE("PROTOCOLS.md §1 <authenticate> parses into one struct") {
  auto a = parse_ok(
      "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'>"
      "<initial-response>AGFsaWNlAGFsaWNlcHc=</initial-response>"
      "<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'><software>App</software>"
      "<device>Phone</device></user-agent>"
      "<bind xmlns='urn:xmpp:bind:0'><tag>App</tag>"
      "<enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>"
      "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>"
      "</authenticate>");
  CHECK(a.mechanism == "PLAIN");
  CHECK_FALSE(a.upgrade);
  REQUIRE(a.initial_response);
  CHECK(*a.initial_response == std::string("\0alice\0alicepw", 14));
  REQUIRE(a.user_agent);
  CHECK(a.user_agent->id == "d4565fa7-4d72-4749-b3d3-740edbf87770");
  CHECK(a.user_agent->software == "App");
  CHECK(a.user_agent->device == "Phone");
  REQUIRE(a.bind);
  CHECK(a.bind->tag == "App");
  CHECK_FALSE(a.bind->carbons);
  CHECK_FALSE(a.bind->csi);
  REQUIRE(a.bind->sm_enable);
  CHECK(a.bind->sm_enable->resume);
  CHECK_FALSE(a.bind->sm_enable->max);
  REQUIRE(a.request_token);
  CHECK(a.request_token->mechanism == "HT-SHA-256-NONE");
  CHECK_FALSE(a.fast);
  CHECK_FALSE(a.resume);
}

TEST_CASE("xmpp.js variants") {
  SUBCASE("FAST login with a bare <fast/>") {
    auto a = parse_ok(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'>"
        "<initial-response>" +
        base64_encode(std::string("alice\0", 6) + std::string(32, '\x7f')) +
        "</initial-response>"
        "<user-agent id='uniqueid'><software>xmpp.js</software><device>script</device>"
        "</user-agent>"
        "<bind xmlns='urn:xmpp:bind:0'><tag>xmpp.js</tag>"
        "<enable xmlns='urn:xmpp:sm:3' max='600' resume='true'/></bind>"
        "<fast xmlns='urn:xmpp:fast:0'/>"
        "</authenticate>");
    CHECK(a.mechanism == "HT-SHA-256-NONE");
    REQUIRE(a.initial_response);
    CHECK(a.initial_response->size() == 38);
    REQUIRE(a.fast);
    CHECK_FALSE(a.fast->count);
    CHECK_FALSE(a.fast->invalidate);
    REQUIRE(a.bind);
    REQUIRE(a.bind->sm_enable);
    CHECK(a.bind->sm_enable->max == 600u);
    CHECK_FALSE(a.request_token);
  }
  SUBCASE("resume and bind in one <authenticate>") {
    auto a = parse_ok(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'>"
        "<initial-response>AGFsaWNlAGFsaWNlcHc=</initial-response>"
        "<user-agent id='id'><software>software</software><device>device</device></user-agent>"
        "<resume xmlns='urn:xmpp:sm:3' previd='sm-1' h='42'/>"
        "<bind xmlns='urn:xmpp:bind:0'><tag>xmpp.js</tag>"
        "<enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>"
        "</authenticate>");
    REQUIRE(a.resume);
    CHECK(a.resume->previd == "sm-1");
    CHECK(a.resume->h == 42u);
    REQUIRE(a.bind);
    CHECK(a.bind->tag == "xmpp.js");
  }
  SUBCASE("<response> with a mechanism attribute") {
    Stanza el = Stanza::parse(
        "<response xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1'>"
        "Yz1iaXdzLHI9YWJjLHA9eHl6</response>");
    auto r = parse_response(el);
    REQUIRE(r.ok());
    CHECK(*r == "c=biws,r=abc,p=xyz");
  }
}

TEST_CASE("authenticate: accepted edge cases") {
  struct Row {
    const char* body;  // children of <authenticate mechanism='PLAIN'>
    std::optional<std::string> initial_response;
  };
  const Row rows[] = {
      {"", std::nullopt},
      {"<initial-response/>", std::string()},
      {"<initial-response>=</initial-response>", std::string()},
      {"<initial-response>\n  AGFsaWNlAGFsaWNlcHc=\n</initial-response>",
       std::string("\0alice\0alicepw", 14)},
      {"<supported><mechanism>PLAIN</mechanism></supported><x xmlns='urn:example'/>", std::nullopt},
      // A Bind2 tag of exactly kMaxTagBytes is fine (it is cut when the resource is made).
      {nullptr, std::nullopt},
  };
  for (const auto& r : rows) {
    std::string body = r.body ? r.body
                              : "<bind xmlns='urn:xmpp:bind:0'><tag>" +
                                    std::string(kMaxTagBytes, 't') + "</tag></bind>";
    CAPTURE(body);
    auto a = parse_ok("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'>" + body +
                      "</authenticate>");
    CHECK(a.initial_response == r.initial_response);
  }
}

TEST_CASE("authenticate: malformed input becomes the right SASL condition") {
  const std::string big_id(kMaxUserAgentIdBytes + 1, 'i');
  const std::string big_text(kMaxUserAgentTextBytes + 1, 'd');
  const std::string big_tag(kMaxTagBytes + 1, 't');
  struct Row {
    std::string xml;
    const char* condition;
    const char* text_has;
  };
  const std::string open = "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'>";
  const std::string close = "</authenticate>";
  const std::string ua = "<user-agent id='u-1'/>";
  const Row rows[] = {
      {"<authenticate xmlns='urn:xmpp:sasl:2'/>", "malformed-request", "without mechanism"},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism=''/>", "malformed-request",
       "without mechanism"},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='plain'/>", "invalid-mechanism",
       "invalid mechanism name"},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='ABCDEFGHIJKLMNOPQRSTU'/>",
       "invalid-mechanism", "invalid mechanism name"},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PL AIN'/>", "invalid-mechanism",
       "invalid mechanism name"},
      {"<authenticate xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>",
       "malformed-request", "not a SASL2"},
      {"<auth xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'/>", "malformed-request", "not a SASL2"},
      {open + "<initial-response>AGFsaWNl!</initial-response>" + close, "malformed-request",
       "base64"},
      {open + "<initial-response>QQ=</initial-response>" + close, "malformed-request", "base64"},
      {open + "<initial-response>Q===</initial-response>" + close, "malformed-request", "base64"},
      {open + "<initial-response>QQ==QQ==</initial-response>" + close, "malformed-request",
       "base64"},
      {open + "<initial-response>QQ==</initial-response><initial-response>QQ==</initial-response>" +
           close,
       "malformed-request", "duplicate <initial-response/>"},
      {open + "<user-agent><software>x</software></user-agent>" + close, "malformed-request",
       "<user-agent/> without id"},
      {open + "<user-agent id=''/>" + close, "malformed-request", "<user-agent/> without id"},
      {open + "<user-agent id='" + big_id + "'/>" + close, "malformed-request", "id too long"},
      {open + "<user-agent id='u'><device>" + big_text + "</device></user-agent>" + close,
       "malformed-request", "device too long"},
      {open + "<user-agent id='u'><software>a</software><software>b</software></user-agent>" +
           close,
       "malformed-request", "duplicate <software/>"},
      {open + ua + ua + close, "malformed-request", "duplicate <user-agent/>"},
      {open + "<resume xmlns='urn:xmpp:sm:3' h='1'/>" + close, "malformed-request", "previd"},
      {open + "<resume xmlns='urn:xmpp:sm:3' previd='' h='1'/>" + close, "malformed-request",
       "previd"},
      {open + "<resume xmlns='urn:xmpp:sm:3' previd='p'/>" + close, "malformed-request",
       "missing 'h'"},
      {open + "<resume xmlns='urn:xmpp:sm:3' previd='p' h='abc'/>" + close, "malformed-request",
       "'h' is not an integer"},
      {open + "<resume xmlns='urn:xmpp:sm:3' previd='p' h='4294967296'/>" + close,
       "malformed-request", "'h' is not an integer"},
      {open + "<resume xmlns='urn:xmpp:sm:3' previd='p' h='-1'/>" + close, "malformed-request",
       "'h' is not an integer"},
      {open + "<resume xmlns='urn:xmpp:sm:3' previd='p' h=' 1'/>" + close, "malformed-request",
       "'h' is not an integer"},
      {open + "<resume xmlns='urn:xmpp:sm:3' previd='" + std::string(kMaxSmIdBytes + 1, 'p') +
           "' h='1'/>" + close,
       "malformed-request", "too long"},
      {open +
           "<resume xmlns='urn:xmpp:sm:3' previd='p' h='1'/>"
           "<resume xmlns='urn:xmpp:sm:3' previd='p' h='1'/>" +
           close,
       "malformed-request", "duplicate SM <resume/>"},
      {open + "<bind xmlns='urn:xmpp:bind:0'/><bind xmlns='urn:xmpp:bind:0'/>" + close,
       "malformed-request", "duplicate Bind2 <bind/>"},
      {open + "<bind xmlns='urn:xmpp:bind:0'><tag>" + big_tag + "</tag></bind>" + close,
       "malformed-request", "tag/> too long"},
      {open + "<bind xmlns='urn:xmpp:bind:0'><tag>a</tag><tag>b</tag></bind>" + close,
       "malformed-request", "duplicate Bind2 <tag/>"},
      {open +
           "<bind xmlns='urn:xmpp:bind:0'><active xmlns='urn:xmpp:csi:0'/>"
           "<inactive xmlns='urn:xmpp:csi:0'/></bind>" +
           close,
       "malformed-request", "CSI"},
      {open + "<bind xmlns='urn:xmpp:bind:0'><enable xmlns='urn:xmpp:sm:3' max='soon'/></bind>" +
           close,
       "malformed-request", "'max'"},
      {open + "<bind xmlns='urn:xmpp:bind:0'><enable xmlns='urn:xmpp:sm:3' resume='yes'/></bind>" +
           close,
       "malformed-request", "'resume'"},
      {open + ua + "<request-token xmlns='urn:xmpp:fast:0'/>" + close, "malformed-request",
       "without mechanism"},
      {open + ua +
           "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>"
           "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>" +
           close,
       "malformed-request", "duplicate FAST <request-token/>"},
      {open + "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>" + close,
       "malformed-request", "user-agent"},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'>"
       "<fast xmlns='urn:xmpp:fast:0'/></authenticate>",
       "malformed-request", "user-agent"},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'>" + ua +
           "<fast xmlns='urn:xmpp:fast:0' count='x'/></authenticate>",
       "malformed-request", "count"},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'>" + ua +
           "<fast xmlns='urn:xmpp:fast:0' invalidate='yes'/></authenticate>",
       "malformed-request", "invalidate"},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'>" + ua +
           "<fast xmlns='urn:xmpp:fast:0'/><fast xmlns='urn:xmpp:fast:0'/></authenticate>",
       "malformed-request", "duplicate FAST <fast/>"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.xml);
    Stanza el = Stanza::parse(r.xml);
    REQUIRE(el);
    for (const AuthenticationFeature* offer :
         {&kOffer, static_cast<const AuthenticationFeature*>(nullptr)}) {
      auto res = parse_authenticate(el, offer);
      REQUIRE_FALSE(res.ok());
      CHECK(res.error().condition == r.condition);
      CHECK(res.error().text.find(r.text_has) != std::string::npos);
    }
  }
}

TEST_CASE("authenticate: checks against the offered feature") {
  struct Row {
    std::string xml;
    const char* condition;  // nullptr: accepted
  };
  const std::string ua = "<user-agent id='u-1'/>";
  const Row rows[] = {
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'/>", nullptr},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1'/>", nullptr},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'>" + ua +
           "<fast xmlns='urn:xmpp:fast:0'/></authenticate>",
       nullptr},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1-PLUS'/>", "invalid-mechanism"},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='EXTERNAL'/>", "invalid-mechanism"},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN' upgrade='SCRAM-SHA-256'/>",
       "invalid-mechanism"},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'>" + ua +
           "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-ENDP'/></authenticate>",
       "malformed-request"},
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'>" + ua +
           "<fast xmlns='urn:xmpp:fast:0'/></authenticate>",
       "malformed-request"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.xml);
    Stanza el = Stanza::parse(r.xml);
    REQUIRE(el);
    auto res = parse_authenticate(el, &kOffer);
    if (r.condition) {
      REQUIRE_FALSE(res.ok());
      CHECK(res.error().condition == r.condition);
      // Without the offer only syntax is checked.
      auto bare = parse_authenticate(el);
      CHECK(bare.ok());
      if (bare.ok())
        CHECK(bare->upgrade.has_value() == (r.xml.find("upgrade=") != std::string::npos));
    } else {
      CHECK(res.ok());
    }
  }
}

TEST_CASE("response and abort") {
  struct Row {
    const char* xml;
    bool ok;
    const char* data;
  };
  const Row rows[] = {
      {"<response xmlns='urn:xmpp:sasl:2'>YWJj</response>", true, "abc"},
      {"<response xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1' foo='bar'>YWJj</response>", true,
       "abc"},
      {"<response xmlns='urn:xmpp:sasl:2'/>", true, ""},
      {"<response xmlns='urn:xmpp:sasl:2'>=</response>", true, ""},
      {"<response xmlns='urn:xmpp:sasl:2'>YWJ</response>", false, nullptr},
      {"<response xmlns='urn:xmpp:sasl:2'>YW*j</response>", false, nullptr},
      {"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>YWJj</response>", false, nullptr},
      {"<challenge xmlns='urn:xmpp:sasl:2'>YWJj</challenge>", false, nullptr},
  };
  for (const auto& r : rows) {
    CAPTURE(r.xml);
    auto res = parse_response(Stanza::parse(r.xml));
    REQUIRE(res.ok() == r.ok);
    if (r.ok) {
      CHECK(*res == r.data);
    } else {
      CHECK(res.error().condition == "malformed-request");
    }
  }
  auto a = parse_abort(Stanza::parse("<abort xmlns='urn:xmpp:sasl:2'/>"));
  REQUIRE(a.ok());
  CHECK_FALSE(a->text);
  a = parse_abort(Stanza::parse("<abort xmlns='urn:xmpp:sasl:2'><text>bye</text></abort>"));
  REQUIRE(a.ok());
  CHECK(a->text == "bye");
  CHECK_FALSE(parse_abort(Stanza::parse("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")));
  CHECK_FALSE(parse_abort(Stanza()));
}

TEST_CASE("classify_sasl2") {
  struct Row {
    const char* xml;
    Sasl2Element want;
  };
  const Row rows[] = {
      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'/>", Sasl2Element::Authenticate},
      {"<response xmlns='urn:xmpp:sasl:2'/>", Sasl2Element::Response},
      {"<abort xmlns='urn:xmpp:sasl:2'/>", Sasl2Element::Abort},
      {"<next xmlns='urn:xmpp:sasl:2' task='X'/>", Sasl2Element::Other},
      {"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'/>", Sasl2Element::Other},
      {"<message/>", Sasl2Element::Other},
  };
  for (const auto& r : rows) {
    CAPTURE(r.xml);
    CHECK(classify_sasl2(Stanza::parse(r.xml)) == r.want);
  }
  CHECK(classify_sasl2(Stanza()) == Sasl2Element::Other);
}

TEST_CASE("challenge, success and failure builders") {
  CHECK(canon_serialised(build_challenge("r=abc,s=c2FsdA==,i=4096")) ==
        canon("<challenge xmlns='urn:xmpp:sasl:2'>cj1hYmMscz1jMkZzZEE9PSxpPTQwOTY=</challenge>"));
  CHECK(canon_serialised(build_challenge("")) == canon("<challenge xmlns='urn:xmpp:sasl:2'/>"));

  Success plain;
  plain.authorization_identifier = "alice@legacy.test";
  CHECK(canon_serialised(build_success(plain)) ==
        canon("<success xmlns='urn:xmpp:sasl:2'>"
              "<authorization-identifier>alice@legacy.test</authorization-identifier></success>"));

  // PROTOCOLS.md §1 success, with every inline answer.
  Success full;
  full.additional_data = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";
  full.authorization_identifier = "alice@legacy.test/App.x7qdabcd";
  Stanza bound = Stanza::element("bound", kNsBind2);
  Stanza enabled = Stanza::element("enabled", kNsSm);
  enabled.set_attr("id", "sm-1").set_attr("resume", "true").set_attr("max", "300");
  bound.add_child(enabled);
  Stanza token = Stanza::element("token", kNsFast);
  token.set_attr("token", "secret").set_attr("expiry", "2026-12-08T00:00:00Z");
  full.extra = {bound, token};
  CHECK(canon_serialised(build_success(full)) ==
        canon("<success xmlns='urn:xmpp:sasl:2'>"
              "<additional-data>dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9</additional-data>"
              "<authorization-identifier>alice@legacy.test/App.x7qdabcd"
              "</authorization-identifier>"
              "<bound xmlns='urn:xmpp:bind:0'>"
              "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true' max='300'/></bound>"
              "<token xmlns='urn:xmpp:fast:0' token='secret' expiry='2026-12-08T00:00:00Z'/>"
              "</success>"));

  struct Row {
    const char* condition;
    const char* text;
    const char* want;
  };
  const Row rows[] = {
      {"not-authorized", "bad password",
       "<failure xmlns='urn:xmpp:sasl:2'><not-authorized "
       "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><text>bad password</text></failure>"},
      {"credentials-expired", "",
       "<failure xmlns='urn:xmpp:sasl:2'><credentials-expired "
       "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>"},
      {"malformed-request", "a < b & c",
       "<failure xmlns='urn:xmpp:sasl:2'><malformed-request "
       "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><text>a &lt; b &amp; c</text></failure>"},
      {"no-such-condition", "x",
       "<failure xmlns='urn:xmpp:sasl:2'><not-authorized "
       "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><text>x</text></failure>"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.condition);
    CHECK(canon_serialised(build_failure(r.condition, r.text)) == canon(r.want));
  }
}

TEST_CASE("mechanism names and SASL conditions") {
  struct Row {
    const char* name;
    bool valid;
  };
  const Row rows[] = {{"PLAIN", true},
                      {"SCRAM-SHA-256", true},
                      {"HT-SHA-256-NONE", true},
                      {"X_Y", true},
                      {"", false},
                      {"plain", false},
                      {"SCRAM SHA", false},
                      {"ABCDEFGHIJKLMNOPQRST", true},
                      {"ABCDEFGHIJKLMNOPQRSTU", false},
                      {"PLAIN\n", false}};
  for (const auto& r : rows) {
    CAPTURE(r.name);
    CHECK(is_valid_mechanism_name(r.name) == r.valid);
  }
  for (const char* c :
       {"aborted", "account-disabled", "credentials-expired", "encryption-required",
        "incorrect-encoding", "invalid-authzid", "invalid-mechanism", "malformed-request",
        "mechanism-too-weak", "not-authorized", "temporary-auth-failure"}) {
    CHECK(is_sasl_condition(c));
  }
  CHECK_FALSE(is_sasl_condition("bad-request"));
}

}  // namespace s2::session2
