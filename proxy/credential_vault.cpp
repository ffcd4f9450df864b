// See credential_vault.h.
#include "proxy/credential_vault.h"

#include "common/crypto/hash.h"
#include "common/crypto/vault.h"
#include "common/net/offload.h"
#include "common/util/log.h"

namespace s2 {
namespace {
constexpr uint8_t kFormat = 1;
constexpr uint32_t kLocalIterations = 4096;  // RFC 7677 minimum; PBKDF2 off the loop

void put_u32(std::string& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_bytes(std::string& out, std::string_view b) {
  put_u32(out, static_cast<uint32_t>(b.size()));
  out.append(b);
}

struct Reader {
  std::string_view in;
  bool ok = true;
  uint32_t u32() {
    if (in.size() < 4) {
      ok = false;
      return 0;
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
    in.remove_prefix(4);
    return v;
  }
  std::string bytes() {
    uint32_t n = u32();
    if (!ok || in.size() < n) {
      ok = false;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

void put_verifier(std::string& out, const crypto::ScramVerifier& v) {
  put_bytes(out, v.salt);
  put_u32(out, v.iterations);
  put_bytes(out, v.stored_key);
  put_bytes(out, v.server_key);
}
crypto::ScramVerifier get_verifier(Reader& r, crypto::HashAlg h) {
  crypto::ScramVerifier v;
  v.hash = h;
  v.salt = r.bytes();
  v.iterations = r.u32();
  v.stored_key = r.bytes();
  v.server_key = r.bytes();
  return v;
}
}  // namespace

std::string CredentialVault::encode(const VaultEntry& e) {
  std::string out;
  out += static_cast<char>(kFormat);
  out += static_cast<char>(e.upstream.kind);
  out += static_cast<char>(e.upstream.hash == crypto::HashAlg::Sha256 ? 2 : 1);
  put_bytes(out, e.upstream.salt);
  put_u32(out, e.upstream.iterations);
  put_bytes(out, e.upstream.secret);
  put_verifier(out, e.sha1);
  put_verifier(out, e.sha256);
  return out;
}

std::optional<VaultEntry> CredentialVault::decode(std::string_view bytes) {
  if (bytes.size() < 3 || static_cast<uint8_t>(bytes[0]) != kFormat) return std::nullopt;
  VaultEntry e;
  uint8_t kind = static_cast<uint8_t>(bytes[1]);
  if (kind > 1) return std::nullopt;
  e.upstream.kind = static_cast<UpstreamSecret::Kind>(kind);
  e.upstream.hash = bytes[2] == 2 ? crypto::HashAlg::Sha256 : crypto::HashAlg::Sha1;
  Reader r{bytes.substr(3)};
  e.upstream.salt = r.bytes();
  e.upstream.iterations = r.u32();
  e.upstream.secret = r.bytes();
  e.sha1 = get_verifier(r, crypto::HashAlg::Sha1);
  e.sha256 = get_verifier(r, crypto::HashAlg::Sha256);
  if (!r.ok || !r.in.empty()) return std::nullopt;
  return e;
}

std::optional<VaultEntry> CredentialVault::get(const std::string& bare_jid) const {
  auto acct = store_.find_account(bare_jid);
  if (!acct || !acct.value()) return std::nullopt;
  auto sealed = store_.get_credentials(acct.value()->account);
  if (!sealed || !sealed.value()) return std::nullopt;
  auto plain = crypto::vault_open(key_, *sealed.value(), bare_jid);
  if (!plain) {
    S2_LOG(LogLevel::Warn, "vault.open_failed", {{"account", bare_jid}});
    return std::nullopt;
  }
  auto e = decode(*plain);
  crypto::secure_wipe(*plain);
  return e;
}

namespace {
// What put() computes off the loop: a pure function of copies.
struct PutInput {
  std::optional<VaultEntry> old;
  crypto::SecretString password;
  UpstreamSecret upstream;
  crypto::SecretString key;
  std::string bare_jid;
};
struct PutOutput {
  std::optional<std::string> sealed;
  bool password_changed = false;
};

bool usable_verifier(const crypto::ScramVerifier& v, crypto::HashAlg h) {
  return !v.salt.empty() && v.iterations > 0 && v.stored_key.size() == crypto::hash_size(h) &&
         v.server_key.size() == crypto::hash_size(h);
}

// Whether `password` is the one `old` was built from, without PBKDF2 when the
// upstream secrets can be compared; nullopt when only a PBKDF2 can tell.
std::optional<bool> same_password_cheaply(const VaultEntry& old, std::string_view password,
                                          const UpstreamSecret& up) {
  using K = UpstreamSecret::Kind;
  if (old.upstream.kind == K::Password && up.kind == K::Password)
    return crypto::constant_time_equal(old.upstream.secret, password);
  if (old.upstream.kind == K::ScramSalted && up.kind == K::ScramSalted &&
      old.upstream.hash == up.hash && old.upstream.salt == up.salt &&
      old.upstream.iterations == up.iterations)
    return crypto::constant_time_equal(old.upstream.secret, up.secret);
  return std::nullopt;
}

bool needs_pbkdf2(const PutInput& in) {
  if (!in.old) return true;
  auto same = same_password_cheaply(*in.old, in.password.view(), in.upstream);
  return !same || !*same || !usable_verifier(in.old->sha1, crypto::HashAlg::Sha1) ||
         !usable_verifier(in.old->sha256, crypto::HashAlg::Sha256);
}

PutOutput build_entry(const PutInput& in) {
  PutOutput out;
  VaultEntry e;
  e.upstream.kind = in.upstream.kind;
  e.upstream.hash = in.upstream.hash;
  e.upstream.salt = in.upstream.salt;
  e.upstream.iterations = in.upstream.iterations;
  e.upstream.secret = in.upstream.secret;
  bool keep_verifiers = false;
  if (in.old) {
    // A different password than the one the vault knew (changed upstream):
    // FAST tokens issued under the old one must not outlive it, e.g. on a
    // stolen device.
    std::optional<bool> same = same_password_cheaply(*in.old, in.password.view(), in.upstream);
    if (!same) {
      const auto& v = in.old->sha256;
      same = crypto::make_scram_verifier(crypto::HashAlg::Sha256, in.password.view(), v.salt,
                                         v.iterations)
                 .stored_key == v.stored_key;
    }
    out.password_changed = !*same;
    keep_verifiers = *same && usable_verifier(in.old->sha1, crypto::HashAlg::Sha1) &&
                     usable_verifier(in.old->sha256, crypto::HashAlg::Sha256);
  }
  if (keep_verifiers) {
    e.sha1 = in.old->sha1;
    e.sha256 = in.old->sha256;
  } else {
    // The upstream's SCRAM exchange that accepted this password already salted it for one
    // hash (Prosody 0.12: SHA-1, 10,000 iterations): that verifier costs no PBKDF2. It has the
    // upstream's salt and iterations, and reveals nothing more than the salted password the
    // vault holds next to it.
    const auto make = [&](crypto::HashAlg h) {
      if (in.upstream.kind == UpstreamSecret::Kind::ScramSalted && in.upstream.hash == h &&
          in.upstream.iterations > 0 && !in.upstream.salt.empty())
        return crypto::scram_verifier_from_salted_password(h, in.upstream.secret, in.upstream.salt,
                                                           in.upstream.iterations);
      return crypto::make_scram_verifier(h, in.password.view(), kLocalIterations);
    };
    e.sha1 = make(crypto::HashAlg::Sha1);
    e.sha256 = make(crypto::HashAlg::Sha256);
  }
  std::string plain = CredentialVault::encode(e);
  out.sealed = crypto::vault_seal(in.key.str(), plain, in.bare_jid);
  crypto::secure_wipe(plain);
  return out;
}
}  // namespace

void CredentialVault::put(const std::string& bare_jid, std::string_view password,
                          const UpstreamSecret& upstream, std::function<void(bool)> done) {
  auto in = std::make_unique<PutInput>();
  in->old = get(bare_jid);
  in->password = crypto::SecretString(std::string(password));
  in->upstream.kind = upstream.kind;
  in->upstream.hash = upstream.hash;
  in->upstream.salt = upstream.salt;
  in->upstream.iterations = upstream.iterations;
  in->upstream.secret = upstream.secret;
  in->key = crypto::SecretString(key_);
  in->bare_jid = bare_jid;
  auto p = std::make_shared<Pending>();
  p->is_put = true;
  if (!loop_ || !needs_pbkdf2(*in)) {
    // Same password again (the common re-login): a seal, no PBKDF2.
    PutOutput out = build_entry(*in);
    p->ready = true;
    p->submit = [this, bare_jid, out = std::move(out), done]() mutable {
      submit_put(bare_jid, std::move(out.sealed), out.password_changed, std::move(done));
    };
    enqueue(bare_jid, std::move(p));
    return;
  }
  enqueue(bare_jid, p);
  offload(
      loop_, alive_, [in = std::move(in)] { return build_entry(*in); },
      [this, bare_jid, p, done](PutOutput out) mutable {
        p->ready = true;
        p->submit = [this, bare_jid, out = std::move(out), done]() mutable {
          submit_put(bare_jid, std::move(out.sealed), out.password_changed, std::move(done));
        };
        pump(bare_jid);
      });
}

void CredentialVault::enqueue(const std::string& bare_jid, std::shared_ptr<Pending> p) {
  queue_[bare_jid].push_back(std::move(p));
  pump(bare_jid);
}

void CredentialVault::pump(const std::string& bare_jid) {
  auto it = queue_.find(bare_jid);
  if (it == queue_.end()) return;
  while (!it->second.empty() && it->second.front()->ready) {
    auto p = std::move(it->second.front());
    it->second.pop_front();
    p->submit();  // may enqueue more for this account (it stays in the map)
    it = queue_.find(bare_jid);
    if (it == queue_.end()) return;
  }
  if (it->second.empty()) queue_.erase(it);
}

size_t CredentialVault::pending_puts() const {
  size_t n = 0;
  for (const auto& [jid, q] : queue_)
    for (const auto& p : q) n += p->is_put ? 1 : 0;
  return n;
}

void CredentialVault::submit_put(const std::string& bare_jid, std::optional<std::string> sealed,
                                 bool password_changed, std::function<void(bool)> done) {
  if (!sealed) {
    done(false);
    return;
  }
  // Create the account (if new) and its credentials in one batch.
  store_.submit(
      {store::op::CreateAccount{bare_jid}}, [this, bare_jid, sealed = std::move(*sealed), done,
                                             password_changed](store::WriteResult r) mutable {
        if (!r.ok() || r.ops.empty()) {
          done(false);
          return;
        }
        store::WriteBatch batch{store::op::PutCredentials{r.ops[0].account, std::move(sealed)}};
        if (password_changed) batch.push_back(store::op::DeleteFastTokens{r.ops[0].account});
        store_.submit(std::move(batch), [done](store::WriteResult r2) { done(r2.ok()); });
      });
}

void CredentialVault::invalidate(const std::string& bare_jid, std::function<void(bool)> done) {
  // Behind any put() of the account still being derived, as if the put had
  // been written at once.
  auto p = std::make_shared<Pending>();
  p->ready = true;
  p->submit = [this, bare_jid, done] { submit_invalidate(bare_jid, done); };
  enqueue(bare_jid, std::move(p));
}

void CredentialVault::submit_invalidate(const std::string& bare_jid,
                                        std::function<void(bool)> done) {
  auto acct = store_.find_account(bare_jid);
  if (!acct || !acct.value()) {
    done(true);
    return;
  }
  const auto a = acct.value()->account;
  S2_LOG(LogLevel::Info, "vault.invalidated", {{"account", bare_jid}});
  store_.submit({store::op::DeleteCredentials{a}, store::op::DeleteFastTokens{a}},
                [done](store::WriteResult r) { done(r.ok()); });
}

std::string CredentialVault::derived_secret(std::string_view purpose) const {
  return crypto::hmac(crypto::HashAlg::Sha256, key_, purpose);
}

}  // namespace s2
