// Credential vault and FAST tokens against a real mirror in a temp dir:
// sealing, wrong key, token issue/verify/rotation/replay/expiry/invalidate.
#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <vector>

#include "common/crypto/ht.h"
#include "common/crypto/vault.h"
#include "common/store/mirror.h"
#include "proxy/credential_vault.h"
#include "proxy/fast_tokens.h"
#include "temp_mirror.h"

namespace {
using s2::test::TempMirror;

bool put_sync(s2::CredentialVault& v, const std::string& jid, const std::string& pw,
              const s2::UpstreamSecret& up) {
  std::promise<bool> p;
  v.put(jid, pw, up, [&](bool ok) { p.set_value(ok); });
  return p.get_future().get();
}

std::optional<s2::FastTokens::Issued> issue_sync(s2::FastTokens& f, const std::string& jid,
                                                 const std::string& ua, int64_t now) {
  std::promise<std::optional<s2::FastTokens::Issued>> p;
  f.issue(jid, ua, now, [&](auto t) { p.set_value(t); });
  return p.get_future().get();
}

// verify() writes asynchronously; wait for the writer to be idle.
void settle(s2::store::Mirror& m) {
  std::promise<void> p;
  m.submit({}, [&](s2::store::WriteResult) { p.set_value(); });
  p.get_future().get();
}

const std::string kKey(32, 'k');
}  // namespace

TEST_CASE("vault: entry round trip, sealed per account") {
  TempMirror t;
  s2::CredentialVault vault(*t.m, kKey);
  s2::UpstreamSecret up;
  up.kind = s2::UpstreamSecret::Kind::ScramSalted;
  up.hash = s2::crypto::HashAlg::Sha1;
  up.salt = "salt-bytes";
  up.iterations = 10000;
  up.secret = std::string(20, '\x01');
  REQUIRE(put_sync(vault, "alice@legacy.test", "alicepw", up));
  auto e = vault.get("alice@legacy.test");
  REQUIRE(e);
  CHECK(e->upstream.kind == s2::UpstreamSecret::Kind::ScramSalted);
  CHECK(e->upstream.salt == "salt-bytes");
  CHECK(e->upstream.iterations == 10000);
  CHECK(e->upstream.secret == std::string(20, '\x01'));
  CHECK(e->sha1.iterations >= 4096);
  CHECK(e->sha256.iterations >= 4096);
  // The local verifiers accept the password and nothing else.
  CHECK(e->sha256.stored_key == s2::crypto::make_scram_verifier(s2::crypto::HashAlg::Sha256,
                                                                "alicepw", e->sha256.salt,
                                                                e->sha256.iterations)
                                    .stored_key);
  CHECK(e->sha256.stored_key != s2::crypto::make_scram_verifier(s2::crypto::HashAlg::Sha256,
                                                                "alicepx", e->sha256.salt,
                                                                e->sha256.iterations)
                                    .stored_key);
  CHECK_FALSE(vault.get("bob@legacy.test"));

  // Wrong key: a clean "absent", never garbage.
  s2::CredentialVault other(*t.m, std::string(32, 'x'));
  CHECK_FALSE(other.get("alice@legacy.test"));

  // Invalidation removes the entry.
  std::promise<bool> p;
  vault.invalidate("alice@legacy.test", [&](bool ok) { p.set_value(ok); });
  CHECK(p.get_future().get());
  CHECK_FALSE(vault.get("alice@legacy.test"));
}

TEST_CASE("vault: the verifier of the upstream's SCRAM hash comes from its salted password") {
  // What a first login costs: the upstream's SCRAM (Prosody 0.12: SHA-1, 10,000 iterations)
  // salted the password already; a second PBKDF2 for the same hash would be waste.
  using s2::crypto::HashAlg;
  struct Row {
    HashAlg upstream_hash;
  };
  for (const Row r : {Row{HashAlg::Sha1}, Row{HashAlg::Sha256}}) {
    CAPTURE(static_cast<int>(r.upstream_hash));
    TempMirror t;
    s2::CredentialVault vault(*t.m, kKey);
    s2::UpstreamSecret up;
    up.kind = s2::UpstreamSecret::Kind::ScramSalted;
    up.hash = r.upstream_hash;
    up.salt = "upstream-salt";
    up.iterations = 10000;
    up.secret = s2::crypto::scram_salted_password(r.upstream_hash, "alicepw", up.salt, 10000);
    REQUIRE(put_sync(vault, "alice@legacy.test", "alicepw", up));
    auto e = vault.get("alice@legacy.test");
    REQUIRE(e);
    const HashAlg other = r.upstream_hash == HashAlg::Sha1 ? HashAlg::Sha256 : HashAlg::Sha1;
    const auto& same = r.upstream_hash == HashAlg::Sha1 ? e->sha1 : e->sha256;
    const auto& own = r.upstream_hash == HashAlg::Sha1 ? e->sha256 : e->sha1;
    CHECK(same.salt == "upstream-salt");
    CHECK(same.iterations == 10000);
    CHECK(same.stored_key ==
          s2::crypto::make_scram_verifier(r.upstream_hash, "alicepw", up.salt, 10000).stored_key);
    CHECK(same.server_key ==
          s2::crypto::make_scram_verifier(r.upstream_hash, "alicepw", up.salt, 10000).server_key);
    // The other hash: its own salt and PBKDF2, and it accepts the password too.
    CHECK(own.salt != "upstream-salt");
    CHECK(own.iterations == 4096);
    CHECK(own.stored_key ==
          s2::crypto::make_scram_verifier(other, "alicepw", own.salt, own.iterations).stored_key);
  }
}

