// dedup_key() / should_strip_stanza_id() (dedup.h, ARCHITECTURE.md §4, XEP-0359).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "policies/dedup.h"

namespace s2::policy {
namespace {

constexpr std::string_view kAccount = "alice@example.org";
constexpr bool yes = true, no = false;
using Src = DedupSource;

// FNV-1a 64 of "a" and of "" (published test vectors).
#define HASH_A "af63dc4c8601ec8c"
#define HASH_EMPTY "cbf29ce484222325"
#define US "\x1f"

TEST_CASE("dedup: FNV-1a 64 test vectors") {
  CHECK(fnv1a64("") == 0xcbf29ce484222325ULL);
  CHECK(fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(fnv1a64("foobar") == 0x85944171f73967e8ULL);
}

TEST_CASE("dedup: which identity wins") {
  // Account a@x; b@y and m@z are contacts; room@c.x a MUC room.
  const std::vector<StanzaIdRef> by_acct = {{"S1", "a@x"}};
  const std::vector<StanzaIdRef> by_acct_caps = {{"S1", "A@X"}};
  const std::vector<StanzaIdRef> by_room = {{"R9", "room@c.x"}};
  const std::vector<StanzaIdRef> room_acct = {{"R9", "room@c.x"}, {"S2", "a@x"}};
  const std::vector<StanzaIdRef> empty_id = {{"", "a@x"}};
  const std::vector<StanzaIdRef> none;
  constexpr auto Sid = Src::UpstreamStanzaId, Oid = Src::OriginId, Fp = Src::Fingerprint;
  struct Row {
    const std::vector<StanzaIdRef>* sids;
    std::string_view origin_id, from, content;
    bool trust;
    Src src;
    std::string key;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // stanza-ids   origin from      body trust source key             why
    {&by_acct,      "O1", "b@y/p",   "a", yes, Sid, "sid:S1",          "archive id first"},
    {&by_acct_caps, "",   "b@y/p",   "a", yes, Sid, "sid:S1",          "`by` case-folded"},
    {&room_acct,    "",   "b@y/p",   "a", yes, Sid, "sid:S2",          "ours, not the room's"},
    {&by_acct,      "O1", "b@y/p",   "a", no,  Oid, "oid:b@y" US "O1", "no MAM: forgeable"},
    {&by_room,      "O1", "b@y/p",   "a", yes, Oid, "oid:b@y" US "O1", "by someone else"},
    {&empty_id,     "O1", "b@y/p",   "a", yes, Oid, "oid:b@y" US "O1", "empty id ignored"},
    {&none,         "O1", "B@Y/tab", "b", yes, Oid, "oid:b@y" US "O1", "sender's bare JID"},
    {&none,         "O1", "a@x/dev", "a", yes, Oid, "oid:a@x" US "O1", "own send = its echo"},
    {&by_room,      "",   "b@y/p",   "a", yes, Fp,  "",                "no usable id"},
    {&none,         "",   "b@y/p",   "",  yes, Fp,  "",                "nothing at all"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why);
    const DedupInput in{*r.sids, r.origin_id, r.from, "a@x", "chat", "1", r.content};
    const auto k = dedup_key(in, "a@x", r.trust);
    CHECK(k.source == r.src);
    if (r.src != Fp) CHECK(k.key == r.key);
  }
  // Fingerprints spell out every field, then the content hash.
  const DedupInput with_id{{}, "", "b@y/p", "a@x", "chat", "1", "a"};
  CHECK(dedup_key(with_id, "a@x", true).key == "fp:b@y/p" US "a@x" US "chat" US "1" US HASH_A);
  const DedupInput bare{{}, "", "b@y/p", "a@x", "", "", ""};
  CHECK(dedup_key(bare, "a@x", true).key == "fp:b@y/p" US "a@x" US US US HASH_EMPTY);
}

TEST_CASE("dedup: a bare id never identifies a message") {
  auto key = [](std::string_view from, std::string_view id, std::string_view content,
                std::string_view type = "chat", std::string_view origin = "") {
    return dedup_key(DedupInput{{}, origin, from, kAccount, type, id, content}, kAccount, true).key;
  };
  // Same id "1", different senders / bodies / types: different keys.
  CHECK(key("bob@x/a", "1", "hi") != key("carol@y/a", "1", "hi"));
  CHECK(key("bob@x/a", "1", "hi") != key("bob@x/a", "1", "ho"));
  CHECK(key("bob@x/a", "1", "hi") != key("bob@x/a", "1", "hi", "normal"));
  // Body-less receipts: their meaning is in the content children, which reach the fingerprint.
  CHECK(key("bob@x/a", "", "<received id='m1'/>") != key("bob@x/a", "", "<received id='m2'/>"));
  // The same stanza twice (live + offline copy) is one key.
  CHECK(key("bob@x/a", "1", "hi") == key("bob@x/a", "1", "hi"));
  // Two peers reusing one origin-id cannot collide.
  CHECK(key("bob@x/a", "1", "hi", "chat", "O") != key("mallory@z/a", "1", "hi", "chat", "O"));
  // Field boundaries are unambiguous: ("ab","c") and ("a","bc") differ.
  CHECK(key("ab", "c", "") != key("a", "bc", ""));
}

TEST_CASE("dedup: client-supplied stanza-ids that must be stripped") {
  struct Row {
    std::string_view by;
    std::string_view proxy;
    bool strip;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // by                           proxy                  strip why
    {"alice@example.org",           "",                    yes, "claims the account"},
    {"ALICE@Example.org",           "",                    yes, "…in another case"},
    {"alice@example.org/phone",     "",                    yes, "…with a resource"},
    {"example.org",                 "",                    yes, "claims the domain"},
    {"example.org/admin",           "",                    yes, "…with a resource"},
    {"s2proxy.example.org",         "s2proxy.example.org", yes, "claims the proxy"},
    {"",                            "",                    yes, "no by: malformed"},
    {"room@conference.example.org", "",                    no,  "a room's own id"},
    {"conference.example.org",      "",                    no,  "a component"},
    {"bob@example.org",             "",                    no,  "another account"},
    {"alice@example.org.evil",      "",                    no,  "not our domain"},
    {"s2proxy.example.org",         "",                    no,  "no proxy JID configured"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why, " by=", r.by);
    CHECK(should_strip_stanza_id(r.by, kAccount, "example.org", r.proxy) == r.strip);
  }
}

TEST_CASE("resend_key: same stanza, same key; any field that differs, another key") {
  struct Row {
    const char *to, *type, *id, *origin, *content;
    bool same;
    const char* why;
  };
  const std::string base = resend_key("bob@example.org", "chat", "1", "", "hi");
  // clang-format off
  const Row rows[] = {
    {"bob@example.org",  "chat",      "1",  "",   "hi",  true,  "the client sends it again"},
    {"bob@example.org",  "chat",      "1",  "",   "hi!", false, "other text (id reused)"},
    {"bob@example.org",  "chat",      "2",  "",   "hi",  false, "other id"},
    {"carol@example.org","chat",      "1",  "",   "hi",  false, "other addressee"},
    {"bob@example.org",  "normal",    "1",  "",   "hi",  false, "other type"},
    {"bob@example.org",  "chat",      "1",  "o1", "hi",  false, "an origin-id"},
    {"bob@example.org",  "chat",      "1h", "",   "i",   false, "fields do not run together"},
    {"bob@example.org",  "chat",      "",   "",   "1hi", false, "…nor into the content"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why);
    const std::string k = resend_key(r.to, r.type, r.id, r.origin, r.content);
    CHECK(k.size() == 16);
    CHECK((k == base) == r.same);
  }
}

#undef HASH_A
#undef HASH_EMPTY
#undef US

}  // namespace
}  // namespace s2::policy
