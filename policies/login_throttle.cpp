// See login_throttle.h.
#include "policies/login_throttle.h"

#include <algorithm>

namespace s2::policy {

int64_t LoginThrottle::wait_ms(const std::string& key, int64_t now_ms) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return 0;
  return std::max<int64_t>(0, it->second.blocked_until_ms - now_ms);
}

void LoginThrottle::record_failure(const std::string& key, int64_t now_ms) {
  Entry& e = entries_[key];
  e.failures++;
  e.last_ms = now_ms;
  if (e.failures <= cfg_.free_failures) return;
  const uint32_t doublings = std::min<uint32_t>(e.failures - cfg_.free_failures - 1, 30);
  const int64_t lock = std::min<int64_t>(cfg_.base_ms << doublings, cfg_.max_ms);
  e.blocked_until_ms = now_ms + lock;
}

uint32_t LoginThrottle::failures(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? 0 : it->second.failures;
}

void LoginThrottle::prune(int64_t now_ms) {
  std::erase_if(entries_, [&](const auto& kv) {
    return kv.second.blocked_until_ms <= now_ms && now_ms - kv.second.last_ms > cfg_.max_ms;
  });
}

}  // namespace s2::policy
