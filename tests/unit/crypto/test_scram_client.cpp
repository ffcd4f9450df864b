// SCRAM client: RFC 5802 §5 (SHA-1) and RFC 7677 §3 (SHA-256) vectors, the
// stored-SaltedPassword path, salt-changed detection, malformed server input.
#include <doctest/doctest.h>

#include <string>

#include "common/crypto/encoding.h"
#include "common/crypto/scram.h"

using namespace s2::crypto;

namespace {

struct Vector {
  HashAlg hash;
  const char* cnonce;
  const char* client_first;
  const char* server_first;
  const char* client_final;
  const char* server_final;
  const char* salted_password_hex;  // computed with Python hashlib.pbkdf2_hmac
};

const Vector kRfc5802 = {
    HashAlg::Sha1,
    "fyko+d2lbbFgONRv9qkxdawL",
    "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    "1d96ee3a529b5a5f9e47c01f229a2cb8a6e15f7d",
};

const Vector kRfc7677 = {
    HashAlg::Sha256,
    "rOprNGfwEbeRWgbNEkqO",
    "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    "c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d",
};

std::string salt_of(const Vector& v) {
  std::string sf = v.server_first;
  size_t s = sf.find(",s=") + 3;
  return *base64_decode(sf.substr(s, sf.find(",i=") - s));
}

}  // namespace

TEST_CASE("SCRAM client: RFC test vectors, password path") {
  for (const Vector* v : {&kRfc5802, &kRfc7677}) {
    CAPTURE(v->server_first);
    ScramClient c(v->hash, "user", "pencil", v->cnonce);
    CHECK(c.client_first() == std::optional<std::string>(v->client_first));
    CHECK(c.handle_server_first(v->server_first) == std::optional<std::string>(v->client_final));
    CHECK(c.handle_server_final(v->server_final));
    CHECK(c.done());
    CHECK(c.error_code() == ScramClientError::None);
    // What the caller seals into the vault.
    CHECK(hex_encode(c.salted_password()) == v->salted_password_hex);
    CHECK(c.salt() == salt_of(*v));
    CHECK(c.iterations() == 4096);
  }
}

TEST_CASE("SCRAM client: stored SaltedPassword path gives the same messages") {
  for (const Vector* v : {&kRfc5802, &kRfc7677}) {
    CAPTURE(v->server_first);
    auto c = ScramClient::with_salted_password(v->hash, "user", *hex_decode(v->salted_password_hex),
                                               salt_of(*v), 4096, v->cnonce);
    CHECK(c.client_first() == std::optional<std::string>(v->client_first));
    CHECK(c.handle_server_first(v->server_first) == std::optional<std::string>(v->client_final));
    CHECK(c.handle_server_final(v->server_final));
    CHECK(c.done());
  }
}

TEST_CASE(
    "SCRAM client: two-step server-first (Hi() computed by the caller) gives the same messages") {
  for (const Vector* v : {&kRfc5802, &kRfc7677}) {
    CAPTURE(v->server_first);
    ScramClient c(v->hash, "user", "pencil", v->cnonce);
    REQUIRE(c.client_first());
    CHECK_FALSE(c.needs_salted_password());
    REQUIRE(c.accept_server_first(v->server_first));
    REQUIRE(c.needs_salted_password());
    CHECK(c.salt() == salt_of(*v));
    CHECK(c.iterations() == 4096);
    CHECK(c.password() == "pencil");
    const std::string salted = scram_salted_password(v->hash, c.password(), c.salt(), 4096);
    CHECK(c.client_final(salted) == std::optional<std::string>(v->client_final));
    CHECK(c.password().empty());  // wiped once used
    CHECK_FALSE(c.needs_salted_password());
    CHECK(c.handle_server_final(v->server_final));
    CHECK(hex_encode(c.salted_password()) == v->salted_password_hex);

    // Stored-secret path: nothing to derive.
    auto s = ScramClient::with_salted_password(v->hash, "user", *hex_decode(v->salted_password_hex),
                                               salt_of(*v), 4096, v->cnonce);
    REQUIRE(s.client_first());
    REQUIRE(s.accept_server_first(v->server_first));
    CHECK_FALSE(s.needs_salted_password());
    CHECK(s.client_final() == std::optional<std::string>(v->client_final));
    CHECK(s.handle_server_final(v->server_final));
  }
  // A SaltedPassword of the wrong length, or client_final() out of order, fails cleanly.
  ScramClient c(HashAlg::Sha1, "user", "pencil", kRfc5802.cnonce);
  CHECK_FALSE(c.client_final(std::string(20, 'x')).has_value());
  CHECK(c.error_code() == ScramClientError::OutOfOrder);
  ScramClient d(HashAlg::Sha1, "user", "pencil", kRfc5802.cnonce);
  REQUIRE(d.client_first());
  REQUIRE(d.accept_server_first(kRfc5802.server_first));
  CHECK_FALSE(d.client_final("short").has_value());
  CHECK(d.error_code() == ScramClientError::InvalidInput);
  CHECK(d.password().empty());
}

