// See fast_tokens.h.
#include "proxy/fast_tokens.h"

#include <algorithm>
#include <cstring>

#include "common/crypto/encoding.h"
#include "common/crypto/hash.h"
#include "common/crypto/ht.h"
#include "common/util/log.h"

namespace s2 {
namespace {
constexpr char kMechanism[] = "HT-SHA-256-NONE";
}

store::TokenHash FastTokens::slot_key(const std::string& bare, const std::string& ua,
                                      Slot s) const {
  std::string in = "s2proxy-fast";
  in += '\0';
  in += bare;
  in += '\0';
  in += ua;
  in += '\0';
  in += s == Slot::Current ? "current" : "previous";
  const std::string h = crypto::sha256(in);
  store::TokenHash out{};
  std::memcpy(out.data(), h.data(), out.size());
  return out;
}

std::string FastTokens::token_for(const std::string& bare, const std::string& ua,
                                  const store::FastToken& rec) const {
  std::string in = bare;
  in += '\0';
  in += ua;
  in += '\0';
  in += std::to_string(rec.created_ms);
  in += '\0';
  in += rec.nonce;
  return crypto::base64url_encode(crypto::hmac(crypto::HashAlg::Sha256, key_, in));
}

void FastTokens::issue(const std::string& bare_jid, const std::string& user_agent_id,
                       int64_t now_ms, std::function<void(std::optional<Issued>)> done) {
  auto acct = store_.find_account(bare_jid);
  if (!acct) {
    done(std::nullopt);
    return;
  }
  if (!acct.value()) {
    // First login of this account: its record is being written (vault) or
    // not yet; get-or-create is idempotent.
    store_.submit({store::op::CreateAccount{bare_jid}},
                  [this, bare_jid, user_agent_id, now_ms, done](store::WriteResult r) {
                    if (!r.ok() || r.ops.empty()) {
                      done(std::nullopt);
                      return;
                    }
                    issue_for(r.ops[0].account, bare_jid, user_agent_id, now_ms, done);
                  });
    return;
  }
  issue_for(acct.value()->account, bare_jid, user_agent_id, now_ms, std::move(done));
}

void FastTokens::issue_for(store::AccountNo account, const std::string& bare_jid,
                           const std::string& user_agent_id, int64_t now_ms,
                           std::function<void(std::optional<Issued>)> done) {
  store::FastToken rec;
  rec.account = account;
  rec.user_agent_id = user_agent_id;
  rec.mechanism = kMechanism;
  rec.created_ms = now_ms;
  rec.expiry_ms = now_ms + lifetime_ms_;
  rec.nonce = crypto::random_bytes(16);
  store::WriteBatch batch;
  // The current token (if any) stays valid as `previous` until the new one is used.
  auto cur = store_.get_fast_token(slot_key(bare_jid, user_agent_id, Slot::Current));
  if (cur && cur.value()) {
    batch.push_back(
        store::op::PutFastToken{slot_key(bare_jid, user_agent_id, Slot::Previous), *cur.value()});
  }
  batch.push_back(store::op::PutFastToken{slot_key(bare_jid, user_agent_id, Slot::Current), rec});
  Issued issued{token_for(bare_jid, user_agent_id, rec), rec.expiry_ms};
  store_.submit(std::move(batch), [done, issued](store::WriteResult r) {
    done(r.ok() ? std::optional<Issued>(issued) : std::nullopt);
  });
}

FastTokens::Verdict FastTokens::verify(const std::string& bare_jid,
                                       const std::string& user_agent_id,
                                       std::string_view initiator_hmac,
                                       std::optional<uint64_t> count, int64_t now_ms) {
  for (Slot slot : {Slot::Current, Slot::Previous}) {
    const auto key = slot_key(bare_jid, user_agent_id, slot);
    if (in_flight_->retired.count(key)) continue;
    auto rec = store_.get_fast_token(key);
    if (!rec || !rec.value()) continue;
    store::FastToken t = *rec.value();
    if (t.user_agent_id != user_agent_id || t.mechanism != kMechanism) continue;
    const std::string token = token_for(bare_jid, user_agent_id, t);
    if (!crypto::ht_verify_initiator(token, initiator_hmac)) continue;
    if (t.expired(now_ms)) return Verdict::Expired;
    if (count) {
      uint64_t last = t.last_count;
      if (auto it = in_flight_->counts.find(key); it != in_flight_->counts.end())
        last = std::max(last, it->second);
      if (*count <= last) return Verdict::Replayed;
      t.last_count = *count;
      in_flight_->counts[key] = *count;
    }
    last_token_ = token;
    store::WriteBatch batch{store::op::PutFastToken{key, t}};
    // The client has used the newest token: the one it replaced is retired.
    std::optional<store::TokenHash> retired;
    if (slot == Slot::Current) {
      retired = slot_key(bare_jid, user_agent_id, Slot::Previous);
      in_flight_->retired.insert(*retired);
      batch.push_back(store::op::DeleteFastToken{*retired});
    }
    store_.submit(std::move(batch), [in = in_flight_, key, retired,
                                     used = t.last_count](store::WriteResult r) {
      if (!r.ok()) return;  // not committed: keep refusing what this use made stale
      if (auto it = in->counts.find(key); it != in->counts.end() && it->second <= used)
        in->counts.erase(it);
      if (retired) in->retired.erase(*retired);
    });
    return Verdict::Ok;
  }
  return Verdict::Invalid;
}

void FastTokens::invalidate(const std::string& bare_jid, const std::string& user_agent_id) {
  const auto current = slot_key(bare_jid, user_agent_id, Slot::Current);
  const auto previous = slot_key(bare_jid, user_agent_id, Slot::Previous);
  in_flight_->retired.insert(current);
  in_flight_->retired.insert(previous);
  store_.submit({store::op::DeleteFastToken{current}, store::op::DeleteFastToken{previous}},
                [in = in_flight_, current, previous](store::WriteResult r) {
                  if (!r.ok()) return;
                  in->retired.erase(current);
                  in->retired.erase(previous);
                });
}

}  // namespace s2
