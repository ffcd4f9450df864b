// HT-SHA-256-NONE (XEP-0484). Known values were computed outside this code
// with the OpenSSL command line, e.g.
//   printf 'Initiator' | openssl dgst -sha256 -hmac "$TOKEN"
//   printf 'Responder' | openssl dgst -sha256 -hmac "$TOKEN"
//   printf 'Initiatorcbdata' | openssl dgst -sha256 -hmac "$TOKEN"
//   printf '%s' "$TOKEN" | openssl dgst -sha256
// with TOKEN=WXx8PUm2Hm0iQh2vX8zU1M4qz4pXkPqyfBnF5mI3h1Q.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "common/crypto/encoding.h"
#include "common/crypto/ht.h"

using namespace s2::crypto;
using namespace std::string_literals;

namespace {
const std::string kToken = "WXx8PUm2Hm0iQh2vX8zU1M4qz4pXkPqyfBnF5mI3h1Q";
}  // namespace

TEST_CASE("HT HMACs match independently computed values") {
  CHECK(hex_encode(ht_initiator_hmac(kToken)) ==
        "426bbd2d5d0b9c086783c0f79c0502981367abbac17206530a4091c2814e7032");
  CHECK(hex_encode(ht_responder_hmac(kToken)) ==
        "3616138f5f95c3908ba6334d85110c25bc4d2a667341fa18d1c23b3020a7906d");
  CHECK(hex_encode(ht_initiator_hmac(kToken, "cbdata")) ==
        "e773e259b3caf2a5c57dbb64852a0ebe94399f02944cb14f9bd22c013398b5cc");
  CHECK(hex_encode(ht_token_hash(kToken)) ==
        "392ebc6e14516cd7ca2e191e81ab11f0ac26bfcf9210a4711656d0ff1fcc8f8f");
  CHECK(ht_verify_initiator(kToken, ht_initiator_hmac(kToken)));
  CHECK_FALSE(ht_verify_initiator(kToken, ht_responder_hmac(kToken)));
  CHECK_FALSE(ht_verify_initiator(kToken + "x", ht_initiator_hmac(kToken)));
  CHECK_FALSE(ht_verify_initiator(kToken, ht_initiator_hmac(kToken).substr(0, 31)));
}

TEST_CASE("HT tokens are random, printable, 256 bits") {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    std::string t = ht_generate_token();
    CHECK(t.size() == 43);
    CHECK(base64url_decode(t)->size() == 32);
    for (char c : t)
      CHECK(((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '_'));
    seen.insert(t);
  }
  CHECK(seen.size() == 50);
}

TEST_CASE("HT initial response: build and parse") {
  std::string mac = ht_initiator_hmac(kToken);
  std::string msg = build_ht_initial_response("alice", mac);
  CHECK(msg == "alice\0"s + mac);
  auto r = parse_ht_initial_response(msg);
  REQUIRE(r);
  CHECK(r->authcid == "alice");
  CHECK(r->hmac == mac);

  // An HMAC containing NUL bytes splits at the first NUL only.
  std::string nul_mac(32, '\0');
  r = parse_ht_initial_response("bob\0"s + nul_mac);
  REQUIRE(r);
  CHECK(r->authcid == "bob");
  CHECK(r->hmac == nul_mac);

  const std::string bad[] = {
      "",
      "alice",
      "\0"s + mac,                     // empty authcid
      "alice\0"s,                      // no HMAC
      "alice\0"s + mac.substr(0, 31),  // short
      "alice\0"s + mac + "x",          // long
      "al\xffice\0"s + mac,            // not UTF-8
      std::string(2048, 'a') + "\0"s + mac,
  };
  for (const auto& b : bad) {
    CAPTURE(b);
    SaslError err;
    CHECK_FALSE(parse_ht_initial_response(b, &err).has_value());
    CHECK(err.condition == "malformed-request");
  }
}