TEST_CASE("SCRAM client: salt or iteration change is reported") {
  const std::string sp = *hex_decode(kRfc5802.salted_password_hex);
  const std::string salt = salt_of(kRfc5802);
  struct Row {
    std::string stored_salt;
    uint32_t stored_iterations;
  };
  const Row rows[] = {{"other salt", 4096}, {salt, 4097}, {salt, 10000}};
  for (const auto& r : rows) {
    auto c = ScramClient::with_salted_password(HashAlg::Sha1, "user", sp, r.stored_salt,
                                               r.stored_iterations, kRfc5802.cnonce);
    REQUIRE(c.client_first());
    CHECK_FALSE(c.handle_server_first(kRfc5802.server_first).has_value());
    CHECK(c.salt_changed());
    CHECK(c.error_code() == ScramClientError::SaltChanged);
    CHECK(c.error() == "salt changed");
    CHECK_FALSE(c.handle_server_final(kRfc5802.server_final));  // sticky failure
  }
}

TEST_CASE("SCRAM client: wrong password fails at the server signature") {
  ScramClient c(HashAlg::Sha1, "user", "pencil2", kRfc5802.cnonce);
  REQUIRE(c.client_first());
  auto final_msg = c.handle_server_first(kRfc5802.server_first);
  REQUIRE(final_msg);
  CHECK(*final_msg != kRfc5802.client_final);
  CHECK_FALSE(c.handle_server_final(kRfc5802.server_final));
  CHECK(c.error_code() == ScramClientError::BadServerSignature);
}

TEST_CASE("SCRAM client: username escaping and random nonce") {
  ScramClient c(HashAlg::Sha256, "a,b=c", "pw");
  auto first = c.client_first();
  REQUIRE(first);
  CHECK(first->starts_with("n,,n=a=2Cb=3Dc,r="));
  CHECK(first->size() == std::string("n,,n=a=2Cb=3Dc,r=").size() + 24);
  CHECK_FALSE(c.client_first().has_value());  // only once
  CHECK(c.error_code() == ScramClientError::OutOfOrder);
}

TEST_CASE("SCRAM client: invalid constructor input") {
  CHECK_FALSE(ScramClient(HashAlg::Sha1, "", "pw").client_first().has_value());
  CHECK_FALSE(ScramClient(HashAlg::Sha1, std::string("a\0b", 3), "pw").client_first());
  CHECK_FALSE(ScramClient(HashAlg::Sha1, "u", "pw", "bad,nonce").client_first());
  auto c = ScramClient::with_salted_password(HashAlg::Sha256, "u", "short", "salt", 4096);
  CHECK_FALSE(c.client_first());
  CHECK(c.error_code() == ScramClientError::InvalidInput);
}

TEST_CASE("SCRAM client: malformed server-first") {
  const std::string n = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
  struct Row {
    std::string msg;
    ScramClientError want;
  };
  const Row rows[] = {
      {"", ScramClientError::Malformed},
      {"garbage", ScramClientError::Malformed},
      {n, ScramClientError::Malformed},
      {n + ",s=QSXCR+Q6sek8bf92", ScramClientError::Malformed},
      {"s=QSXCR+Q6sek8bf92," + n + ",i=4096", ScramClientError::Malformed},  // order
      {n + ",i=4096,s=QSXCR+Q6sek8bf92", ScramClientError::Malformed},
      {n + ",s=,i=4096", ScramClientError::Malformed},                 // empty salt
      {n + ",s=QSXCR+Q6sek8bf9,i=4096", ScramClientError::Malformed},  // bad base64
      {n + ",s=QSXCR+Q6sek8bf92,i=0", ScramClientError::Malformed},
      {n + ",s=QSXCR+Q6sek8bf92,i=-1", ScramClientError::Malformed},
      {n + ",s=QSXCR+Q6sek8bf92,i=04096", ScramClientError::Malformed},
      {n + ",s=QSXCR+Q6sek8bf92,i=", ScramClientError::Malformed},
      {n + ",s=QSXCR+Q6sek8bf92,i=4096x", ScramClientError::Malformed},
      {n + ",s=QSXCR+Q6sek8bf92,i=99999999999", ScramClientError::Malformed},
      {n + ",s=QSXCR+Q6sek8bf92,i=4096,", ScramClientError::Malformed},  // empty extension
      {n + ",s=QSXCR+Q6sek8bf92,i=4096,1=x", ScramClientError::Malformed},
      {n + " ,s=QSXCR+Q6sek8bf92,i=4096", ScramClientError::Malformed},  // space in nonce
      {"r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096",
       ScramClientError::NonceMismatch},  // nothing appended
      {"r=XXXX+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096", ScramClientError::NonceMismatch},
      {"r=fyko,s=QSXCR+Q6sek8bf92,i=4096", ScramClientError::NonceMismatch},
      {"m=ext," + n + ",s=QSXCR+Q6sek8bf92,i=4096", ScramClientError::ExtensionUnsupported},
      {"e=other-error", ScramClientError::ServerError},
      {n + ",s=QSXCR+Q6sek8bf92,i=1000001", ScramClientError::IterationsOutOfRange},
  };
  for (const auto& r : rows) {
    CAPTURE(r.msg);
    ScramClient c(HashAlg::Sha1, "user", "pencil", kRfc5802.cnonce);
    REQUIRE(c.client_first());
    CHECK_FALSE(c.handle_server_first(r.msg).has_value());
    CHECK(c.error_code() == r.want);
    CHECK_FALSE(c.error().empty());
  }
  // Extensions after i= are ignored; i=1 is accepted and exposed.
  ScramClient c(HashAlg::Sha1, "user", "pencil", kRfc5802.cnonce);
  REQUIRE(c.client_first());
  CHECK(c.handle_server_first(n + ",s=QSXCR+Q6sek8bf92,i=1,x=whatever").has_value());
  CHECK(c.iterations() == 1);
}

