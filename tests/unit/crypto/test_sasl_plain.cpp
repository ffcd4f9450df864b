// SASL PLAIN (RFC 4616 §2) parse table.
#include <doctest/doctest.h>

#include <string>

#include "common/crypto/sasl_plain.h"

using namespace s2::crypto;

using namespace std::string_literals;

TEST_CASE("PLAIN: valid messages") {
  struct Row {
    std::string msg, authzid, authcid, password;
  };
  const Row rows[] = {
      {"\0alice\0alicepw"s, "", "alice", "alicepw"},
      {"alice@legacy.test\0alice\0pw"s, "alice@legacy.test", "alice", "pw"},
      {"\0a\0p"s, "", "a", "p"},
      {"\0alice\0pass word with spaces"s, "", "alice", "pass word with spaces"},
      {"\0j\xc3\xbcrgen\0p\xc3\xa4ss"s, "", "j\xc3\xbcrgen", "p\xc3\xa4ss"},
      {"\0"s + std::string(kPlainMaxAuthcid, 'u') + '\0' + std::string(kPlainMaxPassword, 'p'), "",
       std::string(kPlainMaxAuthcid, 'u'), std::string(kPlainMaxPassword, 'p')},
      {std::string(kPlainMaxAuthzid, 'z') + "\0u\0p"s, std::string(kPlainMaxAuthzid, 'z'), "u",
       "p"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.msg);
    SaslError err;
    auto c = parse_sasl_plain(r.msg, &err);
    REQUIRE(c.has_value());
    CHECK(c->authzid == r.authzid);
    CHECK(c->authcid == r.authcid);
    CHECK(c->password.str() == r.password);
    CHECK(build_sasl_plain(r.authzid, r.authcid, r.password) == r.msg);
  }
}

TEST_CASE("PLAIN: invalid messages are malformed-request") {
  const std::string rows[] = {
      "",
      "alice",
      "\0alice"s,        // one NUL
      "\0alice\0pw\0"s,  // three NULs
      "\0alice\0p\0w"s,
      "\0\0pw"s,     // empty authcid
      "\0alice\0"s,  // empty password
      "\0\0"s,
      "a\0\0"s,
      "\0al\xffice\0pw"s,           // invalid UTF-8 authcid
      "\0alice\0p\xc0\xafw"s,       // overlong in password
      "z\xed\xa0\x80\0alice\0pw"s,  // surrogate in authzid
      "\0"s + std::string(kPlainMaxAuthcid + 1, 'u') + "\0p"s,
      "\0u\0"s + std::string(kPlainMaxPassword + 1, 'p'),
      std::string(kPlainMaxAuthzid + 1, 'z') + "\0u\0p"s,
  };
  for (const auto& r : rows) {
    CAPTURE(r);
    SaslError err;
    CHECK_FALSE(parse_sasl_plain(r, &err).has_value());
    CHECK(err.condition == "malformed-request");
    CHECK(err.text.find("pw") == std::string::npos);  // no credential in the text
  }
  CHECK_FALSE(parse_sasl_plain("x").has_value());  // error pointer optional
}
