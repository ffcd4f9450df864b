// See login_throttle.h.
#include "policies/login_throttle.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <vector>

namespace s2::policy {

std::string throttle_key_for_peer(const std::string& peer) {
  if (!peer.empty() && peer[0] == '[') {
    const auto close = peer.find(']');
    const std::string addr =
        peer.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    // An IPv4 client on a dual-stack listener ("::ffff:a.b.c.d") is that
    // IPv4 address, not a /64 shared with every other IPv4 client.
    if (addr.size() > 7 && addr.find('.') != std::string::npos) {
      std::string lower = addr.substr(0, 7);
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == "::ffff:") return addr.substr(7);
    }
    // Parse the eight groups (with one "::") without any I/O library.
    std::array<uint16_t, 8> g{};
    std::vector<uint16_t> head, tail;
    bool seen_gap = false, ok = !addr.empty();
    size_t i = 0;
    while (ok && i < addr.size()) {
      if (addr.compare(i, 2, "::") == 0) {
        if (seen_gap) ok = false;
        seen_gap = true;
        i += 2;
        continue;
      }
      if (addr[i] == ':') ++i;
      size_t j = i;
      uint32_t v = 0;
      while (j < addr.size() && j - i < 4 && std::isxdigit(static_cast<unsigned char>(addr[j]))) {
        const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(addr[j])));
        v = v * 16 + static_cast<uint32_t>(c <= '9' ? c - '0' : c - 'a' + 10);
        ++j;
      }
      if (j == i || (j < addr.size() && addr[j] != ':'))
        ok = false;  // empty group, IPv4 tail, junk
      (seen_gap ? tail : head).push_back(static_cast<uint16_t>(v));
      i = j;
    }
    if (ok && head.size() + tail.size() <= (seen_gap ? 7u : 8u) && (seen_gap || head.size() == 8)) {
      for (size_t k = 0; k < head.size(); ++k) g[k] = head[k];
      for (size_t k = 0; k < tail.size(); ++k) g[8 - tail.size() + k] = tail[k];
      char buf[48];
      std::snprintf(buf, sizeof buf, "%x:%x:%x:%x::/64", g[0], g[1], g[2], g[3]);
      return buf;
    }
    return peer;
  }
  const auto colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}

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
