// Codec tests: base64, XEP-0082 timestamps, xs:unsignedInt / xs:boolean.
#include <doctest/doctest.h>

#include <string>

#include "common/session2/codec.h"

namespace s2::session2 {

TEST_CASE("base64 round trips (RFC 4648 §10 vectors)") {
  struct Row {
    std::string raw;
    const char* b64;
  };
  const Row rows[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
      {std::string("\0\xff\xfe", 3), "AP/+"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.b64);
    CHECK(base64_encode(r.raw) == r.b64);
    CHECK(base64_decode(r.b64) == r.raw);
  }
}

TEST_CASE("base64 decoding is strict but skips XML whitespace") {
  struct Row {
    const char* in;
    std::optional<std::string> want;
  };
  const Row rows[] = {
      {"=", std::string()},
      {" = ", std::string()},
      {"\n  Zm9v\n  YmFy\n", std::string("foobar")},
      {"Zm9\tv", std::string("foo")},
      {"Zm9", std::nullopt},
      {"Zg=", std::nullopt},
      {"Zg", std::nullopt},
      {"Z===", std::nullopt},
      {"====", std::nullopt},
      {"Zg==Zg==", std::nullopt},
      {"Zm=v", std::nullopt},
      {"Zm9v!", std::nullopt},
      {"Zm9-", std::nullopt},  // base64url alphabet is not base64
      {"Zm9_", std::nullopt},
      {"Zm9v\xc3\xa9", std::nullopt},
      {"==", std::nullopt},
  };
  for (const auto& r : rows) {
    CAPTURE(r.in);
    CHECK(base64_decode(r.in) == r.want);
  }
}

TEST_CASE("XEP-0082 DateTime") {
  struct Row {
    int64_t t;
    const char* want;
  };
  const Row rows[] = {
      {0, "1970-01-01T00:00:00Z"},
      {1796688000, "2026-12-08T00:00:00Z"},
      {951827696, "2000-02-29T12:34:56Z"},
      {2147483648, "2038-01-19T03:14:08Z"},
      {-1, "1969-12-31T23:59:59Z"},
      {-86400, "1969-12-31T00:00:00Z"},
      {253402300799, "9999-12-31T23:59:59Z"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.t);
    CHECK(xep0082_datetime(r.t) == r.want);
  }
}

TEST_CASE("xs:unsignedInt and xs:boolean") {
  struct Row {
    const char* in;
    std::optional<uint32_t> want;
  };
  const Row rows[] = {
      {"0", 0u},
      {"42", 42u},
      {"007", 7u},
      {"4294967295", 4294967295u},
      {"4294967296", std::nullopt},
      {"99999999999999999999", std::nullopt},
      {"", std::nullopt},
      {"-1", std::nullopt},
      {"+1", std::nullopt},
      {" 1", std::nullopt},
      {"1 ", std::nullopt},
      {"0x10", std::nullopt},
      {"1.0", std::nullopt},
  };
  for (const auto& r : rows) {
    CAPTURE(r.in);
    CHECK(parse_uint32(r.in) == r.want);
  }
  CHECK(parse_uint64("18446744073709551615") == 18446744073709551615ull);
  CHECK_FALSE(parse_uint64("18446744073709551616"));
  CHECK(parse_xs_boolean("true") == true);
  CHECK(parse_xs_boolean("1") == true);
  CHECK(parse_xs_boolean("false") == false);
  CHECK(parse_xs_boolean("0") == false);
  CHECK_FALSE(parse_xs_boolean("TRUE"));
  CHECK_FALSE(parse_xs_boolean("yes"));
  CHECK_FALSE(parse_xs_boolean(""));
}

}  // namespace s2::session2
