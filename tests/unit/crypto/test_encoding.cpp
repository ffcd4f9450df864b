// Base64 (RFC 4648 §10 vectors + strictness), hex, randomness, wiping.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "common/crypto/encoding.h"

using namespace s2::crypto;

TEST_CASE("base64 RFC 4648 §10 vectors round-trip") {
  struct Row {
    std::string raw, std64, url;
  };
  const Row rows[] = {
      {"", "", ""},
      {"f", "Zg==", "Zg"},
      {"fo", "Zm8=", "Zm8"},
      {"foo", "Zm9v", "Zm9v"},
      {"foob", "Zm9vYg==", "Zm9vYg"},
      {"fooba", "Zm9vYmE=", "Zm9vYmE"},
      {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
      {std::string("\x00\x00\x00", 3), "AAAA", "AAAA"},
      {"\xfb\xff\xbf", "+/+/", "-_-_"},
      {std::string("\x00\xff", 2), "AP8=", "AP8"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.std64);
    CHECK(base64_encode(r.raw) == r.std64);
    CHECK(base64_decode(r.std64) == std::optional<std::string>(r.raw));
    CHECK(base64url_encode(r.raw) == r.url);
    CHECK(base64url_decode(r.url) == std::optional<std::string>(r.raw));
  }
}

TEST_CASE("base64 decoding is strict") {
  const std::string bad[] = {
      "=",  // only meaningful in SASL framing (sasl_base64_decode)
      "==",
      "===",
      "====",
      "Zg",     // missing padding
      "Zg=",    // short padding
      "Zg===",  // too much padding
      "Z===",
      "Zh==",   // non-zero unused bits (canonical form is Zg==)
      "Zm9=",   // non-zero unused bits (canonical form is Zm8=)
      "Zm9vY",  // length % 4 == 1
      "Zm 9v",  // whitespace
      "Zm9v\n",
      " Zm9v",
      "Zm9v-_==",  // URL alphabet in standard decoding
      "Zg==Zg==",  // padding in the middle
      "Z=g=",
      "Zm9v!A==",
      std::string("Zm9\0", 4),
      "\xc3\xa9\xc3\xa9",
  };
  for (const auto& b : bad) {
    CAPTURE(b);
    CHECK_FALSE(base64_decode(b).has_value());
  }
  const std::string bad_url[] = {"Zg==", "Zh", "+/+/", "Z", "Zm9vY"};
  for (const auto& b : bad_url) {
    CAPTURE(b);
    CHECK_FALSE(base64url_decode(b).has_value());
  }
}

TEST_CASE("SASL base64 framing: '=' is the empty payload") {
  CHECK(sasl_base64_decode("=") == std::optional<std::string>(""));
  CHECK(sasl_base64_decode("") == std::optional<std::string>(""));
  CHECK(sasl_base64_decode("AGFsaWNlAGFsaWNlcHc=") ==
        std::optional<std::string>(std::string("\0alice\0alicepw", 14)));
  CHECK_FALSE(sasl_base64_decode("==").has_value());
  CHECK_FALSE(sasl_base64_decode("=A").has_value());
  CHECK(sasl_base64_encode("") == "=");
  CHECK(sasl_base64_encode("f") == "Zg==");
}

TEST_CASE("base64 round-trips every length and byte") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n = 0; n <= all.size(); ++n) {
    std::string s = all.substr(all.size() - n);
    REQUIRE(base64_decode(base64_encode(s)) == std::optional<std::string>(s));
    REQUIRE(base64url_decode(base64url_encode(s)) == std::optional<std::string>(s));
  }
}

TEST_CASE("hex") {
  CHECK(hex_encode(std::string("\x00\x01\xab\xff", 4)) == "0001abff");
  CHECK(hex_decode("0001ABff") == std::optional<std::string>(std::string("\x00\x01\xab\xff", 4)));
  CHECK(hex_decode("") == std::optional<std::string>(""));
  CHECK_FALSE(hex_decode("abc").has_value());
  CHECK_FALSE(hex_decode("zz").has_value());
  CHECK_FALSE(hex_decode("0x").has_value());
}

TEST_CASE("constant-time compare") {
  CHECK(constant_time_equal("", ""));
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "ab"));
  CHECK_FALSE(constant_time_equal("", "a"));
  CHECK(constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
  CHECK_FALSE(constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST_CASE("random bytes and nonces") {
  CHECK(random_bytes(0).empty());
  CHECK(random_bytes(32).size() == 32);
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) seen.insert(random_bytes(16));
  CHECK(seen.size() == 100);
  std::string n = random_nonce();
  CHECK(n.size() == 24);  // 18 bytes -> 24 base64 chars, no padding
  CHECK(n.find(',') == std::string::npos);
  CHECK(n.find('=') == std::string::npos);
}

TEST_CASE("secure_wipe and SecretString") {
  std::string s = "hunter2 hunter2 hunter2 hunter2";  // heap, not SSO
  const char* buf = s.data();
  size_t cap = s.capacity();
  secure_wipe(s);
  CHECK(s.empty());
  CHECK(s.data() == buf);  // same buffer, so the bytes were overwritten in place
  CHECK(s.capacity() == cap);
  for (size_t i = 0; i < cap; ++i) CHECK(buf[i] == '\0');

  SecretString a(std::string("secret"));
  SecretString b(std::move(a));
  CHECK(b.str() == "secret");
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is wiped, by contract
  SecretString c;
  c = std::move(b);
  CHECK(c.view() == "secret");
  CHECK(b.empty());  // NOLINT(bugprone-use-after-move)
  c.wipe();
  CHECK(c.empty());
}
