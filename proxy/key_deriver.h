// SCRAM key derivation (RFC 5802 Hi() = PBKDF2) off the event loop, with a
// memo of the SaltedPasswords upstream accepted (ARCHITECTURE.md §6).
//
// PBKDF2 at 4096-10000 iterations costs milliseconds of CPU, during which a
// single-threaded daemon moves no other session's stanzas. derive() runs it on
// libuv's thread pool (common/net/offload.h) and hands the result back on the
// loop. The memo lets a returning password login skip it altogether: SCRAM
// allows a client to keep SaltedPassword for a given salt and iteration count
// (RFC 5802 §5.1), so what upstream accepted once is remembered, keyed by an
// HMAC (random per-process key) of hash, salt, count and password, in memory
// only, bounded (least recently used entries go first, wiped). The memo never
// decides a login: upstream still checks the proof computed from it.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/crypto/encoding.h"
#include "common/crypto/hash.h"

namespace s2 {

class KeyDeriver {
 public:
  static constexpr size_t kDefaultCapacity = 1024;
  // `loop` nullptr: derive() computes inline (tools, unit tests without a loop).
  explicit KeyDeriver(uv_loop_t* loop, size_t capacity = kDefaultCapacity);
  ~KeyDeriver();
  KeyDeriver(const KeyDeriver&) = delete;
  KeyDeriver& operator=(const KeyDeriver&) = delete;

  // Memo lookup (one HMAC, no PBKDF2).
  std::optional<crypto::SecretString> lookup(crypto::HashAlg h, std::string_view password,
                                             std::string_view salt, uint32_t iterations);
  // Hi(password, salt, iterations) on the thread pool; `done` on the loop
  // thread, never before derive() returned, and not at all once `owner`
  // expired. Does not consult or fill the memo.
  void derive(crypto::HashAlg h, std::string_view password, std::string salt, uint32_t iterations,
              std::weak_ptr<void> owner, std::function<void(crypto::SecretString)> done);
  // Records a SaltedPassword the server accepted for this password.
  void remember(crypto::HashAlg h, std::string_view password, std::string_view salt,
                uint32_t iterations, std::string_view salted_password);
  size_t size() const { return map_.size(); }
  size_t derivations() const { return derivations_; }  // derive() calls so far

 private:
  std::string memo_key(crypto::HashAlg h, std::string_view password, std::string_view salt,
                       uint32_t iterations) const;

  uv_loop_t* loop_;
  size_t capacity_;
  std::string hmac_key_;  // random, this process only
  size_t derivations_ = 0;
  struct Entry {
    std::string key;
    crypto::SecretString salted;
  };
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> map_;
};

}  // namespace s2
