// LoginPacer: the token bucket and the cap on upstream logins in flight (login_pacer.h).
#include <doctest/doctest.h>

#include "policies/login_pacer.h"

namespace s2::policy {
namespace {

TEST_CASE("LoginPacer: burst, then the rate") {
  LoginPacer p(PacerConfig{10, 3, 0}, 1000);  // 10/s, burst 3, no slot cap
  int started = 0;
  while (p.can_start(1000)) {
    p.start(1000);
    ++started;
  }
  CHECK(started == 3);
  CHECK(p.ms_until_token(1000) == 100);
  CHECK(!p.can_start(1050));
  CHECK(p.ms_until_token(1050) == 50);
  CHECK(p.can_start(1100));
  p.start(1100);
  CHECK(!p.can_start(1100));
  // A long pause refills to the burst, not beyond.
  int later = 0;
  while (p.can_start(60000)) {
    p.start(60000);
    ++later;
  }
  CHECK(later == 3);
}

TEST_CASE("LoginPacer: slots") {
  struct Row {
    PacerConfig c;
    int starts_at_once;
    const char* why;
  };
  const Row rows[] = {
      {{0, 1, 2}, 2, "unlimited rate, 2 slots"}, {{1000, 100, 5}, 5, "slots bind first"},
      {{1000, 4, 50}, 4, "tokens bind first"},   {{0, 1, 0}, 1000, "no limits at all"},
      {{10, 0, 0}, 1, "burst 0 is 1"},
  };
  for (const auto& r : rows) {
    INFO(r.why);
    LoginPacer p(r.c, 0);
    int n = 0;
    while (n < 1000 && p.can_start(0)) {
      p.start(0);
      ++n;
    }
    CHECK(n == r.starts_at_once);
  }
  LoginPacer p(PacerConfig{0, 1, 2}, 0);
  p.start(0);
  p.start(0);
  CHECK(!p.can_start(0));
  CHECK(p.ms_until_token(0) == 0);  // not a token problem: a slot is
  p.finish();
  CHECK(p.in_flight() == 1);
  CHECK(p.can_start(0));
  p.finish();
  p.finish();  // never below zero
  CHECK(p.in_flight() == 0);
}

}  // namespace
}  // namespace s2::policy
