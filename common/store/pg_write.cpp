// The write operations on PostgreSQL, each run inside the writer's transaction
// (under the batch's savepoint). Semantics are the Mirror's, op by op
// (mirror_write.cpp has the reasons); the comments here say only how they map
// to SQL.
//
// Every op that names an account checks that it exists, as the Mirror does:
// a ForgetAccount may be ordered before late writes the hub had queued. An
// append locks its account's row (SELECT … FOR UPDATE): archive ids are
// assigned from that row, so two writers of one account (two nodes, later)
// queue on it instead of taking the same id.
#include <algorithm>
#include <string>
#include <utility>
#include <variant>

#include "common/store/pg_ops.h"
#include "common/store/schema.h"

namespace s2::store::pgdetail {
namespace {

using pg::Params;
using pg::Rows;
using schema::Key;

[[noreturn]] void fail(Errc c, std::string text) { throw OpError{Error{c, std::move(text)}}; }

std::string_view sv(const Key& k) { return k; }

// Tables whose rows all carry the account number (ForgetAccount clears them).
constexpr const char* kPerAccountTables[] = {"s2_credentials",   "s2_fast_tokens", "s2_messages",
                                             "s2_upstream_keys", "s2_refs",        "s2_sync",
                                             "s2_gaps",          "s2_devices",     "s2_outbox"};

class Applier {
 public:
  Applier(pg::Conn& c, int64_t window_ms, int64_t now_ms)
      : c_(c), window_ms_(window_ms), now_ms_(now_ms) {}

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
  void require_account(AccountNo a) {
    if (c_.exec("SELECT 1 FROM s2_accounts WHERE account = $1", Params().i64(a)).empty())
      fail(Errc::kNotFound, "unknown account " + std::to_string(a));
  }
  // The account's next archive id, its row locked for the transaction.
  ArchiveId lock_account(AccountNo a) {
    Rows r = c_.exec("SELECT next_archive_id FROM s2_accounts WHERE account = $1 FOR UPDATE",
                     Params().i64(a));
    if (r.empty()) fail(Errc::kNotFound, "unknown account " + std::to_string(a));
    return r.u64(0, 0);
  }
  uint64_t delete_account_rows(const char* table, AccountNo a) {
    return c_.exec(std::string("DELETE FROM ") + table + " WHERE account = $1", Params().i64(a))
        .affected();
  }
  void unindex(AccountNo a, const MessageRecord& m, ArchiveId id);