TEST_CASE("vault: decode rejects malformed entries") {
  s2::VaultEntry e;
  e.upstream.secret = "pw";
  const std::string good = s2::CredentialVault::encode(e);
  CHECK(s2::CredentialVault::decode(good));
  CHECK_FALSE(s2::CredentialVault::decode(""));
  CHECK_FALSE(s2::CredentialVault::decode(good.substr(0, good.size() - 1)));
  CHECK_FALSE(s2::CredentialVault::decode(good + "x"));
  std::string bad_version = good;
  bad_version[0] = 9;
  CHECK_FALSE(s2::CredentialVault::decode(bad_version));
}

TEST_CASE("FAST: issue, verify, bound to user agent, replay count, rotation, expiry") {
  TempMirror t;
  const int64_t day = 86400 * 1000LL;
  s2::FastTokens fast(*t.m, "token-key", 14 * day);
  const std::string jid = "alice@legacy.test";
  auto t1 = issue_sync(fast, jid, "ua-1", 1000);
  REQUIRE(t1);
  CHECK(t1->expiry_ms == 1000 + 14 * day);
  CHECK(t1->token.size() >= 43);  // 256 bits
  const auto mac1 = s2::crypto::ht_initiator_hmac(t1->token);

  using V = s2::FastTokens::Verdict;
  CHECK(fast.verify(jid, "ua-1", mac1, std::nullopt, 2000) == V::Ok);
  CHECK(fast.last_token() == t1->token);
  settle(*t.m);
  CHECK(fast.verify(jid, "ua-2", mac1, std::nullopt, 2000) == V::Invalid);  // other device
  CHECK(fast.verify("bob@legacy.test", "ua-1", mac1, std::nullopt, 2000) == V::Invalid);
  CHECK(fast.verify(jid, "ua-1", std::string(32, '\0'), std::nullopt, 2000) == V::Invalid);
  // Replay protection: count must increase.
  CHECK(fast.verify(jid, "ua-1", mac1, 5, 2000) == V::Ok);
  settle(*t.m);
  CHECK(fast.verify(jid, "ua-1", mac1, 5, 2000) == V::Replayed);
  CHECK(fast.verify(jid, "ua-1", mac1, 4, 2000) == V::Replayed);
  CHECK(fast.verify(jid, "ua-1", mac1, 6, 2000) == V::Ok);
  settle(*t.m);

  // Rotation: the old token stays valid until the new one is used.
  auto t2 = issue_sync(fast, jid, "ua-1", 3000);
  REQUIRE(t2);
  CHECK(t2->token != t1->token);
  const auto mac2 = s2::crypto::ht_initiator_hmac(t2->token);
  CHECK(fast.verify(jid, "ua-1", mac1, 7, 3000) == V::Ok);
  settle(*t.m);
  CHECK(fast.verify(jid, "ua-1", mac2, std::nullopt, 3000) == V::Ok);
  settle(*t.m);
  CHECK(fast.verify(jid, "ua-1", mac1, 8, 3000) == V::Invalid);  // retired by the new one's use

  // Expiry.
  CHECK(fast.verify(jid, "ua-1", mac2, std::nullopt, 3000 + 14 * day) == V::Expired);

  // Invalidation.
  fast.invalidate(jid, "ua-1");
  settle(*t.m);
  CHECK(fast.verify(jid, "ua-1", mac2, std::nullopt, 4000) == V::Invalid);
}