TEST_CASE("SCRAM client: malformed or failing server-final") {
  struct Row {
    std::string msg;
    ScramClientError want;
  };
  const Row rows[] = {
      {"", ScramClientError::Malformed},
      {"v=", ScramClientError::BadServerSignature},
      {"v=rmF9pqV8S7suAoZWja4dJRkFsKQ", ScramClientError::Malformed},  // bad base64
      {"v=rmF9pqV8S7suAoZWja4dJRkFsKA=", ScramClientError::BadServerSignature},
      {"v=AAAA", ScramClientError::BadServerSignature},
      {"x=rmF9pqV8S7suAoZWja4dJRkFsKQ=", ScramClientError::Malformed},
      {"e=invalid-proof", ScramClientError::ServerError},
  };
  for (const auto& r : rows) {
    CAPTURE(r.msg);
    ScramClient c(HashAlg::Sha1, "user", "pencil", kRfc5802.cnonce);
    REQUIRE(c.client_first());
    REQUIRE(c.handle_server_first(kRfc5802.server_first));
    CHECK_FALSE(c.handle_server_final(r.msg));
    CHECK(c.error_code() == r.want);
    CHECK_FALSE(c.done());
  }
  ScramClient c(HashAlg::Sha1, "user", "pencil", kRfc5802.cnonce);
  REQUIRE(c.client_first());
  REQUIRE(c.handle_server_first(kRfc5802.server_first));
  CHECK(c.handle_server_final(std::string(kRfc5802.server_final) + ",x=ext"));
  CHECK(c.server_error().empty());

  ScramClient e(HashAlg::Sha1, "user", "pencil", kRfc5802.cnonce);
  REQUIRE(e.client_first());
  REQUIRE(e.handle_server_first(kRfc5802.server_first));
  CHECK_FALSE(e.handle_server_final("e=invalid-proof"));
  CHECK(e.server_error() == "invalid-proof");
}

TEST_CASE("SCRAM client: calls out of order fail cleanly") {
  ScramClient c(HashAlg::Sha1, "user", "pencil", kRfc5802.cnonce);
  CHECK_FALSE(c.handle_server_first(kRfc5802.server_first).has_value());
  CHECK(c.error_code() == ScramClientError::OutOfOrder);
  ScramClient d(HashAlg::Sha1, "user", "pencil", kRfc5802.cnonce);
  REQUIRE(d.client_first());
  CHECK_FALSE(d.handle_server_final(kRfc5802.server_final));
  CHECK(d.error_code() == ScramClientError::OutOfOrder);
}

TEST_CASE("SCRAM saslname escaping") {
  struct Row {
    std::string raw, escaped;
  };
  const Row rows[] = {{"user", "user"}, {"a,b", "a=2Cb"}, {"a=b", "a=3Db"}, {",=", "=2C=3D"}};
  for (const auto& r : rows) {
    CHECK(scram_escape_saslname(r.raw) == r.escaped);
    CHECK(scram_unescape_saslname(r.escaped) == std::optional<std::string>(r.raw));
  }
  for (const char* bad : {"a,b", "a=", "a=2", "a=2c", "a=3d", "a=41", "="})
    CHECK_FALSE(scram_unescape_saslname(bad).has_value());
  CHECK(scram_mechanism_name(HashAlg::Sha1) == std::string("SCRAM-SHA-1"));
  CHECK(scram_hash_for_mechanism("SCRAM-SHA-256") == HashAlg::Sha256);
  CHECK_FALSE(scram_hash_for_mechanism("SCRAM-SHA-256-PLUS").has_value());
}
