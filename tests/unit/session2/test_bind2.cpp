// Bind2 (XEP-0386) tests: the feature, <bind/> parsing, resource derivation and
// sanitisation, <bound/>.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "common/session2/bind2.h"
#include "tests/unit/session2/xml_canon.h"

namespace s2::session2 {
namespace {

using test::canon;
using test::canon_serialised;

const std::string kSecret = "0123456789abcdef0123456789abcdef";

bool is_suffix_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'); }

// "<tag>.<8 base32 chars>" with the given tag.
void check_shape(const std::string& resource, const std::string& tag) {
  CAPTURE(resource);
  REQUIRE(resource.size() == tag.size() + 9);
  CHECK(resource.compare(0, tag.size(), tag) == 0);
  CHECK(resource[tag.size()] == '.');
  for (size_t i = tag.size() + 1; i < resource.size(); ++i) CHECK(is_suffix_char(resource[i]));
}

}  // namespace

TEST_CASE("bind feature") {
  CHECK(canon_serialised(build_bind_feature({"urn:xmpp:carbons:2", "urn:xmpp:csi:0"})) ==
        canon("<bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:carbons:2'/>"
              "<feature var='urn:xmpp:csi:0'/></inline></bind>"));
  CHECK(canon_serialised(build_bind_feature({})) == canon("<bind xmlns='urn:xmpp:bind:0'/>"));
}

TEST_CASE("parse_bind: inline requests") {
  struct Row {
    const char* xml;
    std::optional<std::string> tag;
    bool carbons;
    std::optional<CsiState> csi;
    bool sm;
    bool sm_resume;
    std::optional<uint32_t> sm_max;
  };
  const Row rows[] = {
      {"<bind xmlns='urn:xmpp:bind:0'/>", std::nullopt, false, std::nullopt, false, false,
       std::nullopt},
      {"<bind xmlns='urn:xmpp:bind:0'><tag>AwesomeXMPP</tag></bind>", "AwesomeXMPP", false,
       std::nullopt, false, false, std::nullopt},
      {"<bind xmlns='urn:xmpp:bind:0'><tag/></bind>", "", false, std::nullopt, false, false,
       std::nullopt},
      // XEP-0386 example 3
      {"<bind xmlns='urn:xmpp:bind:0'><tag>AwesomeXMPP</tag>"
       "<enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='urn:xmpp:sm:3'/>"
       "<inactive xmlns='urn:xmpp:csi:0'/></bind>",
       "AwesomeXMPP", true, CsiState::Inactive, true, false, std::nullopt},
      {"<bind xmlns='urn:xmpp:bind:0'><active xmlns='urn:xmpp:csi:0'/>"
       "<enable xmlns='urn:xmpp:sm:3' resume='1' max='300'/></bind>",
       std::nullopt, false, CsiState::Active, true, true, 300u},
      // Unknown inline requests and elements are ignored.
      {"<bind xmlns='urn:xmpp:bind:0'><enable xmlns='urn:example:x'/><foo/>"
       "<tag xmlns='urn:example:y'>not-a-tag</tag></bind>",
       std::nullopt, false, std::nullopt, false, false, std::nullopt},
  };
  for (const auto& r : rows) {
    CAPTURE(r.xml);
    auto b = parse_bind(Stanza::parse(r.xml));
    REQUIRE(b.ok());
    CHECK(b->tag == r.tag);
    CHECK(b->carbons == r.carbons);
    CHECK(b->csi == r.csi);
    REQUIRE(b->sm_enable.has_value() == r.sm);
    if (r.sm) {
      CHECK(b->sm_enable->resume == r.sm_resume);
      CHECK(b->sm_enable->max == r.sm_max);
    }
  }
}

TEST_CASE("parse_bind: errors") {
  const char* rows[] = {
      "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>",
      "<bound xmlns='urn:xmpp:bind:0'/>",
      "<bind xmlns='urn:xmpp:bind:0'><tag>a</tag><tag>a</tag></bind>",
      "<bind xmlns='urn:xmpp:bind:0'><enable xmlns='urn:xmpp:carbons:2'/>"
      "<enable xmlns='urn:xmpp:carbons:2'/></bind>",
      "<bind xmlns='urn:xmpp:bind:0'><inactive xmlns='urn:xmpp:csi:0'/>"
      "<inactive xmlns='urn:xmpp:csi:0'/></bind>",
      "<bind xmlns='urn:xmpp:bind:0'><enable xmlns='urn:xmpp:sm:3'/>"
      "<enable xmlns='urn:xmpp:sm:3'/></bind>",
      "<bind xmlns='urn:xmpp:bind:0'><enable xmlns='urn:xmpp:sm:3' max='-5'/></bind>",
  };
  for (const char* xml : rows) {
    CAPTURE(xml);
    auto b = parse_bind(Stanza::parse(xml));
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().condition == "malformed-request");
  }
  const std::string big =
      "<bind xmlns='urn:xmpp:bind:0'><tag>" + std::string(kMaxTagBytes + 1, 'x') + "</tag></bind>";
  auto b = parse_bind(Stanza::parse(big));
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().condition == "malformed-request");
  CHECK_FALSE(parse_bind(Stanza()).ok());
}

