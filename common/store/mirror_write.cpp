// The write operations, each applied inside the writer's transaction.
//
// Every op that names an account first checks that the account exists: a
// ForgetAccount may be ordered before late writes the hub had already queued,
// and those must fail (kNotFound) rather than leave orphan records behind.
//
// Append is the hot path and is written to touch as few B-tree pages as it
// can: the dedup keys are inserted with insert-or-get (one descent that both
// checks and claims the key), account counters are cached per transaction
// (TxnContext), and the 'id' reference is not stored separately when it
// equals the origin-id (most clients make them equal), lookup_ref() falls
// back to the origin-id entry instead. Random-keyed indexes cost one dirty
// page per insert once the tree is large, and that is what limits batches.
//
// Dedup order is ARCHITECTURE §4: upstream stanza-id, then origin-id per peer,
// then a windowed fingerprint. A duplicate returns the existing archive id and
// points whichever of its keys were not indexed yet at it (a device-sent
// message is first stored with only its origin-id; when MAM later returns it
// with the upstream stanza-id, that id must resolve to the same archive id).
#include <algorithm>
#include <string>
#include <utility>
#include <variant>

#include "common/store/mirror_ops.h"

namespace s2::store::detail {
namespace {

using namespace schema;  // NOLINT(google-build-using-namespace): one file of schema calls

[[noreturn]] void fail(Errc c, std::string text) { throw OpError{Error{c, std::move(text)}}; }

class Applier {
 public:
  explicit Applier(TxnContext& ctx) : ctx_(ctx), d_(ctx.dbs), txn_(ctx.txn) {}

  void apply(const op::CreateAccount& o, OpResult& r);
  void apply(const op::ForgetAccount& o, OpResult& r);
  void apply(const op::PutCredentials& o, OpResult& r);
  void apply(const op::DeleteCredentials& o, OpResult& r);
  void apply(const op::PutFastToken& o, OpResult& r);
  void apply(const op::DeleteFastToken& o, OpResult& r);
  void apply(const op::DeleteFastTokens& o, OpResult& r);
  void apply(const op::ExpireFastTokens& o, OpResult& r);
  void apply(const op::Append& o, OpResult& r);
  void apply(const op::SetMessageFlags& o, OpResult& r);
  void apply(const op::SetAccountSettings& o, OpResult& r);
  void apply(const op::SetSyncCursor& o, OpResult& r);
  void apply(const op::AddGap& o, OpResult& r);
  void apply(const op::UpdateDevice& o, OpResult& r);
  void apply(const op::DeleteDevice& o, OpResult& r);
  void apply(const op::EnqueueOutbox& o, OpResult& r);
  void apply(const op::RemoveOutbox& o, OpResult& r);
  void apply(const op::ClearResendKeys& o, OpResult& r);
  void apply(const op::PruneArchive& o, OpResult& r);

 private:
  AccountInfoValue& account(AccountNo a, bool modify) {
    AccountInfoValue* v = ctx_.account(a, modify);
    if (v == nullptr) fail(Errc::kNotFound, "unknown account " + std::to_string(a));
    return *v;
  }
  void require_account(AccountNo a) { account(a, false); }
  uint64_t delete_prefix(lmdb::Dbi dbi, std::string_view prefix) {
    uint64_t n = 0;
    lmdb::Cursor c(txn_, dbi);
    for (bool ok = c.seek(prefix); ok && has_prefix(c.key(), prefix); ok = c.next()) {
      c.del();
      ++n;
    }
    return n;
  }
  // Full scan: fast_tokens is keyed by token hash so that login is one get;
  // per-account deletion and expiry are rare maintenance (password change,
  // forget, an hourly sweep) and pay O(all tokens) instead of an extra index.
  template <class Pred>
  uint64_t delete_tokens_if(Pred pred) {
    uint64_t n = 0;
    lmdb::Cursor c(txn_, d_.fast_tokens);
    for (bool ok = c.first(); ok; ok = c.next()) {
      if (pred(decode_fast_token(c.val()))) {
        c.del();
        ++n;
      }
    }
    return n;
  }
  DedupMatch claim_keys(AccountNo a, const MessageRecord& m, ArchiveId id, ArchiveId& existing);
  void unindex(AccountNo a, const MessageRecord& m, ArchiveId id);
  // Deletes `key` if it still points at `id` (the first 8 bytes of its value).
  void del_if_points_at(lmdb::Dbi dbi, std::string_view key, ArchiveId id) {
    if (auto v = txn_.get(dbi, key); v && v->size() >= 8 && get_u64(*v, 0) == id)
      txn_.del(dbi, key);
  }
  void index(AccountNo a, const MessageRecord& m, ArchiveId id);

