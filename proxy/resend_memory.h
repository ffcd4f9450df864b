// What a device's earlier sessions sent without seeing the XEP-0198 ack: a
// client resends those in its next session, and the proxy takes each such
// copy once (acknowledges it, sends nothing). A key is remembered from its
// commit until the client saw the ack (forget). Keys whose commit is in
// flight are held here; committed ones are read from the store once per
// resource, in one range read, and then kept up to date here: the hub is
// the account's only writer (one process on LMDB; the lease owner on
// PostgreSQL), so the copy in memory is the index. That replaces one store
// read per message of a new session — a round trip to PostgreSQL each, on
// the loop, for every message of a client's burst.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/store/store.h"

namespace s2 {

class ResendMemory {
 public:
  explicit ResendMemory(const store::Store& store) : store_(store) {}
  void set_account_no(store::AccountNo a) { account_no_ = a; }

  // `serial`: the device session that sent it (its own copies are its own).
  void committing(const std::string& resource, const std::string& key, uint64_t serial);
  // The commit finished: `id` when it claimed the key (a new message), none
  // when it failed or was a duplicate (a duplicate claims no key).
  void committed(const std::string& resource, const std::string& key,
                 std::optional<store::ArchiveId> id);
  // The client saw these acknowledged: no copies of them will come.
  void forget(const std::string& resource, const std::vector<std::string>& keys);
  // Was `key` taken from another session of the device (`serial` is the
  // asking one) and, if committed, within `window_ms` of `now_ms`?
  bool seen(const std::string& resource, const std::string& key, uint64_t serial, int64_t now_ms,
            int64_t window_ms);
  // No device of `resource` is attached: its keys stay in the store only.
  void release(const std::string& resource);

  size_t loaded_resources() const { return loaded_.size(); }

 private:
  const store::ResendKeys* loaded(const std::string& resource);
  static std::string joined(const std::string& resource, const std::string& key) {
    return resource + '\x1f' + key;
  }

  const store::Store& store_;
  store::AccountNo account_no_ = 0;
  std::unordered_map<std::string, uint64_t> committing_;       // resource·key → serial
  std::unordered_map<std::string, store::ResendKeys> loaded_;  // resource → its keys
};

}  // namespace s2
