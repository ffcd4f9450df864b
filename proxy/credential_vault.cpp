// See credential_vault.h.
#include "proxy/credential_vault.h"

#include "common/crypto/hash.h"
#include "common/crypto/vault.h"
#include "common/util/log.h"

namespace s2 {
namespace {
constexpr uint8_t kFormat = 1;
constexpr uint32_t kLocalIterations = 4096;  // RFC 7677 minimum; PBKDF2 runs on the loop

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

void CredentialVault::put(const std::string& bare_jid, std::string_view password,
                          const UpstreamSecret& upstream, std::function<void(bool)> done) {
  // A different password than the one the vault knew (changed upstream):
  // FAST tokens issued under the old one must not outlive it, e.g. on a
  // stolen device.
  bool password_changed = false;
  if (auto old = get(bare_jid)) {
    const auto& v = old->sha256;
    password_changed =
        crypto::make_scram_verifier(crypto::HashAlg::Sha256, password, v.salt, v.iterations)
            .stored_key != v.stored_key;
  }
  VaultEntry e;
  e.upstream.kind = upstream.kind;
  e.upstream.hash = upstream.hash;
  e.upstream.salt = upstream.salt;
  e.upstream.iterations = upstream.iterations;
  e.upstream.secret = upstream.secret;
  e.sha1 = crypto::make_scram_verifier(crypto::HashAlg::Sha1, password, kLocalIterations);
  e.sha256 = crypto::make_scram_verifier(crypto::HashAlg::Sha256, password, kLocalIterations);
  std::string plain = encode(e);
  auto sealed = crypto::vault_seal(key_, plain, bare_jid);
  crypto::secure_wipe(plain);
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
