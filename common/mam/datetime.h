// XEP-0082 DateTime (CCYY-MM-DDThh:mm:ss[.sss]TZD) as Unix milliseconds (UTC), plus
// the small lexical helpers the MAM parsers share.
//
// The calendar is the proleptic Gregorian one computed with days-from-civil
// arithmetic: no timegm(), no locale, no TZ environment. Years are the four digits of
// CCYY (0000–9999); a time that lands outside that range once the offset is applied
// is rejected, so every parsed value formats back to a parseable string.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace s2::mam {

// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z.
inline constexpr int64_t kMinDatetimeMs = -62167219200000;
inline constexpr int64_t kMaxDatetimeMs = 253402300799999;

// Parses CCYY-MM-DDThh:mm:ss[.s+][TZD], TZD being "Z" or ±hh:mm (hh ≤ 23, mm ≤ 59). A
// missing TZD is read as UTC (XEP-0082 requires one; clients that omit it mean UTC).
// Fields must have exactly their digit counts and be in range (month 01–12, day valid
// for the month, leap years included, hour 00–23, minute and second 00–59: no leap
// second, no 24:00:00). Any number of fraction digits is accepted and truncated to
// milliseconds. No surrounding whitespace. nullopt on anything else.
std::optional<int64_t> parse_datetime(std::string_view s);

// 2026-11-25T10:00:00.123Z: always milliseconds and "Z". Values outside
// [kMinDatetimeMs, kMaxDatetimeMs] are clamped to that range.
std::string format_datetime(int64_t unix_ms);

// Days since 1970-01-01 of a proleptic Gregorian date (month 1–12, day 1–31), and back.
int64_t days_from_civil(int64_t year, unsigned month, unsigned day);
struct CivilDate {
  int64_t year;
  unsigned month;
  unsigned day;
};
CivilDate civil_from_days(int64_t days);

// ASCII whitespace (space, tab, CR, LF) stripped from both ends.
std::string_view trim_ascii(std::string_view s);
// A plain decimal number: 1–20 ASCII digits, no sign or spaces, no overflow.
std::optional<uint64_t> parse_decimal(std::string_view s);

}  // namespace s2::mam
