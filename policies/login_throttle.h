// Login throttling (issue 5 §7): exponential backoff per source address and
// per account after failed logins, so guessing passwords through the proxy
// (which verifies them upstream, or locally with SCRAM/FAST) is slow.
//
// Pure: the caller passes the time. A key (an IP address or a bare JID) may
// fail `free_failures` times; after that each failure doubles its lockout,
// from `base_ms` up to `max_ms`. A success clears the key. Entries idle for
// longer than `max_ms` are forgotten (prune()), so memory stays bounded by
// the number of recently failing keys.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace s2::policy {

struct ThrottleConfig {
  uint32_t free_failures = 3;
  int64_t base_ms = 1000;
  int64_t max_ms = 5 * 60 * 1000;
};

// The key that counts failures of a peer address ("1.2.3.4:5222",
// "[2001:db8::1]:5222"): the IPv4 address, or the IPv6 /64 (one customer's
// network hands out a whole /64, so single addresses would be unlimited).
// An IPv4-mapped IPv6 address is its IPv4 address. Unparsable input is used
// as is.
std::string throttle_key_for_peer(const std::string& peer);

class LoginThrottle {
 public:
  explicit LoginThrottle(ThrottleConfig cfg = {}) : cfg_(cfg) {}
  // 0 when a login may be tried now, else milliseconds until it may.
  int64_t wait_ms(const std::string& key, int64_t now_ms) const;
  void record_failure(const std::string& key, int64_t now_ms);
  void record_success(const std::string& key) { entries_.erase(key); }
  uint32_t failures(const std::string& key) const;
  void prune(int64_t now_ms);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    uint32_t failures = 0;
    int64_t blocked_until_ms = 0;
    int64_t last_ms = 0;
  };
  ThrottleConfig cfg_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace s2::policy
