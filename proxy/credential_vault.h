// The credential vault (ARCHITECTURE.md §6): what the proxy keeps so it can
// log in upstream as the user while no password is typed (FAST, local SCRAM,
// and later the anchor), and verify later logins itself.
//
// Per account, sealed with AES-256-GCM under the vault key (AAD = the bare
// JID, so an entry cannot be moved to another account):
//   * the upstream secret: the SaltedPassword for upstream's SCRAM salt and
//     iteration count when upstream offered SCRAM (it logs in there and is
//     useless anywhere else), the password itself only when upstream offers
//     PLAIN alone;
//   * local SCRAM-SHA-1 and SCRAM-SHA-256 verifiers (salt, 4096 iterations,
//     StoredKey, ServerKey) derived from the password at the first login.
// The password is dropped from memory once the entry is built; PBKDF2 runs on
// libuv's thread pool, never on the event loop. When upstream
// rejects the stored secret, the entry and every FAST token of the account
// are removed (invalidate()).
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/crypto/encoding.h"
#include "common/crypto/scram.h"
#include "common/store/store.h"

namespace s2 {

struct UpstreamSecret {
  enum class Kind : uint8_t { Password = 0, ScramSalted = 1 } kind = Kind::Password;
  crypto::HashAlg hash = crypto::HashAlg::Sha1;  // ScramSalted only
  std::string salt;                              // raw bytes, ScramSalted only
  uint32_t iterations = 0;                       // ScramSalted only
  std::string secret;                            // password, or SaltedPassword (raw bytes)
  ~UpstreamSecret() { crypto::secure_wipe(secret); }
};

struct VaultEntry {
  UpstreamSecret upstream;
  crypto::ScramVerifier sha1;
  crypto::ScramVerifier sha256;
};

class CredentialVault {
 public:
  // `loop`: where put() runs its PBKDF2 off the loop (libuv's thread pool);
  // nullptr computes inline (the accounts CLI, unit tests without a loop).
  CredentialVault(store::Store& store, std::string key, uv_loop_t* loop = nullptr)
      : store_(store), key_(std::move(key)), loop_(loop) {}
  ~CredentialVault() { crypto::secure_wipe(key_); }

  // Reads and opens the entry of `bare_jid`; nullopt when there is none or it
  // does not open (wrong key, tampering: logged, treated as absent).
  std::optional<VaultEntry> get(const std::string& bare_jid) const;
  bool known(const std::string& bare_jid) const { return get(bare_jid).has_value(); }

  // Builds the entry from a password that upstream just accepted and stores
  // it; `done(ok)` after commit. The local verifiers are derived (PBKDF2, on
  // the thread pool) only when the password changed: the same password again
  // keeps the stored verifiers (same salts), which is decided without PBKDF2
  // when the upstream secret is comparable (same password, or the same
  // SaltedPassword for the same salt and count). A changed password also
  // revokes the account's FAST tokens. Writes of one account (put,
  // invalidate) are submitted in call order whatever the derivations take.
  void put(const std::string& bare_jid, std::string_view password, const UpstreamSecret& upstream,
           std::function<void(bool)> done);
  // Removes the entry and all FAST tokens of the account.
  void invalidate(const std::string& bare_jid, std::function<void(bool)> done);
  // put() calls whose entry is being derived or waits for an earlier one.
  size_t pending_puts() const;

  // Secret for things that must stay stable per installation but not be
  // guessable (fake SCRAM salts, Bind2 resource suffixes).
  std::string derived_secret(std::string_view purpose) const;
  const std::string& key() const { return key_; }
  store::Store& store() { return store_; }

  // Serialisation (exposed for unit tests).
  static std::string encode(const VaultEntry& e);
  static std::optional<VaultEntry> decode(std::string_view bytes);

 private:
  // One write of an account, submitted once it and all earlier ones are ready.
  struct Pending {
    bool ready = false;
    bool is_put = false;
    std::function<void()> submit;
  };
  void enqueue(const std::string& bare_jid, std::shared_ptr<Pending> p);
  void pump(const std::string& bare_jid);
  void submit_put(const std::string& bare_jid, std::optional<std::string> sealed,
                  bool password_changed, std::function<void(bool)> done);
  void submit_invalidate(const std::string& bare_jid, std::function<void(bool)> done);

  store::Store& store_;
  std::string key_;
  uv_loop_t* loop_;
  std::unordered_map<std::string, std::deque<std::shared_ptr<Pending>>> queue_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace s2
