// InputRate: the byte bucket's pauses and the sustained stanza ceiling.
#include <doctest/doctest.h>

#include "policies/input_rate.h"

namespace s2::policy {
namespace {

TEST_CASE("byte bucket: a burst passes, then reading pauses for exactly the refill") {
  struct Row {
    const char* what;
    uint64_t bytes;
    int64_t at_ms;
    int64_t want_pause_ms;
  };
  // 1000 B/s, burst 2000 B.
  const Row rows[] = {
      {"within the burst", 1500, 0, 0},
      {"the rest of the burst", 500, 0, 0},
      {"one byte over: 1 ms", 1, 0, 1},
      {"refilled 100 B after 100 ms (+1 B debt), 300 read: 201 ms", 300, 100, 201},
      {"a second later the debt is paid, 500 read", 500, 1100, 0},
  };
  InputRate r({1000, 2000, 0, 10}, 0);
  for (const auto& row : rows) {
    INFO(row.what);
    CHECK(r.on_bytes(row.bytes, row.at_ms) == row.want_pause_ms);
  }
  InputRate off({0, 0, 0, 10}, 0);
  CHECK(off.on_bytes(uint64_t{1} << 40, 0) == 0);
  InputRate capped({1000, 2000, 0, 10}, 0);
  CHECK(capped.on_bytes(0, 3'600'000) == 0);
  CHECK(capped.bucket() == doctest::Approx(2000));  // an hour idle refills only to the burst
}

TEST_CASE("stanza ceiling: sustained rate over the window") {
  // 10 stanzas/s on average over 10 s = 100 per window.
  const InputRateConfig c{0, 0, 10, 10};
  SUBCASE("a burst of 100 at once is allowed, the 101st is not") {
    InputRate r(c, 0);
    for (int i = 0; i < 100; ++i) CHECK_FALSE(r.on_stanza(0));
    CHECK(r.on_stanza(0));
  }
  SUBCASE("9 per second for a minute never trips") {
    InputRate r(c, 0);
    bool tripped = false;
    for (int s = 0; s < 60; ++s)
      for (int i = 0; i < 9; ++i) tripped |= r.on_stanza(s * 1000 + i * 100);
    CHECK_FALSE(tripped);
  }
  SUBCASE("20 per second trips within the first window") {
    InputRate r(c, 0);
    int64_t tripped_at = -1;
    for (int k = 0; k < 400 && tripped_at < 0; ++k)
      if (r.on_stanza(k * 50)) tripped_at = k * 50;
    CHECK(tripped_at > 0);
    CHECK(tripped_at <= 10'000);
  }
  SUBCASE("a quiet window forgets") {
    InputRate r(c, 0);
    for (int i = 0; i < 100; ++i) r.on_stanza(0);
    CHECK_FALSE(r.on_stanza(20'000));
  }
  SUBCASE("no ceiling") {
    InputRate r({0, 0, 0, 10}, 0);
    bool tripped = false;
    for (int i = 0; i < 100000; ++i) tripped |= r.on_stanza(0);
    CHECK_FALSE(tripped);
  }
}

}  // namespace
}  // namespace s2::policy