// A returning device whose link the anchor kept logs in without an upstream login (docs §26), so
// a replay can arrive before the store committed the use it replays: it is refused all the same.
// Completions are held in a queue here, as the daemon's loop would run them later.
TEST_CASE("FAST: a replay or a retired token is refused before the use that made it so commits") {
  const std::string dir = "/tmp/s2proxy-unit-fastq-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::mutex mu;
  std::vector<std::function<void()>> held;
  {
    s2::store::MirrorOptions o;
    o.dir = dir;
    o.no_sync = true;
    o.writer.executor = [&](std::function<void()> fn) {
      std::lock_guard<std::mutex> lock(mu);
      held.push_back(std::move(fn));
    };
    auto opened = s2::store::Mirror::open(o);
    REQUIRE(opened.ok());
    auto& m = *opened.value();
    // Runs the completions that arrived so far (after waiting for the writer to be idle).
    const auto run_held = [&] {
      std::promise<void> idle;
      m.submit({}, [&](s2::store::WriteResult) { idle.set_value(); });
      auto f = idle.get_future();
      for (;;) {
        std::vector<std::function<void()>> now;
        {
          std::lock_guard<std::mutex> lock(mu);
          now.swap(held);
        }
        for (auto& fn : now) fn();
        if (f.wait_for(std::chrono::milliseconds(1)) == std::future_status::ready) break;
      }
    };
    s2::FastTokens fast(m, "token-key", 1000000000);
    const std::string jid = "alice@legacy.test";
    std::optional<s2::FastTokens::Issued> t1;
    fast.issue(jid, "ua-1", 1000, [&](auto t) { t1 = t; });
    for (int i = 0; i < 3 && !t1; ++i) run_held();  // the account's record, then the token
    REQUIRE(t1);
    const auto mac1 = s2::crypto::ht_initiator_hmac(t1->token);
    using V = s2::FastTokens::Verdict;

    // Table: (count used, verdict) in a row, nothing committed in between.
    const std::vector<std::pair<uint64_t, V>> uses = {
        {10, V::Ok}, {10, V::Replayed}, {9, V::Replayed}, {11, V::Ok}, {11, V::Replayed}};
    for (const auto& use : uses) {
      CAPTURE(use.first);
      CHECK(fast.verify(jid, "ua-1", mac1, use.first, 2000) == use.second);
    }
    run_held();
    CHECK(fast.verify(jid, "ua-1", mac1, 11, 2000) == V::Replayed);  // committed: as before
    CHECK(fast.verify(jid, "ua-1", mac1, 12, 2000) == V::Ok);
    run_held();

    // Rotation: once the new token is used, the old one is refused at once.
    std::optional<s2::FastTokens::Issued> t2;
    fast.issue(jid, "ua-1", 3000, [&](auto t) { t2 = t; });
    run_held();
    REQUIRE(t2);
    CHECK(fast.verify(jid, "ua-1", s2::crypto::ht_initiator_hmac(t2->token), 13, 3000) == V::Ok);
    CHECK(fast.verify(jid, "ua-1", mac1, 14, 3000) == V::Invalid);
    // Invalidation: refused before the deletion commits.
    fast.invalidate(jid, "ua-1");
    CHECK(fast.verify(jid, "ua-1", s2::crypto::ht_initiator_hmac(t2->token), 15, 4000) ==
          V::Invalid);
    run_held();
    CHECK(fast.verify(jid, "ua-1", s2::crypto::ht_initiator_hmac(t2->token), 16, 4000) ==
          V::Invalid);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("FAST: a different key derives different tokens (stolen DB yields nothing)") {
  TempMirror t;
  s2::FastTokens a(*t.m, "key-a", 1000000);
  auto tok = issue_sync(a, "alice@legacy.test", "ua", 0);
  REQUIRE(tok);
  s2::FastTokens b(*t.m, "key-b", 1000000);
  CHECK(b.verify("alice@legacy.test", "ua", s2::crypto::ht_initiator_hmac(tok->token), std::nullopt,
                 1) == s2::FastTokens::Verdict::Invalid);
}

TEST_CASE("vault: a new password revokes the FAST tokens issued under the old one") {
  TempMirror t;
  s2::CredentialVault vault(*t.m, kKey);
  s2::FastTokens fast(*t.m, "token-key", 1000000000);
  s2::UpstreamSecret up;
  up.secret = "pw1";
  REQUIRE(put_sync(vault, "alice@legacy.test", "pw1", up));
  auto tok = issue_sync(fast, "alice@legacy.test", "ua", 0);
  REQUIRE(tok);
  const auto mac = s2::crypto::ht_initiator_hmac(tok->token);
  using V = s2::FastTokens::Verdict;
  // The same password again (a normal PLAIN re-login) keeps the token.
  REQUIRE(put_sync(vault, "alice@legacy.test", "pw1", up));
  CHECK(fast.verify("alice@legacy.test", "ua", mac, std::nullopt, 1) == V::Ok);
  settle(*t.m);
  // A changed password revokes it.
  up.secret = "pw2";
  REQUIRE(put_sync(vault, "alice@legacy.test", "pw2", up));
  CHECK(fast.verify("alice@legacy.test", "ua", mac, std::nullopt, 2) == V::Invalid);
}
