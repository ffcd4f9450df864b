// FAST tokens (XEP-0484, mechanism HT-SHA-256-NONE): issue, verify, rotate,
// invalidate.
//
// Tokens are bound to (account, user-agent id, mechanism) and expire
// (default 14 days). Nothing in LMDB lets anyone log in: a token is never
// stored — it is HMAC-SHA-256(vault-derived key, account ‖ user-agent id ‖
// creation time ‖ nonce), and the record (keyed by a hash of account, user-
// agent id and slot) holds only the creation time, nonce, expiry and the last
// replay `count`. Without the vault key a stolen database yields no token.
//
// Rotation: each (account, user-agent) has a `current` and a `previous`
// slot. Issuing moves current to previous; the previous token stays valid
// until the client has used the new one (XEP-0484 §4), then it is deleted.
// Replay: when the client sends `count`, it must be strictly greater than
// the last one accepted for that token; TLS 0-RTT is off as well.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/store/store.h"

namespace s2 {

class FastTokens {
 public:
  FastTokens(store::Store& store, std::string key, int64_t lifetime_ms)
      : store_(store), key_(std::move(key)), lifetime_ms_(lifetime_ms) {}

  struct Issued {
    std::string token;
    int64_t expiry_ms = 0;
  };
  // Issues a new token; `done` gets it after the write committed (nullopt on
  // a storage error).
  void issue(const std::string& bare_jid, const std::string& user_agent_id, int64_t now_ms,
             std::function<void(std::optional<Issued>)> done);

  enum class Verdict { Ok, Invalid, Expired, Replayed };
  // Checks an HT-SHA-256-NONE initiator HMAC. On Ok, records the use
  // (count, rotation cleanup) asynchronously.
  Verdict verify(const std::string& bare_jid, const std::string& user_agent_id,
                 std::string_view initiator_hmac, std::optional<uint64_t> count, int64_t now_ms);
  // The token that verify() accepted last (for the Responder HMAC).
  const std::string& last_token() const { return last_token_; }

  // Revokes both slots of one device (XEP-0484 invalidate='true').
  void invalidate(const std::string& bare_jid, const std::string& user_agent_id);

 private:
  enum class Slot { Current, Previous };
  void issue_for(store::AccountNo account, const std::string& bare_jid,
                 const std::string& user_agent_id, int64_t now_ms,
                 std::function<void(std::optional<Issued>)> done);
  store::TokenHash slot_key(const std::string& bare, const std::string& ua, Slot s) const;
  std::string token_for(const std::string& bare, const std::string& ua,
                        const store::FastToken& rec) const;

  store::Store& store_;
  std::string key_;
  int64_t lifetime_ms_;
  std::string last_token_;
  // What verify() and invalidate() submitted and the store has not committed yet: the store's
  // reads do not see it, and a returning device can log in within that time (a link the anchor
  // kept needs no upstream login, docs/architecture.md §26), so a replayed count or a retired
  // token would pass. Shared with the commit callbacks, which drop what was committed.
  struct InFlight {
    std::map<store::TokenHash, uint64_t> counts;  // slot key → newest count used
    std::set<store::TokenHash> retired;           // slot keys deleted
  };
  std::shared_ptr<InFlight> in_flight_ = std::make_shared<InFlight>();
};

}  // namespace s2
