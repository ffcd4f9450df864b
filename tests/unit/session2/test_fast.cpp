// FAST (XEP-0484) element tests.
#include <doctest/doctest.h>

#include "common/session2/fast.h"
#include "tests/unit/session2/xml_canon.h"

namespace s2::session2 {

using test::canon;
using test::canon_serialised;

TEST_CASE("fast feature") {
  CHECK(canon_serialised(build_fast_feature({"HT-SHA-256-NONE"})) ==
        canon("<fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-NONE</mechanism></fast>"));
  // XEP-0484 example 1
  CHECK(canon_serialised(
            build_fast_feature({"HT-SHA-256-ENDP", "HT-SHA-256-EXPR", "HT-SHA-256-NONE"}, true)) ==
        canon("<fast xmlns='urn:xmpp:fast:0' tls-0rtt='true'>"
              "<mechanism>HT-SHA-256-ENDP</mechanism><mechanism>HT-SHA-256-EXPR</mechanism>"
              "<mechanism>HT-SHA-256-NONE</mechanism></fast>"));
}

TEST_CASE("request-token") {
  struct Row {
    const char* xml;
    const char* mechanism;  // nullptr: error
  };
  const Row rows[] = {
      {"<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>", "HT-SHA-256-NONE"},
      {"<request-token xmlns='urn:xmpp:fast:0'/>", nullptr},
      {"<request-token xmlns='urn:xmpp:fast:0' mechanism=''/>", nullptr},
      {"<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE-TOO-LONG-NAME'/>",
       nullptr},
      {"<request-token xmlns='urn:xmpp:fast:1' mechanism='HT-SHA-256-NONE'/>", nullptr},
      {"<token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>", nullptr},
  };
  for (const auto& r : rows) {
    CAPTURE(r.xml);
    auto res = parse_fast_request_token(Stanza::parse(r.xml));
    if (r.mechanism) {
      REQUIRE(res.ok());
      CHECK(res->mechanism == r.mechanism);
    } else {
      REQUIRE_FALSE(res.ok());
      CHECK(res.error().condition == "malformed-request");
    }
  }
}

TEST_CASE("fast count and invalidate") {
  struct Row {
    const char* xml;
    bool ok;
    std::optional<uint64_t> count;
    bool invalidate;
  };
  const Row rows[] = {
      {"<fast xmlns='urn:xmpp:fast:0'/>", true, std::nullopt, false},
      {"<fast xmlns='urn:xmpp:fast:0' count='123'/>", true, 123u, false},
      {"<fast xmlns='urn:xmpp:fast:0' count='123' invalidate='true'/>", true, 123u, true},
      {"<fast xmlns='urn:xmpp:fast:0' invalidate='1'/>", true, std::nullopt, true},
      {"<fast xmlns='urn:xmpp:fast:0' invalidate='false'/>", true, std::nullopt, false},
      {"<fast xmlns='urn:xmpp:fast:0' count='18446744073709551615'/>", true,
       18446744073709551615ull, false},
      {"<fast xmlns='urn:xmpp:fast:0' count='18446744073709551616'/>", false, std::nullopt, false},
      {"<fast xmlns='urn:xmpp:fast:0' count='-1'/>", false, std::nullopt, false},
      {"<fast xmlns='urn:xmpp:fast:0' count=''/>", false, std::nullopt, false},
      {"<fast xmlns='urn:xmpp:fast:0' invalidate='yes'/>", false, std::nullopt, false},
      {"<fast xmlns='urn:xmpp:sasl:2'/>", false, std::nullopt, false},
  };
  for (const auto& r : rows) {
    CAPTURE(r.xml);
    auto res = parse_fast(Stanza::parse(r.xml));
    REQUIRE(res.ok() == r.ok);
    if (r.ok) {
      CHECK(res->count == r.count);
      CHECK(res->invalidate == r.invalidate);
    } else {
      CHECK(res.error().condition == "malformed-request");
    }
  }
}

TEST_CASE("token") {
  CHECK(canon_serialised(build_fast_token("WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm", 1796688000)) ==
        canon("<token xmlns='urn:xmpp:fast:0' token='WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm'"
              " expiry='2026-12-08T00:00:00Z'/>"));
  // Attribute escaping survives serialisation.
  CHECK(canon_serialised(build_fast_token("a'b\"c<&", 0)) ==
        canon("<token xmlns='urn:xmpp:fast:0' token='a&apos;b&quot;c&lt;&amp;'"
              " expiry='1970-01-01T00:00:00Z'/>"));
}

}  // namespace s2::session2
