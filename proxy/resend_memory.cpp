// See resend_memory.h.
#include "proxy/resend_memory.h"

namespace s2 {

void ResendMemory::committing(const std::string& resource, const std::string& key,
                              uint64_t serial) {
  committing_[joined(resource, key)] = serial;
}

void ResendMemory::committed(const std::string& resource, const std::string& key,
                             std::optional<store::ArchiveId> id) {
  committing_.erase(joined(resource, key));
  if (!id) return;
  if (auto it = loaded_.find(resource); it != loaded_.end()) it->second.insert(key, *id);
}

void ResendMemory::forget(const std::string& resource, const std::vector<std::string>& keys) {
  auto it = loaded_.find(resource);
  if (it == loaded_.end()) return;
  for (const auto& k : keys) it->second.erase(k);
}

void ResendMemory::release(const std::string& resource) { loaded_.erase(resource); }

const store::ResendKeys* ResendMemory::loaded(const std::string& resource) {
  if (auto it = loaded_.find(resource); it != loaded_.end()) return &it->second;
  auto keys = store_.list_resend_keys(account_no_, resource);
  if (!keys.ok()) return nullptr;  // asked key by key below, and again next time
  return &loaded_.emplace(resource, std::move(*keys)).first->second;
}

bool ResendMemory::seen(const std::string& resource, const std::string& key, uint64_t serial,
                        int64_t now_ms, int64_t window_ms) {
  if (auto it = committing_.find(joined(resource, key));
      it != committing_.end() && it->second != serial)
    return true;
  if (account_no_ == 0) return false;
  std::optional<store::ArchiveId> id;
  if (const auto* keys = loaded(resource)) {
    id = keys->find(key);
  } else {
    auto r = store_.resolve_ref(account_no_, resource, store::RefKind::kResendKey, key);
    if (!r.ok()) return false;
    id = *r;
  }
  if (!id) return false;
  // A client resends right after it reconnects; a key left behind by a
  // crash must not swallow the same words sent much later.
  auto m = store_.get_message(account_no_, *id);
  return m.ok() && m.value() && now_ms - m.value()->record.timestamp_ms < window_ms;
}

}  // namespace s2
