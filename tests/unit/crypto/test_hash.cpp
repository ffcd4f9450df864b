// Digest / HMAC / PBKDF2 known answers. Sources: FIPS 180 examples ("abc"),
// RFC 2202 §3 and RFC 4231 §4.3 (HMAC "Jefe"), RFC 6070 (PBKDF2-HMAC-SHA1),
// RFC 7914 §11 (PBKDF2-HMAC-SHA256, "passwd"/"salt"/1). The c=4096 SHA-256
// value was computed with Python's hashlib.pbkdf2_hmac('sha256', b'password',
// b'salt', 4096).
#include <doctest/doctest.h>

#include "common/crypto/encoding.h"
#include "common/crypto/hash.h"

using namespace s2::crypto;

TEST_CASE("digests") {
  CHECK(hex_encode(sha1("")) == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(hex_encode(sha1("abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(hex_encode(sha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hash_size(HashAlg::Sha1) == 20);
  CHECK(hash_size(HashAlg::Sha256) == 32);
}

TEST_CASE("hmac") {
  CHECK(hex_encode(hmac(HashAlg::Sha1, "Jefe", "what do ya want for nothing?")) ==
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  CHECK(hex_encode(hmac(HashAlg::Sha256, "Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(hmac(HashAlg::Sha256, "k", "").size() == 32);
}

TEST_CASE("pbkdf2") {
  CHECK(hex_encode(pbkdf2(HashAlg::Sha1, "password", "salt", 1)) ==
        "0c60c80f961f0e71f3a9b524af6012062fe037a6");
  CHECK(hex_encode(pbkdf2(HashAlg::Sha1, "password", "salt", 4096)) ==
        "4b007901b765489abead49d926f721d065a429c1");
  CHECK(hex_encode(pbkdf2(HashAlg::Sha256, "passwd", "salt", 1, 64)) ==
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783");
  CHECK(hex_encode(pbkdf2(HashAlg::Sha256, "password", "salt", 4096)) ==
        "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a");
}