  TxnContext& ctx_;
  const Dbs& d_;
  lmdb::Txn& txn_;
};

// --- accounts -----------------------------------------------------------------

void Applier::apply(const op::CreateAccount& o, OpResult& r) {
  if (o.bare_jid.empty()) fail(Errc::kInvalidArgument, "empty account JID");
  Key name = account_name_key(o.bare_jid);
  if (auto v = txn_.get(d_.accounts, name)) {
    AccountNo a = get_u32(*v, 0);
    // Long JIDs are hashed in the key; the record holds the full name.
    if (account(a, false).bare_jid != o.bare_jid) {
      fail(Errc::kInvalidArgument, "account key collision");
    }
    r.account = a;
    return;
  }
  // Account numbers are never reused, so a stale reference (a token, a
  // queued write) can never reach a later account.
  AccountNo a = 1;
  if (auto v = txn_.get(d_.meta, "next_account")) a = get_u32(*v, 0);
  if (a == 0) fail(Errc::kIo, "account numbers exhausted");
  std::string next;
  put_u32(next, a + 1);
  txn_.put(d_.meta, "next_account", next);
  std::string no;
  put_u32(no, a);
  txn_.put(d_.accounts, name, no);
  AccountInfoValue info;
  info.bare_jid = o.bare_jid;
  info.created_ms = ctx_.now_ms;
  ctx_.created(a, std::move(info));
  r.account = a;
}

void Applier::apply(const op::ForgetAccount& o, OpResult& r) {
  Key name = account_name_key(o.bare_jid);
  auto v = txn_.get(d_.accounts, name);
  if (!v) return;  // nothing to forget: count 0
  AccountNo a = get_u32(*v, 0);
  uint64_t n = 0;
  Key prefix = account_key(a);
  for (lmdb::Dbi dbi : d_.per_account()) n += delete_prefix(dbi, prefix);
  n += delete_tokens_if([a](const FastToken& t) { return t.account == a; });
  txn_.del(d_.accounts, name);
  ctx_.forgotten(a);
  r.account = a;
  r.count = n + 1;
}

void Applier::apply(const op::PutCredentials& o, OpResult&) {
  require_account(o.account);
  txn_.put(d_.credentials, account_key(o.account), o.sealed);
}

void Applier::apply(const op::DeleteCredentials& o, OpResult& r) {
  r.count = txn_.del(d_.credentials, account_key(o.account)) ? 1 : 0;
}

// --- FAST tokens ----------------------------------------------------------------

void Applier::apply(const op::PutFastToken& o, OpResult&) {
  require_account(o.token.account);
  txn_.put(d_.fast_tokens, token_key(o.hash), encode_fast_token(o.token));
}

void Applier::apply(const op::DeleteFastToken& o, OpResult& r) {
  r.count = txn_.del(d_.fast_tokens, token_key(o.hash)) ? 1 : 0;
}

void Applier::apply(const op::DeleteFastTokens& o, OpResult& r) {
  AccountNo a = o.account;
  r.count = delete_tokens_if([a](const FastToken& t) { return t.account == a; });
}

void Applier::apply(const op::ExpireFastTokens& o, OpResult& r) {
  int64_t now = o.now_ms;
  r.count = delete_tokens_if([now](const FastToken& t) { return t.expired(now); });
}

// --- messages -----------------------------------------------------------------

// Inserts the dedup keys of a new message pointing at `id`, stopping at the
// first key that already exists: then `existing` is the archived copy, and
// the keys claimed so far are re-pointed at it.
DedupMatch Applier::claim_keys(AccountNo a, const MessageRecord& m, ArchiveId id,
                               ArchiveId& existing) {
  Key sid_key, oid_key;
  std::string id_ms = encode_id_ms(id, m.timestamp_ms);
  if (!m.upstream_stanza_id.empty()) {
    sid_key = upstream_key(a, 'S', m.upstream_stanza_id);
    if (auto v = txn_.put_or_get(d_.by_upstream_id, sid_key, id_ms)) {
      existing = decode_id_ms(*v).first;
      if (!m.origin_id.empty()) {  // back-fill, keep whatever is there
        std::string idb;
        put_u64(idb, existing);
        txn_.put_if_absent(d_.by_ref, ref_key(a, m.peer_bare, RefKind::kOriginId, m.origin_id),
                           idb);
      }
      return DedupMatch::kUpstreamId;
    }
  }
  std::string id_bytes = id_ms.substr(0, 8);
  DedupMatch how = DedupMatch::kNone;
  if (!m.origin_id.empty()) {
    oid_key = ref_key(a, m.peer_bare, RefKind::kOriginId, m.origin_id);
    if (auto v = txn_.put_or_get(d_.by_ref, oid_key, id_bytes)) {
      existing = get_u64(*v, 0);
      how = DedupMatch::kOriginId;
    }
  }
  if (how == DedupMatch::kNone && !m.fingerprint.empty()) {
    Key fp_key = upstream_key(a, 'F', m.fingerprint);
    if (auto v = txn_.get(d_.by_upstream_id, fp_key)) {
      auto [fid, ts] = decode_id_ms(*v);
      int64_t delta = ts > m.timestamp_ms ? ts - m.timestamp_ms : m.timestamp_ms - ts;
      if (delta <= ctx_.fingerprint_window_ms) {
        existing = fid;
        how = DedupMatch::kFingerprint;
      }
    }
    // New, or the old match expired: the window restarts at this message.
    if (how == DedupMatch::kNone) txn_.put(d_.by_upstream_id, fp_key, id_ms);
  }
  if (how == DedupMatch::kNone) return how;
  // Re-point the keys this message claimed above at the archived copy.
  std::string existing_bytes;
  put_u64(existing_bytes, existing);
  if (!sid_key.empty())
    txn_.put(d_.by_upstream_id, sid_key, encode_id_ms(existing, m.timestamp_ms));
  if (how == DedupMatch::kFingerprint && !oid_key.empty())
    txn_.put(d_.by_ref, oid_key, existing_bytes);
  return how;
}

// The non-dedup indexes of a new message.
void Applier::index(AccountNo a, const MessageRecord& m, ArchiveId id) {
  txn_.put(d_.by_peer, peer_key(a, m.peer_bare, id), {});
  // Served by the origin-id entry: lookup_ref() falls back to it.
  if (m.id.empty() || m.id == m.origin_id) return;
  // A bare 'id' may repeat ("1"); the newest message wins, which is what a
  // receipt or correction arriving now most likely refers to.
  RefKind kind = m.direction == Direction::kOutgoing ? RefKind::kSentId : RefKind::kReceivedId;
  std::string idb;
  put_u64(idb, id);
  txn_.put(d_.by_ref, ref_key(a, m.peer_bare, kind, m.id), idb);
}

// Every entry index() and claim_keys() wrote for message `id`, where it still
// points at it (a later message may own a shared key: a repeated 'id', a
// fingerprint whose window restarted).
void Applier::unindex(AccountNo a, const MessageRecord& m, ArchiveId id) {
  txn_.del(d_.by_peer, peer_key(a, m.peer_bare, id));
  if (!m.upstream_stanza_id.empty())
    del_if_points_at(d_.by_upstream_id, upstream_key(a, 'S', m.upstream_stanza_id), id);
  if (!m.fingerprint.empty())
    del_if_points_at(d_.by_upstream_id, upstream_key(a, 'F', m.fingerprint), id);
  if (!m.origin_id.empty())
    del_if_points_at(d_.by_ref, ref_key(a, m.peer_bare, RefKind::kOriginId, m.origin_id), id);
  if (!m.id.empty() && m.id != m.origin_id) {
    const RefKind kind =
        m.direction == Direction::kOutgoing ? RefKind::kSentId : RefKind::kReceivedId;
    del_if_points_at(d_.by_ref, ref_key(a, m.peer_bare, kind, m.id), id);
  }
}

void Applier::apply(const op::PruneArchive& o, OpResult& r) {
  require_account(o.account);
  const ArchiveBounds b = read_bounds(d_, txn_, o.account);
  if (b.first_id == 0 || (o.before_ms == 0 && o.keep_last == 0)) return;
  uint64_t remaining = b.last_id - b.first_id + 1;
  const Key prefix = account_key(o.account);
  lmdb::Cursor c(txn_, d_.messages);
  uint64_t n = 0;
  for (bool ok = c.seek(prefix); ok && has_prefix(c.key(), prefix) && n < o.max_batch;
       ok = c.next()) {
    const bool over_count = o.keep_last != 0 && remaining > o.keep_last;
    const bool too_old = o.before_ms != 0 && message_archive_ms(c.val()) < o.before_ms;
    if (!over_count && !too_old) break;
    const ArchiveId id = key_suffix_u64(c.key());
    const StoredMessage m = decode_message(id, c.val());
    unindex(o.account, m.record, id);
    c.del();
    ++n;
    --remaining;
  }
  r.count = n;
}

void Applier::apply(const op::Append& o, OpResult& r) {
  const MessageRecord& m = o.message;
  if (m.direction != Direction::kIncoming && m.direction != Direction::kOutgoing) {
    fail(Errc::kInvalidArgument, "bad direction");
  }
  AccountNo a = o.account;
  AccountInfoValue& info = account(a, false);
  ArchiveId id = info.next_archive_id;
  ArchiveId existing = 0;
  if (DedupMatch how = claim_keys(a, m, id, existing); how != DedupMatch::kNone) {
    r.archive_id = existing;
    r.duplicate = true;
    r.matched = how;
    return;
  }
  AccountInfoValue& w = account(a, true);
  ++w.next_archive_id;
  // Archive time never goes backwards in archive order (see StoredMessage).
  int64_t archive_ms = std::max(m.timestamp_ms, w.last_archive_ms);
  w.last_archive_ms = archive_ms;
  txn_.put(d_.messages, message_key(a, id), encode_message(m, archive_ms));
  index(a, m, id);
  if (!o.resend_key.empty()) {
    std::string idb;
    put_u64(idb, id);
    txn_.put(d_.by_ref, ref_key(a, o.resend_scope, RefKind::kResendKey, o.resend_key), idb);
  }
  if (o.outbox) {
    r.outbox_seq = w.next_outbox_seq++;
    txn_.put(d_.outbox, outbox_key(a, r.outbox_seq), encode_outbox(id, *o.outbox));
  }
  r.archive_id = id;
}

void Applier::apply(const op::SetAccountSettings& o, OpResult& r) {
  AccountInfoValue& w = account(o.account, true);
  r.old_flags = w.settings;
  w.settings = (w.settings & ~o.clear) | o.set;
}

void Applier::apply(const op::SetMessageFlags& o, OpResult& r) {
  Key key = message_key(o.account, o.archive_id);
  auto v = txn_.get(d_.messages, key);
  if (!v) fail(Errc::kNotFound, "unknown archive id");
  std::string value(*v);
  if (value.size() < kMessageFlagsOffset + 4) throw CorruptError{"short message value"};
  r.old_flags = get_u32(value, kMessageFlagsOffset);
  std::string flags;
  put_u32(flags, (r.old_flags & ~o.clear) | o.set);
  value.replace(kMessageFlagsOffset, 4, flags);
  txn_.put(d_.messages, key, value);
}

// --- sync ---------------------------------------------------------------------

void Applier::apply(const op::SetSyncCursor& o, OpResult&) {
  require_account(o.account);
  txn_.put(d_.sync, sync_cursor_key(o.account), o.upstream_id);
}

void Applier::apply(const op::AddGap& o, OpResult& r) {
  const AccountInfoValue& info = account(o.account, false);
  Gap g = o.gap;
  g.after_id = info.next_archive_id - 1;
  Key key = gap_key(o.account, g.after_id);
  // Two failed catch-ups with nothing archived in between are one hole.
  if (auto v = txn_.get(d_.sync, key)) {
    Gap old = decode_gap(g.after_id, *v);
    g.from_ms = std::min(g.from_ms, old.from_ms);
    g.to_ms = std::max(g.to_ms, old.to_ms);
    if (g.reason.empty()) g.reason = old.reason;
  }
  txn_.put(d_.sync, key, encode_gap(g));
  r.archive_id = g.after_id;
}

// --- devices ------------------------------------------------------------------

void Applier::apply(const op::UpdateDevice& o, OpResult&) {
  require_account(o.account);
  Key key = device_key(o.account, o.device_id);
  DeviceRecord d;
  if (auto v = txn_.get(d_.devices, key)) {
    d = decode_device(*v);
  } else {
    d.device_id = o.device_id;
  }
  if (o.last_delivered) d.last_delivered = *o.last_delivered;
  if (o.sm_state) d.sm_state = *o.sm_state;
  if (o.push) d.push = *o.push;
  if (o.csi_state) d.csi_state = *o.csi_state;
  if (o.last_seen_ms) d.last_seen_ms = *o.last_seen_ms;
  txn_.put(d_.devices, key, encode_device(d));
}

void Applier::apply(const op::DeleteDevice& o, OpResult& r) {
  r.count = txn_.del(d_.devices, device_key(o.account, o.device_id)) ? 1 : 0;
}

// --- outbox -------------------------------------------------------------------

void Applier::apply(const op::EnqueueOutbox& o, OpResult& r) {
  r.outbox_seq = account(o.account, true).next_outbox_seq++;
  txn_.put(d_.outbox, outbox_key(o.account, r.outbox_seq), encode_outbox(0, o.item));
}

void Applier::apply(const op::RemoveOutbox& o, OpResult& r) {
  r.count = txn_.del(d_.outbox, outbox_key(o.account, o.seq)) ? 1 : 0;
}

void Applier::apply(const op::ClearResendKeys& o, OpResult& r) {
  for (const auto& k : o.keys)
    if (txn_.del(d_.by_ref, ref_key(o.account, o.scope, RefKind::kResendKey, k))) ++r.count;
}

}  // namespace

AccountInfoValue* TxnContext::account(AccountNo a, bool modify) {
  auto it = infos_.find(a);
  if (it == infos_.end()) {
    auto v = txn.get(dbs.account_info, account_key(a));
    if (!v) return nullptr;
    it = infos_.emplace(a, Cached{decode_account_info(*v), false}).first;
  }
  it->second.dirty |= modify;
  return &it->second.value;
}

void TxnContext::created(AccountNo a, AccountInfoValue v) {
  infos_[a] = Cached{std::move(v), true};
}

void TxnContext::flush() {
  for (auto& [a, c] : infos_) {
    if (c.dirty) txn.put(dbs.account_info, account_key(a), encode_account_info(c.value));
    c.dirty = false;
  }
}

std::vector<OpResult> apply_batch(TxnContext& ctx, const WriteBatch& batch) {
  Applier ap(ctx);
  std::vector<OpResult> out(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    std::visit([&](const auto& o) { ap.apply(o, out[i]); }, batch[i]);
  }
  return out;
}

std::optional<ArchiveId> lookup_ref(const Dbs& d, const lmdb::Txn& txn, AccountNo a,
                                    std::string_view peer, RefKind kind, std::string_view ref) {
  std::optional<ArchiveId> found;
  if (auto v = txn.get(d.by_ref, ref_key(a, peer, kind, ref))) found = get_u64(*v, 0);
  if (kind == RefKind::kOriginId || kind == RefKind::kResendKey) return found;
  // An 'id' equal to its message's origin-id is indexed only as the
  // origin-id. Such a message may be newer than the one the 'id' entry
  // names, and the newest wins.
  auto v = txn.get(d.by_ref, ref_key(a, peer, RefKind::kOriginId, ref));
  if (!v) return found;
  ArchiveId id = get_u64(*v, 0);
  if (found && *found > id) return found;
  auto mv = txn.get(d.messages, message_key(a, id));
  if (!mv) return found;
  StoredMessage m = decode_message(id, *mv);
  Direction want = kind == RefKind::kSentId ? Direction::kOutgoing : Direction::kIncoming;
  if (m.record.direction != want || m.record.id != ref) return found;
  return id;
}

}  // namespace s2::store::detail
