// SCRAM server: RFC 5802 §5 / RFC 7677 §3 vectors with the RFC's server
// nonce injected, gs2 header variants, malformed client messages (tables),
// wrong proofs, unknown users (fake verifier), client<->server round trips.
#include <doctest/doctest.h>

#include <string>

#include "common/crypto/encoding.h"
#include "common/crypto/hash.h"
#include "common/crypto/scram.h"

using namespace s2::crypto;

namespace {

struct Vector {
  HashAlg hash;
  const char* snonce;
  const char* salt_b64;
  const char* client_first;
  const char* server_first;
  const char* client_final;
  const char* server_final;
};

const Vector kVectors[] = {
    {HashAlg::Sha1, "3rfcNHYJY1ZVvWVs7j", "QSXCR+Q6sek8bf92",
     "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
     "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
     "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
     "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="},
    {HashAlg::Sha256, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
     "W22ZaJ0SNY7soEsUEjb6gQ==", "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
     "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
     "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
     "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
     "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
};

const ScramVerifier& sha1_verifier() {
  static const ScramVerifier v =
      make_scram_verifier(HashAlg::Sha1, "pencil", *base64_decode("QSXCR+Q6sek8bf92"), 4096);
  return v;
}

// Client proof computed from the RFC 5802 §3 formulas with the hash.h
// primitives (independent of ScramClient, which only ever sends "n,,").
std::string client_final_for(HashAlg h, std::string_view password, std::string_view gs2,
                             std::string_view client_first_bare, std::string_view server_first,
                             std::string_view salt, uint32_t iterations) {
  std::string nonce(server_first.substr(2, server_first.find(',') - 2));
  std::string without_proof = "c=" + base64_encode(gs2) + ",r=" + nonce;
  std::string auth =
      std::string(client_first_bare) + "," + std::string(server_first) + "," + without_proof;
  std::string sp = pbkdf2(h, password, salt, iterations);
  std::string ck = hmac(h, sp, "Client Key");
  std::string sig = hmac(h, digest(h, ck), auth);
  std::string proof(ck.size(), '\0');
  for (size_t i = 0; i < ck.size(); ++i) proof[i] = static_cast<char>(ck[i] ^ sig[i]);
  return without_proof + ",p=" + base64_encode(proof);
}

}  // namespace

TEST_CASE("SCRAM server: RFC test vectors") {
  for (const auto& v : kVectors) {
    CAPTURE(v.client_first);
    ScramVerifier verifier =
        make_scram_verifier(v.hash, "pencil", *base64_decode(v.salt_b64), 4096);
    ScramServer s(v.hash, v.snonce);
    CHECK_FALSE(s.handle_client_first(v.client_first).has_value());
    CHECK(s.username() == "user");
    CHECK(s.authzid().empty());
    CHECK(s.server_first(verifier) == std::optional<std::string>(v.server_first));
    auto err = s.handle_client_final(v.client_final);
    CHECK_FALSE(err.has_value());
    CHECK(s.authenticated());
    CHECK(s.server_final() == v.server_final);
  }
}

TEST_CASE("SCRAM verifier: derived keys") {
  const ScramVerifier& v = sha1_verifier();
  CHECK(v.hash == HashAlg::Sha1);
  CHECK(v.iterations == 4096);
  CHECK(v.stored_key.size() == 20);
  CHECK(v.server_key.size() == 20);
  // Same keys from the salted password.
  ScramVerifier w = scram_verifier_from_salted_password(
      HashAlg::Sha1, *hex_decode("1d96ee3a529b5a5f9e47c01f229a2cb8a6e15f7d"), v.salt, 4096);
  CHECK(w.stored_key == v.stored_key);
  CHECK(w.server_key == v.server_key);
  ScramVerifier r1 = make_scram_verifier(HashAlg::Sha256, "pw", 4096);
  ScramVerifier r2 = make_scram_verifier(HashAlg::Sha256, "pw", 4096);
  CHECK(r1.salt.size() == 16);
  CHECK(r1.salt != r2.salt);
  CHECK(r1.stored_key != r2.stored_key);
}

TEST_CASE("SCRAM server: gs2 header variants (y,, and authzid)") {
  const std::string salt = *base64_decode("QSXCR+Q6sek8bf92");
  struct Row {
    std::string gs2;
    std::string want_authzid;
  };
  const Row rows[] = {
      {"n,,", ""},
      {"y,,", ""},
      {"n,a=alice@legacy.test,", "alice@legacy.test"},
      {"y,a=a=2Cb=3Dc,", "a,b=c"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.gs2);
    const std::string bare = "n=user,r=cnonce123";
    ScramServer s(HashAlg::Sha1, "snonce456");
    REQUIRE_FALSE(s.handle_client_first(r.gs2 + bare).has_value());
    CHECK(s.authzid() == r.want_authzid);
    auto sf = s.server_first(sha1_verifier());
    REQUIRE(sf);
    std::string cf = client_final_for(HashAlg::Sha1, "pencil", r.gs2, bare, *sf, salt, 4096);
    CHECK_FALSE(s.handle_client_final(cf).has_value());
    CHECK(s.authenticated());
    CHECK(s.server_final().starts_with("v="));
  }
  // The echo must match the header actually sent: "y,," answered with biws.
  ScramServer s(HashAlg::Sha1, "snonce456");
  REQUIRE_FALSE(s.handle_client_first("y,,n=user,r=cnonce123"));
  auto sf = s.server_first(sha1_verifier());
  std::string cf =
      client_final_for(HashAlg::Sha1, "pencil", "n,,", "n=user,r=cnonce123", *sf, salt, 4096);
  auto err = s.handle_client_final(cf);
  REQUIRE(err);
  CHECK(err->condition == "not-authorized");
}

TEST_CASE("SCRAM server: malformed client-first") {
  const std::string rows[] = {
      "",
      "n",
      "n,",
      "n,,",
      "x,,n=user,r=abc",
      "p=tls-exporter,,n=user,r=abc",  // -PLUS is never offered
      "p=tls-unique,,n=user,r=abc",
      "n,b=x,n=user,r=abc",  // authzid without a=
      "n,a=,n=user,r=abc",   // empty authzid
      "n,a=x=41,n=user,r=abc",
      "n,,r=abc,n=user",  // order
      "n,,n=user",
      "n,,n=,r=abc",       // empty user
      "n,,n=user,r=",      // empty nonce
      "n,,n=us=er,r=abc",  // bad escape
      "n,,n=u\xff,r=abc",  // not UTF-8
      "n,,m=ext,n=user,r=abc",
      "n,,n=user,r=a c",
      "n,,n=user,r=abc,",
      "n,,n=user,r=abc,5=x",
      std::string("n,,n=us\0er,r=abc", 16),
      "n,,n=user,r=" + std::string(kScramMaxNonce + 1, 'x'),
      "n,,n=" + std::string(kScramMaxUsername + 1, 'u') + ",r=abc",
      "n,,n=user,r=abc,x=" + std::string(kScramMaxMessage, 'x'),
  };
  for (const auto& r : rows) {
    CAPTURE(r);
    ScramServer s(HashAlg::Sha256);
    auto err = s.handle_client_first(r);
    REQUIRE(err.has_value());
    CHECK(err->condition == "malformed-request");
    CHECK_FALSE(s.server_first(make_scram_verifier(HashAlg::Sha256, "x", "salt", 1)).has_value());
  }
  // Extensions after the nonce are ignored.
  ScramServer s(HashAlg::Sha1);
  CHECK_FALSE(s.handle_client_first("n,,n=user,r=abc,x=1,y=2").has_value());
}

TEST_CASE("SCRAM server: malformed or wrong client-final") {
  const Vector& v = kVectors[0];
  const std::string r = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
  const std::string p = "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
  struct Row {
    std::string msg;
    const char* condition;
  };
  const Row rows[] = {
      {"", "malformed-request"},
      {"c=biws", "malformed-request"},
      {"c=biws," + r, "malformed-request"},
      {r + ",c=biws," + p, "malformed-request"},
      {"c=biws," + p + "," + r, "malformed-request"},
      {"c=biw," + r + "," + p, "malformed-request"},  // bad base64
      {"c=biws," + r + ",p=", "malformed-request"},
      {"c=biws," + r + ",p=v0X8v3Bz2T0CJGbJQyF0X+HI4T", "malformed-request"},
      {"c=biws," + r + ",p=AAAA", "malformed-request"},         // wrong length
      {"c=biws," + r + "," + p + ",x=1", "malformed-request"},  // proof must be last
      {"c=biws,," + r + "," + p, "malformed-request"},
      {"c=eSws," + r + "," + p, "not-authorized"},  // cb echo does not match n,,
      {"c=," + r + "," + p, "not-authorized"},
      {"c=biws,r=fyko+d2lbbFgONRv9qkxdawL," + p, "not-authorized"},  // nonce
      {"c=biws," + r + "x," + p, "not-authorized"},
      {"c=biws," + r + ",p=v0X8v3Bz2T0CJGbJQyF0X+HI4Tc=", "not-authorized"},  // proof
      {"c=biws," + r + ",p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "not-authorized"},
      {"c=biws," + r + ",x=1," + p, "not-authorized"},  // extension changes AuthMessage
  };
  for (const auto& row : rows) {
    CAPTURE(row.msg);
    ScramServer s(HashAlg::Sha1, v.snonce);
    REQUIRE_FALSE(s.handle_client_first(v.client_first));
    REQUIRE(s.server_first(sha1_verifier()));
    auto err = s.handle_client_final(row.msg);
    REQUIRE(err.has_value());
    CHECK(err->condition == std::string(row.condition));
    CHECK_FALSE(s.authenticated());
    CHECK(s.server_final().empty());
    // Sticky: the correct message no longer helps.
    CHECK(s.handle_client_final(v.client_final).has_value());
  }
}

TEST_CASE("SCRAM server: unknown user fails exactly like a wrong password") {
  const Vector& v = kVectors[0];
  ScramServer wrong(HashAlg::Sha1, v.snonce);
  REQUIRE_FALSE(wrong.handle_client_first(v.client_first));
  REQUIRE(wrong.server_first(make_scram_verifier(HashAlg::Sha1, "other", "salt", 4096)));
  auto e1 = wrong.handle_client_final(v.client_final);

  ScramServer unknown(HashAlg::Sha1, v.snonce);
  REQUIRE_FALSE(unknown.handle_client_first(v.client_first));
  ScramVerifier fake = make_fake_scram_verifier(HashAlg::Sha1, "user", "secret", 4096);
  auto sf = unknown.server_first(fake);
  REQUIRE(sf);
  auto e2 = unknown.handle_client_final(v.client_final);
  REQUIRE(e1);
  REQUIRE(e2);
  CHECK(e1->condition == "not-authorized");
  CHECK(e1->condition == e2->condition);
  CHECK(e1->text == e2->text);

  // The fake salt is stable per (secret, mechanism, user) and looks real.
  CHECK(fake.salt.size() == 16);
  CHECK(make_fake_scram_verifier(HashAlg::Sha1, "user", "secret", 4096).salt == fake.salt);
  CHECK(make_fake_scram_verifier(HashAlg::Sha1, "user2", "secret", 4096).salt != fake.salt);
  CHECK(make_fake_scram_verifier(HashAlg::Sha256, "user", "secret", 4096).salt != fake.salt);
  CHECK(make_fake_scram_verifier(HashAlg::Sha1, "user", "secret2", 4096).salt != fake.salt);
}

TEST_CASE("SCRAM server: caller errors") {
  ScramServer s(HashAlg::Sha256);
  // server_first before client-first.
  CHECK_FALSE(s.server_first(make_scram_verifier(HashAlg::Sha256, "pw", "salt", 1)));
  ScramServer t(HashAlg::Sha256);
  REQUIRE_FALSE(t.handle_client_first("n,,n=user,r=abc"));
  CHECK_FALSE(t.server_first(sha1_verifier()));  // verifier of another hash
  CHECK(t.handle_client_final("c=biws,r=abc,p=AAAA").has_value());
  ScramServer u(HashAlg::Sha1);
  CHECK(u.handle_client_final("c=biws,r=abc,p=AAAA").has_value());  // out of order
  ScramServer w(HashAlg::Sha1);
  REQUIRE_FALSE(w.handle_client_first("n,,n=user,r=abc"));
  CHECK(w.handle_client_first("n,,n=user,r=abc").has_value());  // twice
}

TEST_CASE("SCRAM client and server agree (random nonces, both hashes, both client paths)") {
  for (HashAlg h : {HashAlg::Sha1, HashAlg::Sha256}) {
    ScramVerifier verifier = make_scram_verifier(h, "correct horse", 4096);
    for (bool stored : {false, true}) {
      CAPTURE(stored);
      std::string sp = scram_salted_password(h, "correct horse", verifier.salt, 4096);
      ScramClient c = stored
                          ? ScramClient::with_salted_password(h, "al,ice=", sp, verifier.salt, 4096)
                          : ScramClient(h, "al,ice=", "correct horse");
      ScramServer s(h);
      auto cf = c.client_first();
      REQUIRE(cf);
      REQUIRE_FALSE(s.handle_client_first(*cf));
      CHECK(s.username() == "al,ice=");
      auto sf = s.server_first(verifier);
      REQUIRE(sf);
      auto cfinal = c.handle_server_first(*sf);
      REQUIRE(cfinal);
      REQUIRE_FALSE(s.handle_client_final(*cfinal));
      CHECK(c.handle_server_final(s.server_final()));
      CHECK(c.salted_password() == sp);
    }
  }
}
