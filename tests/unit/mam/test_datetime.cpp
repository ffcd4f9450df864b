// XEP-0082 DateTime tests: parsing (offsets, fractions, leap years, range ends),
// rejects, formatting and round trips, and the lexical helpers.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "common/mam/datetime.h"

namespace s2::mam {

TEST_CASE("parse_datetime: valid") {
  struct Row {
    const char* in;
    int64_t want;
  };
  const Row rows[] = {
      {"1970-01-01T00:00:00Z", 0},
      {"1970-01-01T00:00:00.000Z", 0},
      {"1970-01-01T00:00:00", 0},  // no TZD: UTC
      {"1970-01-01T00:00:00+00:00", 0},
      {"1970-01-01T00:00:00-00:00", 0},
      {"1970-01-01T01:00:00+01:00", 0},
      {"1969-12-31T23:59:59.999Z", -1},
      {"1969-12-31T23:00:00-01:00", 0},
      {"1969-07-20T20:17:40Z", -14182940000},
      {"2000-02-29T00:00:00Z", 951782400000},
      {"2024-02-29T12:00:00Z", 1709208000000},
      {"1600-02-29T00:00:00Z", -11670998400000},
      {"2038-01-19T03:14:07Z", 2147483647000},
      {"2038-01-19T03:14:08Z", 2147483648000},
      {"2106-02-07T06:28:16Z", 4294967296000},
      {"2026-11-25T10:00:00.123Z", 1795600800123},
      {"2026-11-25T11:00:00.123+01:00", 1795600800123},
      {"2026-11-25T05:30:00.123-04:30", 1795600800123},
      {"2026-11-25T23:59:00.123+13:59", 1795600800123},
      {"2026-11-25T10:00:00.1Z", 1795600800100},
      {"2026-11-25T10:00:00.12Z", 1795600800120},
      {"2026-11-25T10:00:00.123456789Z", 1795600800123},
      {"2026-11-25T10:00:00.1239999999999999999999Z", 1795600800123},  // truncated
      {"2026-11-25T10:00:00.999+00:00", 1795600800999},
      {"2026-12-31T23:30:00-01:00", 1798763400000},  // crosses into 2027
      {"0001-01-01T00:00:00Z", -62135596800000},
      {"0000-01-01T00:00:00Z", kMinDatetimeMs},
      {"0000-01-01T01:00:00+01:00", kMinDatetimeMs},
      {"9999-12-31T23:59:59.999Z", kMaxDatetimeMs},
      {"9999-12-31T22:59:59.999-01:00", kMaxDatetimeMs},
  };
  for (const auto& r : rows) {
    INFO(r.in);
    auto got = parse_datetime(r.in);
    REQUIRE(got.has_value());
    CHECK(*got == r.want);
  }
}

TEST_CASE("parse_datetime: rejects") {
  const char* rows[] = {
      "",
      "Z",
      "2026",
      "2026-01-01",
      "2026-01-01T",
      "2026-01-01T00:00Z",         // no seconds
      "2026-01-01T00:00:0Z",       // short seconds
      "2026-1-01T00:00:00Z",       // short month
      "2026-01-1T00:00:00Z",       // short day
      "26-01-01T00:00:00Z",        // short year
      "+2026-01-01T00:00:00Z",     // signed year
      "12026-01-01T00:00:00Z",     // five-digit year
      "2026-13-01T00:00:00Z",      // month 13
      "2026-00-01T00:00:00Z",      // month 0
      "2026-01-32T00:00:00Z",      // day 32
      "2026-01-00T00:00:00Z",      // day 0
      "2026-04-31T00:00:00Z",      // April has 30
      "2026-02-29T00:00:00Z",      // not a leap year
      "1900-02-29T00:00:00Z",      // century, not leap
      "2100-02-29T00:00:00Z",      // century, not leap
      "2000-02-30T00:00:00Z",      // leap February has 29
      "2026-01-01T24:00:00Z",      // hour 24
      "2026-01-01T23:60:00Z",      // minute 60
      "2026-12-31T23:59:60Z",      // leap second
      "2026-01-01 00:00:00Z",      // missing T
      "2026-01-01t00:00:00Z",      // lowercase t
      "2026/01/01T00:00:00Z",      // wrong separators
      "2026-01-01T00-00-00Z",      // wrong separators
      "2026-01-01T00:00:00z",      // lowercase z
      "2026-01-01T00:00:00.Z",     // empty fraction
      "2026-01-01T00:00:00.",      // empty fraction, no TZD
      "2026-01-01T00:00:00,5Z",    // comma fraction
      "2026-01-01T00:00:00+0100",  // offset without colon
      "2026-01-01T00:00:00+01",    // short offset
      "2026-01-01T00:00:00+1:00",  // short offset hours
      "2026-01-01T00:00:00+01:0",  // short offset minutes
      "2026-01-01T00:00:00+24:00",
      "2026-01-01T00:00:00+01:60",
      "2026-01-01T00:00:00+01:00Z",
      "2026-01-01T00:00:00ZZ",
      "2026-01-01T00:00:00Zjunk",
      "2026-01-01T00:00:00Z ",  // trailing space
      " 2026-01-01T00:00:00Z",  // leading space
      "2026-01-01T00:00:00 Z",
      "2026-0a-01T00:00:00Z",
      "2026-01-01T00:00:00.12a3Z",
      "0000-01-01T00:00:00+00:01",  // before year 0000 in UTC
      "9999-12-31T23:59:59-00:01",  // after year 9999 in UTC
      "garbage",
  };
  for (const char* in : rows) {
    INFO(in);
    CHECK_FALSE(parse_datetime(in).has_value());
  }
  // An embedded NUL is not a terminator.
  CHECK_FALSE(parse_datetime(std::string("2026-01-01T00:00:00Z\0", 21)).has_value());
}

TEST_CASE("format_datetime") {
  struct Row {
    int64_t in;
    const char* want;
  };
  const Row rows[] = {
      {0, "1970-01-01T00:00:00.000Z"},
      {1, "1970-01-01T00:00:00.001Z"},
      {-1, "1969-12-31T23:59:59.999Z"},
      {-1000, "1969-12-31T23:59:59.000Z"},
      {-86400000, "1969-12-31T00:00:00.000Z"},
      {951782400000, "2000-02-29T00:00:00.000Z"},
      {2147483647000, "2038-01-19T03:14:07.000Z"},
      {1795600800123, "2026-11-25T10:00:00.123Z"},
      {1798763400000, "2027-01-01T00:30:00.000Z"},
      {-11670998400000, "1600-02-29T00:00:00.000Z"},
      {kMinDatetimeMs, "0000-01-01T00:00:00.000Z"},
      {kMaxDatetimeMs, "9999-12-31T23:59:59.999Z"},
      {kMinDatetimeMs - 1, "0000-01-01T00:00:00.000Z"},  // clamped
      {kMaxDatetimeMs + 1, "9999-12-31T23:59:59.999Z"},  // clamped
      {std::numeric_limits<int64_t>::min(), "0000-01-01T00:00:00.000Z"},
      {std::numeric_limits<int64_t>::max(), "9999-12-31T23:59:59.999Z"},
  };
  for (const auto& r : rows) {
    INFO(r.in);
    CHECK(format_datetime(r.in) == r.want);
  }
}

TEST_CASE("datetime round trips") {
  // format → parse is the identity over the whole range (a spread of values with
  // every millisecond residue pattern), and parse → format → parse too.
  uint64_t x = 0x9E3779B97F4A7C15ull;
  const uint64_t span = static_cast<uint64_t>(kMaxDatetimeMs - kMinDatetimeMs) + 1;
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const int64_t ms = kMinDatetimeMs + static_cast<int64_t>(x % span);
    const std::string s = format_datetime(ms);
    auto back = parse_datetime(s);
    REQUIRE_MESSAGE(back.has_value(), s);
    REQUIRE_MESSAGE(*back == ms, s);
  }
  for (int64_t ms : {int64_t{0}, int64_t{-1}, kMinDatetimeMs, kMaxDatetimeMs, int64_t{1} << 41}) {
    CHECK(parse_datetime(format_datetime(ms)) == ms);
  }
  auto off = parse_datetime("2026-03-29T02:30:00.5+05:45");
  REQUIRE(off);
  CHECK(format_datetime(*off) == "2026-03-28T20:45:00.500Z");
}

