// See key_deriver.h.
#include "proxy/key_deriver.h"

#include "common/crypto/scram.h"
#include "common/net/offload.h"

namespace s2 {

KeyDeriver::KeyDeriver(uv_loop_t* loop, size_t capacity)
    : loop_(loop), capacity_(capacity == 0 ? 1 : capacity), hmac_key_(crypto::random_bytes(32)) {}

KeyDeriver::~KeyDeriver() { crypto::secure_wipe(hmac_key_); }

std::string KeyDeriver::memo_key(crypto::HashAlg h, std::string_view password,
                                 std::string_view salt, uint32_t iterations) const {
  // Length-prefixed fields: no two inputs share an encoding.
  std::string in;
  in.reserve(16 + salt.size() + password.size());
  in += h == crypto::HashAlg::Sha256 ? '\x02' : '\x01';
  for (uint32_t v : {iterations, static_cast<uint32_t>(salt.size())})
    for (int i = 3; i >= 0; --i) in += static_cast<char>((v >> (8 * i)) & 0xff);
  in.append(salt).append(password);
  std::string key = crypto::hmac(crypto::HashAlg::Sha256, hmac_key_, in);
  crypto::secure_wipe(in);
  return key;
}

std::optional<crypto::SecretString> KeyDeriver::lookup(crypto::HashAlg h, std::string_view password,
                                                       std::string_view salt, uint32_t iterations) {
  auto it = map_.find(memo_key(h, password, salt, iterations));
  if (it == map_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second);
  return crypto::SecretString(it->second->salted.str());
}

void KeyDeriver::remember(crypto::HashAlg h, std::string_view password, std::string_view salt,
                          uint32_t iterations, std::string_view salted_password) {
  std::string key = memo_key(h, password, salt, iterations);
  if (auto it = map_.find(key); it != map_.end()) {
    it->second->salted = crypto::SecretString(std::string(salted_password));
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(Entry{key, crypto::SecretString(std::string(salted_password))});
  map_.emplace(std::move(key), lru_.begin());
  while (map_.size() > capacity_) {
    map_.erase(lru_.back().key);
    lru_.pop_back();  // SecretString wipes itself
  }
}

void KeyDeriver::derive(crypto::HashAlg h, std::string_view password, std::string salt,
                        uint32_t iterations, std::weak_ptr<void> owner,
                        std::function<void(crypto::SecretString)> done) {
  ++derivations_;
  // Everything the pool thread touches is captured by value.
  auto work = [h, pw = crypto::SecretString(std::string(password)), salt = std::move(salt),
               iterations] {
    return crypto::SecretString(crypto::scram_salted_password(h, pw.view(), salt, iterations));
  };
  if (!loop_) {
    auto r = work();
    if (!owner.expired()) done(std::move(r));
    return;
  }
  offload(loop_, std::move(owner), std::move(work), std::move(done));
}

}  // namespace s2
