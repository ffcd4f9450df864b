// Per-address accounting as tables: login slots and their FIFO queue
// (LoginGate), unauthenticated connection caps (PreauthBudget).
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "policies/address_limits.h"
#include "policies/login_throttle.h"

using s2::policy::LoginGate;
using s2::policy::LoginGateConfig;
using s2::policy::PreauthBudget;
using s2::policy::PreauthConfig;
using s2::policy::throttle_key_for_peer;

namespace {
// One step of a scenario: who arrives / releases / cancels, and what follows.
struct Step {
  char op;             // 'a' arrive, 'r' release, 'c' cancel
  std::string key;     // source address key
  uint64_t ticket;     // arriving / cancelled ticket (unused for 'r')
  char want;           // a: 'G' go, 'Q' queued, 'R' refused; r: granted ticket or 0 (none)
  uint32_t in_flight;  // afterwards, for `key`
  size_t queued;       // afterwards, for `key`
};
}  // namespace

TEST_CASE("login gate: slots, FIFO queue, refusals per address") {
  const LoginGateConfig cfg{2, 3};
  const std::vector<Step> steps = {
      {'a', "A", 1, 'G', 1, 0},  {'a', "A", 2, 'G', 2, 0},
      {'a', "A", 3, 'Q', 2, 1},  // both slots taken: waits
      {'a', "B", 9, 'G', 1, 0},  // another address is independent
      {'a', "A", 4, 'Q', 2, 2},  {'a', "A", 5, 'Q', 2, 3},
      {'a', "A", 6, 'R', 2, 3},  // queue full: refused
      {'r', "A", 0, 3, 2, 2},    // a slot frees: the oldest waiter (3) gets it
      {'c', "A", 4, 0, 2, 1},    // 4 gives up while waiting
      {'a', "A", 7, 'Q', 2, 2},  // newcomers queue behind 5 even if…
      {'r', "A", 0, 5, 2, 1},    // …the next slot goes to 5 (arrival order)
      {'r', "A", 0, 7, 2, 0},    {'a', "A", 8, 'Q', 2, 1},
      {'c', "A", 42, 0, 2, 1},  // cancelling a ticket that does not wait: nothing
      {'r', "A", 0, 8, 2, 0},    {'r', "A", 0, 0, 1, 0},  // nobody waits: the slot is free
      {'a', "A", 10, 'G', 2, 0}, {'r', "A", 0, 0, 1, 0},
      {'r', "A", 0, 0, 0, 0},    {'r', "A", 0, 0, 0, 0},  // an extra release is harmless
      {'r', "B", 0, 0, 0, 0},
  };
  LoginGate g(cfg);
  int i = 0;
  for (const auto& s : steps) {
    CAPTURE(i++);
    CAPTURE(s.key);
    if (s.op == 'a') {
      const auto v = g.arrive(s.key, s.ticket);
      const char got = v == LoginGate::Verdict::Go       ? 'G'
                       : v == LoginGate::Verdict::Queued ? 'Q'
                                                         : 'R';
      CHECK(got == s.want);
    } else if (s.op == 'r') {
      const auto next = g.release(s.key);
      CHECK(next.value_or(0) == static_cast<uint64_t>(s.want));
    } else {
      g.cancel(s.key, s.ticket);
    }
    CHECK(g.in_flight(s.key) == s.in_flight);
    CHECK(g.queued(s.key) == s.queued);
  }
  CHECK(g.keys() == 0);  // nothing left behind
  CHECK(g.total_queued() == 0);
}

TEST_CASE("login gate: 300 devices behind one address are all served, in order") {
  LoginGate g(LoginGateConfig{8, 500});
  std::vector<uint64_t> order;
  std::vector<uint64_t> running;
  for (uint64_t t = 1; t <= 300; ++t) {
    const auto v = g.arrive("198.51.100.1", t);
    CHECK(v != LoginGate::Verdict::Refused);
    if (v == LoginGate::Verdict::Go) running.push_back(t);
  }
  CHECK(running.size() == 8);
  CHECK(g.queued("198.51.100.1") == 292);
  while (!running.empty()) {
    const uint64_t done = running.front();
    running.erase(running.begin());
    order.push_back(done);
    if (auto next = g.release("198.51.100.1")) running.push_back(*next);
  }
  REQUIRE(order.size() == 300);
  for (size_t k = 0; k < order.size(); ++k) CHECK(order[k] == k + 1);
  CHECK(g.keys() == 0);
}

TEST_CASE("preauth budget: per-address and total caps") {
  struct Row {
    const char* op;  // "+key" admit, "-key" release
    PreauthBudget::Verdict want;
    uint32_t count;  // afterwards, for key
    uint64_t total;
  };
  using V = PreauthBudget::Verdict;
  const Row rows[] = {
      {"+A", V::Ok, 1, 1},
      {"+A", V::Ok, 2, 1 + 1},
      {"+A", V::PerAddressFull, 2, 2},  // 2 per address
      {"+B", V::Ok, 1, 3},
      {"+C", V::Ok, 1, 4},
      {"+D", V::TotalFull, 0, 4},  // 4 in all
      {"-A", V::Ok, 1, 3},
      {"+D", V::Ok, 1, 4},
      {"-B", V::Ok, 0, 3},
      {"-B", V::Ok, 0, 3},  // extra release: nothing
      {"+A", V::Ok, 2, 4},
  };
  PreauthBudget b(PreauthConfig{2, 4});
  int i = 0;
  for (const auto& r : rows) {
    CAPTURE(i++);
    const std::string key = r.op + 1;
    if (r.op[0] == '+') {
      CHECK(b.admit(key) == r.want);
    } else {
      b.release(key);
    }
    CHECK(b.count(key) == r.count);
    CHECK(b.total() == r.total);
  }
  PreauthBudget unlimited(PreauthConfig{0, 0});
  for (int k = 0; k < 10000; ++k) CHECK(unlimited.admit("A") == V::Ok);
}

TEST_CASE("address keys: IPv4, IPv6 /64, IPv4-mapped IPv6") {
  const std::pair<const char*, const char*> rows[] = {
      {"203.0.113.7:5222", "203.0.113.7"},
      {"[2001:db8:1:2:3:4:5:6]:5222", "2001:db8:1:2::/64"},
      {"[2001:db8:1:2::9]:1", "2001:db8:1:2::/64"},
      {"[::ffff:203.0.113.7]:5222", "203.0.113.7"},  // dual-stack listener: the IPv4 client
      {"[::FFFF:198.51.100.1]:1", "198.51.100.1"},
  };
  for (const auto& row : rows) {  // not a structured binding: clang 15 cannot capture one
    const auto& peer = row.first;
    CAPTURE(peer);
    CHECK(throttle_key_for_peer(peer) == row.second);
  }
}