TEST_CASE("days_from_civil and civil_from_days agree on every day of 0000–9999") {
  const int64_t first = days_from_civil(0, 1, 1);
  const int64_t last = days_from_civil(9999, 12, 31);
  CHECK(days_from_civil(1970, 1, 1) == 0);
  CHECK(first == kMinDatetimeMs / 86400000);
  int64_t expect_year = 0;
  unsigned expect_month = 1, expect_day = 1;
  for (int64_t d = first; d <= last; ++d) {
    const CivilDate c = civil_from_days(d);
    if (c.year != expect_year || c.month != expect_month || c.day != expect_day) {
      FAIL("day " << d << " is " << c.year << "-" << c.month << "-" << c.day);
    }
    if (days_from_civil(c.year, c.month, c.day) != d) FAIL("day " << d << " does not map back");
    // Next expected date.
    const bool leap = (c.year % 4 == 0 && c.year % 100 != 0) || c.year % 400 == 0;
    const unsigned dim[] = {31, leap ? 29u : 28u, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (++expect_day > dim[c.month - 1]) {
      expect_day = 1;
      if (++expect_month > 12) {
        expect_month = 1;
        ++expect_year;
      }
    }
  }
}

TEST_CASE("trim_ascii and parse_decimal") {
  CHECK(trim_ascii("") == "");
  CHECK(trim_ascii(" \t\r\n") == "");
  CHECK(trim_ascii("  a b \n") == "a b");
  CHECK(trim_ascii("x") == "x");
  CHECK(trim_ascii("\xc2\xa0x") == "\xc2\xa0x");  // NBSP is not ASCII whitespace

  struct Row {
    const char* in;
    std::optional<uint64_t> want;
  };
  const Row rows[] = {
      {"0", 0},
      {"007", 7},
      {"1000000", 1000000},
      {"18446744073709551615", std::numeric_limits<uint64_t>::max()},
      {"18446744073709551616", std::nullopt},
      {"99999999999999999999", std::nullopt},
      {"000000000000000000001", std::nullopt},  // 21 digits
      {"", std::nullopt},
      {"-1", std::nullopt},
      {"+1", std::nullopt},
      {" 1", std::nullopt},
      {"1 ", std::nullopt},
      {"1e3", std::nullopt},
      {"0x10", std::nullopt},
  };
  for (const auto& r : rows) {
    INFO(r.in);
    CHECK(parse_decimal(r.in) == r.want);
  }
}

}  // namespace s2::mam