  pg::Conn& c_;
  int64_t window_ms_;
  int64_t now_ms_;
};

// --- accounts -----------------------------------------------------------------

void Applier::apply(const op::CreateAccount& o, OpResult& r) {
  if (o.bare_jid.empty()) fail(Errc::kInvalidArgument, "empty account JID");
  const Key name = schema::account_name_key(o.bare_jid);
  for (int attempt = 0; attempt < 2; ++attempt) {
    Rows found = c_.exec("SELECT account, bare_jid FROM s2_accounts WHERE name_key = $1",
                         Params().bytes(sv(name)));
    if (!found.empty()) {
      if (found.bytes(0, 1) != o.bare_jid) fail(Errc::kInvalidArgument, "account key collision");
      r.account = static_cast<AccountNo>(found.u64(0, 0));
      return;
    }
    // The sequence never hands a number out twice, so a stale reference (a
    // token, a queued write) can never reach a later account. Another node
    // may create the same account meanwhile: then read its number.
    Rows ins = c_.exec(
        "INSERT INTO s2_accounts (account, name_key, bare_jid, created_ms) "
        "VALUES (nextval('s2_account_seq'), $1, $2, $3) "
        "ON CONFLICT (name_key) DO NOTHING RETURNING account",
        Params().bytes(sv(name)).bytes(o.bare_jid).i64(now_ms_));
    if (!ins.empty()) {
      r.account = static_cast<AccountNo>(ins.u64(0, 0));
      return;
    }
  }
  fail(Errc::kIo, "account creation raced and lost twice");
}

void Applier::apply(const op::ForgetAccount& o, OpResult& r) {
  const Key name = schema::account_name_key(o.bare_jid);
  Rows found = c_.exec("SELECT account FROM s2_accounts WHERE name_key = $1 FOR UPDATE",
                       Params().bytes(sv(name)));
  if (found.empty()) return;  // nothing to forget: count 0
  const auto a = static_cast<AccountNo>(found.u64(0, 0));
  uint64_t n = 0;
  for (const char* t : kPerAccountTables) n += delete_account_rows(t, a);
  c_.exec("DELETE FROM s2_accounts WHERE account = $1", Params().i64(a));
  r.account = a;
  r.count = n + 1;
}

void Applier::apply(const op::PutCredentials& o, OpResult&) {
  require_account(o.account);
  c_.exec(
      "INSERT INTO s2_credentials (account, sealed) VALUES ($1, $2) "
      "ON CONFLICT (account) DO UPDATE SET sealed = EXCLUDED.sealed",
      Params().i64(o.account).bytes(o.sealed));
}

void Applier::apply(const op::DeleteCredentials& o, OpResult& r) {
  r.count =
      c_.exec("DELETE FROM s2_credentials WHERE account = $1", Params().i64(o.account)).affected();
}

// --- FAST tokens ----------------------------------------------------------------

void Applier::apply(const op::PutFastToken& o, OpResult&) {
  require_account(o.token.account);
  const FastToken& t = o.token;
  c_.exec(
      "INSERT INTO s2_fast_tokens (hash, account, user_agent_id, mechanism, expiry_ms, "
      "created_ms, flags, nonce, last_count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
      "ON CONFLICT (hash) DO UPDATE SET account = EXCLUDED.account, "
      "user_agent_id = EXCLUDED.user_agent_id, mechanism = EXCLUDED.mechanism, "
      "expiry_ms = EXCLUDED.expiry_ms, created_ms = EXCLUDED.created_ms, "
      "flags = EXCLUDED.flags, nonce = EXCLUDED.nonce, last_count = EXCLUDED.last_count",
      Params()
          .bytes(schema::token_key(o.hash))
          .i64(t.account)
          .bytes(t.user_agent_id)
          .bytes(t.mechanism)
          .i64(t.expiry_ms)
          .i64(t.created_ms)
          .i64(t.flags)
          .bytes(t.nonce)
          .u64(t.last_count));
}

void Applier::apply(const op::DeleteFastToken& o, OpResult& r) {
  r.count = c_.exec("DELETE FROM s2_fast_tokens WHERE hash = $1",
                    Params().bytes(schema::token_key(o.hash)))
                .affected();
}

void Applier::apply(const op::DeleteFastTokens& o, OpResult& r) {
  r.count = delete_account_rows("s2_fast_tokens", o.account);
}

void Applier::apply(const op::ExpireFastTokens& o, OpResult& r) {
  r.count = c_.exec("DELETE FROM s2_fast_tokens WHERE expiry_ms <= $1", Params().i64(o.now_ms))
                .affected();
}

// --- messages -----------------------------------------------------------------

// As the Mirror's unindex(): every key entry of message `id` that still points at it.
void Applier::unindex(AccountNo a, const MessageRecord& m, ArchiveId id) {
  auto del_up = [&](const Key& k) {
    c_.exec("DELETE FROM s2_upstream_keys WHERE account = $1 AND k = $2 AND archive_id = $3",
            Params().i64(a).bytes(sv(k)).u64(id));
  };
  auto del_ref = [&](const Key& k) {
    c_.exec("DELETE FROM s2_refs WHERE account = $1 AND k = $2 AND archive_id = $3",
            Params().i64(a).bytes(sv(k)).u64(id));
  };
  if (!m.upstream_stanza_id.empty()) del_up(schema::upstream_key(a, 'S', m.upstream_stanza_id));
  if (!m.fingerprint.empty()) del_up(schema::upstream_key(a, 'F', m.fingerprint));
  if (!m.origin_id.empty())
    del_ref(schema::ref_key(a, m.peer_bare, RefKind::kOriginId, m.origin_id));
  if (!m.id.empty() && m.id != m.origin_id) {
    const RefKind kind =
        m.direction == Direction::kOutgoing ? RefKind::kSentId : RefKind::kReceivedId;
    del_ref(schema::ref_key(a, m.peer_bare, kind, m.id));
  }
}

void Applier::apply(const op::PruneArchive& o, OpResult& r) {
  require_account(o.account);
  const ArchiveBounds b = read_bounds(c_, o.account);
  if (b.first_id == 0 || (o.before_ms == 0 && o.keep_last == 0)) return;
  uint64_t remaining = b.last_id - b.first_id + 1;
  Rows rows = c_.exec(std::string("SELECT ") + kMessageColumns +
                          " FROM s2_messages WHERE account = $1 ORDER BY archive_id LIMIT $2",
                      Params().i64(o.account).i64(o.max_batch));
  uint64_t n = 0;
  for (int i = 0; i < rows.size(); ++i) {
    const StoredMessage m = decode_message_row(rows, i);
    const bool over_count = o.keep_last != 0 && remaining > o.keep_last;
    const bool too_old = o.before_ms != 0 && m.archive_ms < o.before_ms;
    if (!over_count && !too_old) break;
    unindex(o.account, m.record, m.archive_id);
    c_.exec("DELETE FROM s2_messages WHERE account = $1 AND archive_id = $2",
            Params().i64(o.account).u64(m.archive_id));
    ++n;
    --remaining;
  }
  r.count = n;
}

// One round trip: s2_append() (pg_schema.cpp) runs the Mirror's Append on the
// server, with the key bytes built here, so an append costs one statement
// however many keys it claims.
void Applier::apply(const op::Append& o, OpResult& r) {
  const MessageRecord& m = o.message;
  if (m.direction != Direction::kIncoming && m.direction != Direction::kOutgoing) {
    fail(Errc::kInvalidArgument, "bad direction");
  }
  const AccountNo a = o.account;
  Params p;
  p.i64(a)
      .i64(m.timestamp_ms)
      .i64(static_cast<int64_t>(m.direction))
      .bytes(m.peer_bare)
      .bytes(sv(schema::peer_prefix(a, m.peer_bare)))
      .i64(m.flags)
      .bytes(m.upstream_stanza_id)
      .bytes(m.origin_id)
      .bytes(m.id)
      .bytes(m.fingerprint)
      .bytes(m.stanza);
  auto key_or_null = [&p](bool present, const Key& k) {
    if (present) {
      p.bytes(sv(k));
    } else {
      p.null_bytes();
    }
  };
  key_or_null(
      !m.upstream_stanza_id.empty(),
      m.upstream_stanza_id.empty() ? Key() : schema::upstream_key(a, 'S', m.upstream_stanza_id));
  key_or_null(!m.origin_id.empty(),
              m.origin_id.empty()
                  ? Key()
                  : schema::ref_key(a, m.peer_bare, RefKind::kOriginId, m.origin_id));
  key_or_null(!m.fingerprint.empty(),
              m.fingerprint.empty() ? Key() : schema::upstream_key(a, 'F', m.fingerprint));
  // The 'id' reference, unless the origin-id entry serves it (lookup_ref).
  const bool id_ref = !m.id.empty() && m.id != m.origin_id;
  const RefKind kind =
      m.direction == Direction::kOutgoing ? RefKind::kSentId : RefKind::kReceivedId;
  key_or_null(id_ref, id_ref ? schema::ref_key(a, m.peer_bare, kind, m.id) : Key());
  key_or_null(!o.resend_key.empty(),
              o.resend_key.empty()
                  ? Key()
                  : schema::ref_key(a, o.resend_scope, RefKind::kResendKey, o.resend_key));
  p.i64(window_ms_);
  if (o.outbox) {
    p.bytes(o.outbox->route).bytes(o.outbox->stanza).i64(o.outbox->created_ms);
  } else {
    p.null_bytes().null_bytes().null_i64();
  }
  Rows res = c_.exec(
      "SELECT o_status, o_archive_id, o_matched, o_outbox_seq FROM s2_append($1, $2, $3, $4, $5, "
      "$6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
      p);
  if (res.i64(0, 0) == 1) fail(Errc::kNotFound, "unknown account " + std::to_string(a));
  r.archive_id = res.u64(0, 1);
  switch (res.i64(0, 2)) {
    case 1:
      r.matched = DedupMatch::kUpstreamId;
      break;
    case 2:
      r.matched = DedupMatch::kOriginId;
      break;
    case 3:
      r.matched = DedupMatch::kFingerprint;
      break;
    default:
      r.matched = DedupMatch::kNone;
  }
  r.duplicate = r.matched != DedupMatch::kNone;
  r.outbox_seq = res.u64(0, 3);
}

void Applier::apply(const op::SetAccountSettings& o, OpResult& r) {
  Rows old = c_.exec("SELECT settings FROM s2_accounts WHERE account = $1 FOR UPDATE",
                     Params().i64(o.account));
  if (old.empty()) fail(Errc::kNotFound, "unknown account " + std::to_string(o.account));
  r.old_flags = static_cast<uint32_t>(old.u64(0, 0));
  c_.exec("UPDATE s2_accounts SET settings = $2 WHERE account = $1",
          Params().i64(o.account).i64((r.old_flags & ~o.clear) | o.set));
}

void Applier::apply(const op::SetMessageFlags& o, OpResult& r) {
  Rows old =
      c_.exec("SELECT flags FROM s2_messages WHERE account = $1 AND archive_id = $2 FOR UPDATE",
              Params().i64(o.account).u64(o.archive_id));
  if (old.empty()) fail(Errc::kNotFound, "unknown archive id");
  r.old_flags = static_cast<uint32_t>(old.u64(0, 0));
  c_.exec("UPDATE s2_messages SET flags = $3 WHERE account = $1 AND archive_id = $2",
          Params().i64(o.account).u64(o.archive_id).i64((r.old_flags & ~o.clear) | o.set));
}

// --- sync ---------------------------------------------------------------------

void Applier::apply(const op::SetSyncCursor& o, OpResult&) {
  require_account(o.account);
  c_.exec(
      "INSERT INTO s2_sync (account, upstream_id) VALUES ($1, $2) "
      "ON CONFLICT (account) DO UPDATE SET upstream_id = EXCLUDED.upstream_id",
      Params().i64(o.account).bytes(o.upstream_id));
}

void Applier::apply(const op::AddGap& o, OpResult& r) {
  Gap g = o.gap;
  g.after_id = lock_account(o.account) - 1;
  // Two failed catch-ups with nothing archived in between are one hole.
  Rows old =
      c_.exec("SELECT from_ms, to_ms, reason FROM s2_gaps WHERE account = $1 AND after_id = $2",
              Params().i64(o.account).u64(g.after_id));
  if (!old.empty()) {
    g.from_ms = std::min(g.from_ms, old.i64(0, 0));
    g.to_ms = std::max(g.to_ms, old.i64(0, 1));
    if (g.reason.empty()) g.reason = old.bytes(0, 2);
  }
  c_.exec(
      "INSERT INTO s2_gaps (account, after_id, from_ms, to_ms, reason) VALUES ($1, $2, $3, $4, "
      "$5) ON CONFLICT (account, after_id) DO UPDATE SET from_ms = EXCLUDED.from_ms, "
      "to_ms = EXCLUDED.to_ms, reason = EXCLUDED.reason",
      Params().i64(o.account).u64(g.after_id).i64(g.from_ms).i64(g.to_ms).bytes(g.reason));
  r.archive_id = g.after_id;
}

// --- devices ------------------------------------------------------------------

void Applier::apply(const op::UpdateDevice& o, OpResult&) {
  require_account(o.account);
  Params p;
  p.i64(o.account).bytes(sv(schema::device_key(o.account, o.device_id))).bytes(o.device_id);
  if (o.last_delivered)
    p.u64(*o.last_delivered);
  else
    p.null_i64();
  if (o.sm_state)
    p.bytes(*o.sm_state);
  else
    p.null_bytes();
  if (o.push)
    p.bytes(*o.push);
  else
    p.null_bytes();
  if (o.csi_state)
    p.i64(*o.csi_state);
  else
    p.null_i64();
  if (o.last_seen_ms)
    p.i64(*o.last_seen_ms);
  else
    p.null_i64();
  // Unset fields keep their value (or start empty on a new record).
  c_.exec(
      "INSERT INTO s2_devices AS d (account, k, device_id, last_delivered, sm_state, push, "
      "csi_state, last_seen_ms) VALUES ($1, $2, $3, COALESCE($4, 0), COALESCE($5, ''::bytea), "
      "COALESCE($6, ''::bytea), COALESCE($7, 0), COALESCE($8, 0)) "
      "ON CONFLICT (account, k) DO UPDATE SET "
      "last_delivered = COALESCE($4, d.last_delivered), sm_state = COALESCE($5, d.sm_state), "
      "push = COALESCE($6, d.push), csi_state = COALESCE($7, d.csi_state), "
      "last_seen_ms = COALESCE($8, d.last_seen_ms)",
      p);
}

void Applier::apply(const op::DeleteDevice& o, OpResult& r) {
  r.count = c_.exec("DELETE FROM s2_devices WHERE account = $1 AND k = $2",
                    Params().i64(o.account).bytes(sv(schema::device_key(o.account, o.device_id))))
                .affected();
}

// --- outbox -------------------------------------------------------------------

void Applier::apply(const op::EnqueueOutbox& o, OpResult& r) {
  Rows seq = c_.exec(
      "UPDATE s2_accounts SET next_outbox_seq = next_outbox_seq + 1 WHERE account = $1 "
      "RETURNING next_outbox_seq - 1",
      Params().i64(o.account));
  if (seq.empty()) fail(Errc::kNotFound, "unknown account " + std::to_string(o.account));
  r.outbox_seq = seq.u64(0, 0);
  c_.exec(
      "INSERT INTO s2_outbox (account, seq, archive_id, route, stanza, created_ms) "
      "VALUES ($1, $2, 0, $3, $4, $5)",
      Params()
          .i64(o.account)
          .u64(r.outbox_seq)
          .bytes(o.item.route)
          .bytes(o.item.stanza)
          .i64(o.item.created_ms));
}

void Applier::apply(const op::RemoveOutbox& o, OpResult& r) {
  r.count = c_.exec("DELETE FROM s2_outbox WHERE account = $1 AND seq = $2",
                    Params().i64(o.account).u64(o.seq))
                .affected();
}

void Applier::apply(const op::ClearResendKeys& o, OpResult& r) {
  for (const auto& k : o.keys) {
    r.count += c_.exec("DELETE FROM s2_refs WHERE account = $1 AND k = $2",
                       Params().i64(o.account).bytes(
                           sv(schema::ref_key(o.account, o.scope, RefKind::kResendKey, k))))
                   .affected();
  }
}

}  // namespace

std::vector<OpResult> apply_batch(pg::Conn& c, const WriteBatch& batch,
                                  int64_t fingerprint_window_ms, int64_t now_ms) {
  Applier ap(c, fingerprint_window_ms, now_ms);
  std::vector<OpResult> out(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    std::visit([&](const auto& o) { ap.apply(o, out[i]); }, batch[i]);
  }
  return out;
}

// One statement (one round trip, one snapshot): resolve_ref runs on the
// daemon's loop for every entering message that refers to another.
std::optional<ArchiveId> lookup_ref(pg::Conn& c, AccountNo a, std::string_view peer, RefKind kind,
                                    std::string_view ref) {
  const bool direct_only = kind == RefKind::kOriginId || kind == RefKind::kResendKey;
  const Direction want = kind == RefKind::kSentId ? Direction::kOutgoing : Direction::kIncoming;
  Rows r = c.exec(
      "SELECT (SELECT archive_id FROM s2_refs WHERE account = $1 AND k = $2), "
      "(SELECT m.archive_id FROM s2_refs o JOIN s2_messages m "
      "ON m.account = o.account AND m.archive_id = o.archive_id "
      "WHERE o.account = $1 AND o.k = $3 AND m.direction = $4 AND m.msg_id = $5)",
      Params()
          .i64(a)
          .bytes(sv(schema::ref_key(a, peer, kind, ref)))
          .bytes(sv(schema::ref_key(a, peer, RefKind::kOriginId, ref)))
          .i64(static_cast<int64_t>(want))
          .bytes(ref));
  std::optional<ArchiveId> found;
  if (!r.null(0, 0)) found = r.u64(0, 0);
  if (direct_only) return found;
  // An 'id' equal to its message's origin-id is indexed only as the
  // origin-id; such a message may be newer than the one the 'id' entry
  // names, and the newest wins (as the Mirror's lookup_ref()).
  if (r.null(0, 1)) return found;
  const ArchiveId via_origin = r.u64(0, 1);
  if (found && *found > via_origin) return found;
  return via_origin;
}

}  // namespace s2::store::pgdetail
