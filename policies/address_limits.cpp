// See address_limits.h.
#include "policies/address_limits.h"

#include <algorithm>

namespace s2::policy {

LoginGate::Verdict LoginGate::arrive(const std::string& key, uint64_t ticket) {
  Entry& e = entries_[key];
  // A free slot goes to a newcomer only when nobody waits (arrival order).
  if (e.in_flight < std::max<uint32_t>(cfg_.max_in_flight, 1) && e.waiting.empty()) {
    ++e.in_flight;
    return Verdict::Go;
  }
  if (e.waiting.size() >= cfg_.max_queued) {
    if (e.in_flight == 0 && e.waiting.empty()) entries_.erase(key);
    return Verdict::Refused;
  }
  e.waiting.push_back(ticket);
  ++total_queued_;
  return Verdict::Queued;
}

std::optional<uint64_t> LoginGate::release(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  Entry& e = it->second;
  if (!e.waiting.empty()) {
    // The slot passes straight to the oldest waiter: in_flight stays.
    const uint64_t next = e.waiting.front();
    e.waiting.pop_front();
    --total_queued_;
    return next;
  }
  if (e.in_flight > 0) --e.in_flight;
  if (e.in_flight == 0) entries_.erase(it);
  return std::nullopt;
}

void LoginGate::cancel(const std::string& key, uint64_t ticket) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  auto& w = it->second.waiting;
  auto pos = std::find(w.begin(), w.end(), ticket);
  if (pos == w.end()) return;
  w.erase(pos);
  --total_queued_;
  if (it->second.in_flight == 0 && w.empty()) entries_.erase(it);
}

uint32_t LoginGate::in_flight(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? 0 : it->second.in_flight;
}

size_t LoginGate::queued(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? 0 : it->second.waiting.size();
}

PreauthBudget::Verdict PreauthBudget::admit(const std::string& key) {
  if (cfg_.total != 0 && total_ >= cfg_.total) return Verdict::TotalFull;
  auto it = per_key_.find(key);
  const uint32_t have = it == per_key_.end() ? 0 : it->second;
  if (cfg_.per_address != 0 && have >= cfg_.per_address) return Verdict::PerAddressFull;
  ++per_key_[key];
  ++total_;
  return Verdict::Ok;
}

void PreauthBudget::release(const std::string& key) {
  auto it = per_key_.find(key);
  if (it == per_key_.end()) return;
  --total_;
  if (--it->second == 0) per_key_.erase(it);
}

uint32_t PreauthBudget::count(const std::string& key) const {
  auto it = per_key_.find(key);
  return it == per_key_.end() ? 0 : it->second;
}

}  // namespace s2::policy
