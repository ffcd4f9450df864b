// Login backoff rules as a table: failures → lockout.
#include <doctest/doctest.h>

#include "policies/login_throttle.h"

using s2::policy::LoginThrottle;
using s2::policy::ThrottleConfig;

TEST_CASE("login throttle: exponential backoff after the free failures") {
  const ThrottleConfig cfg{3, 1000, 8000};
  struct Row {
    int failures;
    int64_t want_wait_ms;  // right after the last failure at t=0
  };
  const Row rows[] = {
      {0, 0},                 // never failed
      {1, 0},                 // free
      {3, 0},                 // last free one
      {4, 1000},              // base
      {5, 2000},              // doubled
      {6, 4000},  {7, 8000},  // capped at max
      {20, 8000},             // stays capped
      {60, 8000},             // no shift overflow
  };
  for (const auto& r : rows) {
    CAPTURE(r.failures);
    LoginThrottle t(cfg);
    for (int i = 0; i < r.failures; ++i) t.record_failure("1.2.3.4", 0);
    CHECK(t.wait_ms("1.2.3.4", 0) == r.want_wait_ms);
    CHECK(t.wait_ms("other", 0) == 0);  // keys are independent
  }
}

TEST_CASE("login throttle: time passes, success clears, prune forgets") {
  LoginThrottle t(ThrottleConfig{0, 1000, 4000});
  t.record_failure("alice@x", 0);
  CHECK(t.wait_ms("alice@x", 0) == 1000);
  CHECK(t.wait_ms("alice@x", 400) == 600);
  CHECK(t.wait_ms("alice@x", 1000) == 0);
  t.record_failure("alice@x", 1000);
  CHECK(t.wait_ms("alice@x", 1000) == 2000);
  t.record_success("alice@x");
  CHECK(t.wait_ms("alice@x", 1000) == 0);
  CHECK(t.failures("alice@x") == 0);
  t.record_failure("bob@x", 0);
  t.prune(3000);  // still within max_ms of its last failure
  CHECK(t.size() == 1);
  t.prune(4001);
  CHECK(t.size() == 0);
}

TEST_CASE("login throttle: peer address → key (IPv4 address, IPv6 /64)") {
  struct Row {
    const char* peer;
    const char* key;
  };
  const Row rows[] = {
      {"127.0.0.1:5222", "127.0.0.1"},
      {"203.0.113.9:40000", "203.0.113.9"},
      {"[::1]:5222", "0:0:0:0::/64"},
      {"[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:1", "2001:db8:1:2::/64"},
      {"[2001:db8:1:2::7]:1", "2001:db8:1:2::/64"},  // same /64 as the row above
      {"[2001:DB8:1:2::8]:1", "2001:db8:1:2::/64"},  // case does not matter
      {"[2001:db8::]:1", "2001:db8:0:0::/64"},
      {"[fe80::1:2:3:4]:9", "fe80:0:0:0::/64"},
      {"[1:2:3:4:5:6:7:8:9]:1", "[1:2:3:4:5:6:7:8:9]:1"},  // too many groups: as is
      {"[1::2::3]:1", "[1::2::3]:1"},                      // two gaps: as is
      {"[::ffff:1.2.3.4]:1", "1.2.3.4"},   // IPv4-mapped (dual-stack listener): the IPv4 client
      {"[::1.2.3.4]:1", "[::1.2.3.4]:1"},  // other IPv4 tails: as is
      {"[zz::1]:1", "[zz::1]:1"},
      {"", ""},
  };
  for (const auto& r : rows) {
    CAPTURE(r.peer);
    CHECK(s2::policy::throttle_key_for_peer(r.peer) == r.key);
  }
}
