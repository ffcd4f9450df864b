// Per source address accounting (issue 12): how many logins run at once from
// one address and who waits for the next free slot (LoginGate), and how many
// unauthenticated connections one address and everyone together may hold
// (PreauthBudget).
//
// Keys are what throttle_key_for_peer() makes of a peer: the IPv4 address or
// the IPv6 /64. Many devices share one key behind a carrier-grade NAT or a
// corporate proxy, so a burst of logins from one key is paced, not refused:
// at most `max_in_flight` run, the rest wait in arrival order, and only a
// full queue refuses. Pure: callers own the tickets (one per connection) and
// act on the verdicts.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>

namespace s2::policy {

struct LoginGateConfig {
  uint32_t max_in_flight = 8;  // logins running at once per key (≥ 1)
  uint32_t max_queued = 500;   // logins waiting per key; beyond: refused
};

class LoginGate {
 public:
  enum class Verdict { Go, Queued, Refused };
  explicit LoginGate(LoginGateConfig cfg = {}) : cfg_(cfg) {}

  // A login wants to start. Go: it holds a slot now (release() when done).
  // Queued: `ticket` waits; release() hands it the slot in arrival order.
  // Refused: every slot is taken and the queue is full.
  Verdict arrive(const std::string& key, uint64_t ticket);
  // A slot holder is done. Returns the waiter that now holds the slot (the
  // oldest one), if any.
  std::optional<uint64_t> release(const std::string& key);
  // A waiter goes away before its turn (its connection closed). No-op for a
  // ticket that is not waiting.
  void cancel(const std::string& key, uint64_t ticket);

  uint32_t in_flight(const std::string& key) const;
  size_t queued(const std::string& key) const;
  size_t total_queued() const { return total_queued_; }
  size_t keys() const { return entries_.size(); }  // memory: only keys in use are kept

 private:
  struct Entry {
    uint32_t in_flight = 0;
    std::deque<uint64_t> waiting;
  };
  LoginGateConfig cfg_;
  std::unordered_map<std::string, Entry> entries_;
  size_t total_queued_ = 0;
};

struct PreauthConfig {
  uint32_t per_address = 500;  // unauthenticated connections per key (0: no cap)
  uint32_t total = 5000;       // … in all (0: no cap)
};

// Unauthenticated connections: counted from accept (or the PROXY header) to
// authenticated or closed. A connection over a cap is refused at accept.
class PreauthBudget {
 public:
  enum class Verdict { Ok, PerAddressFull, TotalFull };
  explicit PreauthBudget(PreauthConfig cfg = {}) : cfg_(cfg) {}

  // Ok counts the connection (release() it later); the others count nothing.
  Verdict admit(const std::string& key);
  void release(const std::string& key);

  uint32_t count(const std::string& key) const;
  uint64_t total() const { return total_; }
  size_t keys() const { return per_key_.size(); }

 private:
  PreauthConfig cfg_;
  std::unordered_map<std::string, uint32_t> per_key_;
  uint64_t total_ = 0;
};

}  // namespace s2::policy