TEST_CASE("sanitize_resource_tag") {
  struct Row {
    std::string in;
    std::string want;
  };
  const Row rows[] = {
      {"App", "App"},
      {"", "s2"},
      {"   ", "s2"},
      {"  Conversations  ", "Conversations"},
      {"App Name", "App Name"},
      {"a/b/c", "abc"},
      {"/", "s2"},
      {"a\nb\tc\rd", "abcd"},
      {std::string("a\0b", 3), "ab"},
      {"x\x7fy", "xy"},
      {"x\xc2\x85y", "xy"},                      // U+0085 NEL (C1 control)
      {"caf\xc3\xa9", "caf\xc3\xa9"},            // é kept
      {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},  // emoji kept
      {"a\xffz", "az"},                          // invalid byte dropped
      {"a\xc3", "a"},                            // truncated sequence dropped
      {"a\xc0\xafz", "az"},                      // overlong '/' dropped
      {"a\xed\xa0\x80z", "az"},                  // UTF-16 surrogate dropped
      {std::string(64, 'a'), std::string(64, 'a')},
      {std::string(100, 'a'), std::string(64, 'a')},
      // Cut on a character boundary: 63 bytes + a 2-byte character does not fit.
      {std::string(63, 'a') + "\xc3\xa9" + "zz", std::string(63, 'a')},
      {std::string(62, 'a') + "\xc3\xa9" + "zz", std::string(62, 'a') + "\xc3\xa9"},
      // A cut that leaves trailing spaces trims them.
      {std::string(60, 'a') + "     x", std::string(60, 'a')},
  };
  for (const auto& r : rows) {
    CAPTURE(r.in);
    const std::string got = sanitize_resource_tag(r.in);
    CHECK(got == r.want);
    CHECK(got.size() <= kMaxResourceTagBytes);
  }
}

TEST_CASE("derive_resource is stable per (tag, user agent) and hides the id") {
  const std::string ua1 = "d4565fa7-4d72-4749-b3d3-740edbf87770";
  const std::string ua2 = "0b5b2f30-8d1c-4a0e-9d5c-1c9e3b7a1f00";
  const std::string r1 = derive_resource("App", ua1, kSecret);
  check_shape(r1, "App");
  CHECK(derive_resource("App", ua1, kSecret) == r1);        // stable
  CHECK(derive_resource("App", ua2, kSecret) != r1);        // per device
  CHECK(derive_resource("App", ua1, kSecret + "x") != r1);  // per secret
  // The suffix depends on the device only; the tag is the visible prefix.
  const std::string r1b = derive_resource("Other", ua1, kSecret);
  check_shape(r1b, "Other");
  CHECK(r1b.substr(r1b.size() - 8) == r1.substr(r1.size() - 8));
  check_shape(derive_resource("", ua1, kSecret), "s2");
  check_shape(derive_resource("a/b", ua1, kSecret), "ab");

  // Many devices: distinct resources, never containing the id.
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string ua = "ua-" + std::to_string(i) + "-4d72-4749-b3d3";
    const std::string r = derive_resource("App", ua, kSecret);
    CHECK(r.find(ua) == std::string::npos);
    seen.insert(r);
  }
  CHECK(seen.size() == 200);

  // A client that puts its id into the tag does not get it exposed.
  struct Row {
    std::string tag;
    std::string ua;
    std::string want_tag;
  };
  const Row rows[] = {
      {ua1, ua1, "s2"},
      {"App-" + ua1, ua1, "s2"},
      {"App/" + ua1, ua1, "s2"},                // after sanitising, the id is still there
      {std::string(50, 'a') + ua1, ua1, "s2"},  // cutting would leave part of it
      {"Android", "id", "Android"},             // a short id is no identifier: tags stay intact
  };
  for (const auto& r : rows) {
    CAPTURE(r.tag);
    const std::string got = derive_resource(r.tag, r.ua, kSecret);
    check_shape(got, r.want_tag);
    if (r.ua.size() >= 8) CHECK(got.find(r.ua) == std::string::npos);
  }
}

TEST_CASE("random_resource") {
  const std::string a = random_resource("App");
  const std::string b = random_resource("App");
  check_shape(a, "App");
  check_shape(b, "App");
  CHECK(a != b);
  check_shape(random_resource("\n"), "s2");
}

TEST_CASE("bound builder") {
  Bound b;
  CHECK(canon_serialised(build_bound(b)) == canon("<bound xmlns='urn:xmpp:bind:0'/>"));

  Stanza enabled = Stanza::element("enabled", kNsSm);
  enabled.set_attr("id", "sm-1").set_attr("resume", "true");
  b.sm = enabled;
  b.mam = MamMetadata{ArchiveRef{"YWxwaGEg", 1219439344}, ArchiveRef{"b21lZ2Eg", 1587393261}};
  Stanza extra = Stanza::element("x", "urn:example");
  b.extra.push_back(extra);
  // XEP-0386 example 4 plus SM.
  CHECK(canon_serialised(build_bound(b)) ==
        canon("<bound xmlns='urn:xmpp:bind:0'>"
              "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>"
              "<metadata xmlns='urn:xmpp:mam:2'>"
              "<start id='YWxwaGEg' timestamp='2008-08-22T21:09:04Z'/>"
              "<end id='b21lZ2Eg' timestamp='2020-04-20T14:34:21Z'/>"
              "</metadata><x xmlns='urn:example'/></bound>"));

  Bound empty_archive;
  empty_archive.mam = MamMetadata{};
  CHECK(canon_serialised(build_bound(empty_archive)) ==
        canon("<bound xmlns='urn:xmpp:bind:0'><metadata xmlns='urn:xmpp:mam:2'/></bound>"));
}

}  // namespace s2::session2
