// The PostgreSQL store's tables (schema 1), created on first open.
//
//   table              key                        holds
//   s2_meta            key                        'schema' → version
//   s2_accounts        account                    name_key (unique), bare JID, state, created,
//                                                 settings, the per-account counters, and the
//                                                 owner: node, address, epoch (pg_leases.h)
//   s2_credentials     account                    sealed vault blob
//   s2_fast_tokens     hash (SHA-256 of token)    the token record; indexed by account
//   s2_messages        account, archive_id        the record's fields as columns; indexed by
//                                                 (account, peer_key, id) for MAM `with` and
//                                                 (account, archive_ms, id) for start/end
//   s2_upstream_keys   account, k                 dedup keys: upstream stanza-id, fingerprint
//   s2_refs            account, k                 references: origin-id, sent/received id,
//                                                 resend keys
//   s2_sync            account                    the sync cursor
//   s2_gaps            account, after_id          gaps
//   s2_devices         account, k                 device records
//   s2_outbox          account, seq               pending device-sent stanzas
//
// `name_key`, `peer_key` and every `k` are the Mirror's key bytes (schema.h):
// strings longer than 160 bytes are hashed there, so a hostile JID or id
// cannot exceed a B-tree entry's size limit, and equality is the Mirror's.
// Strings are bytea: the store's strings are opaque bytes, and text would
// refuse a NUL.
//
// Creation runs under a transaction-level advisory lock, so two nodes
// opening an empty database at once create it once.
#include <string>

#include "common/store/pg_ops.h"

namespace s2::store::pgdetail {
namespace {

constexpr const char* kCreate = R"SQL(
CREATE TABLE IF NOT EXISTS s2_meta (key text PRIMARY KEY, value bigint NOT NULL);
CREATE SEQUENCE IF NOT EXISTS s2_account_seq AS bigint MINVALUE 1 MAXVALUE 4294967295 NO CYCLE;
CREATE TABLE IF NOT EXISTS s2_accounts (
  account bigint PRIMARY KEY,
  name_key bytea NOT NULL UNIQUE,
  bare_jid bytea NOT NULL,
  state smallint NOT NULL DEFAULT 0,
  created_ms bigint NOT NULL,
  settings bigint NOT NULL DEFAULT 0,
  next_archive_id bigint NOT NULL DEFAULT 1,
  last_archive_ms bigint NOT NULL DEFAULT -9223372036854775808,
  next_outbox_seq bigint NOT NULL DEFAULT 1,
  owner_epoch bigint NOT NULL DEFAULT 0,
  owner_node bytea NOT NULL DEFAULT '',
  owner_addr bytea NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS s2_credentials (
  account bigint PRIMARY KEY,
  sealed bytea NOT NULL);
CREATE TABLE IF NOT EXISTS s2_fast_tokens (
  hash bytea PRIMARY KEY,
  account bigint NOT NULL,
  user_agent_id bytea NOT NULL,
  mechanism bytea NOT NULL,
  expiry_ms bigint NOT NULL,
  created_ms bigint NOT NULL,
  flags bigint NOT NULL,
  nonce bytea NOT NULL,
  last_count bigint NOT NULL);
CREATE INDEX IF NOT EXISTS s2_fast_tokens_account ON s2_fast_tokens (account);
CREATE TABLE IF NOT EXISTS s2_messages (
  account bigint NOT NULL,
  archive_id bigint NOT NULL,
  archive_ms bigint NOT NULL,
  timestamp_ms bigint NOT NULL,
  direction smallint NOT NULL,
  peer bytea NOT NULL,
  peer_key bytea NOT NULL,
  flags bigint NOT NULL,
  upstream_stanza_id bytea NOT NULL,
  origin_id bytea NOT NULL,
  msg_id bytea NOT NULL,
  fingerprint bytea NOT NULL,
  stanza bytea NOT NULL,
  PRIMARY KEY (account, archive_id));
CREATE INDEX IF NOT EXISTS s2_messages_peer ON s2_messages (account, peer_key, archive_id);
CREATE INDEX IF NOT EXISTS s2_messages_time ON s2_messages (account, archive_ms, archive_id);
CREATE TABLE IF NOT EXISTS s2_upstream_keys (
  account bigint NOT NULL,
  k bytea NOT NULL,
  archive_id bigint NOT NULL,
  ts_ms bigint NOT NULL,
  PRIMARY KEY (account, k));
CREATE TABLE IF NOT EXISTS s2_refs (
  account bigint NOT NULL,
  k bytea NOT NULL,
  archive_id bigint NOT NULL,
  PRIMARY KEY (account, k));
CREATE TABLE IF NOT EXISTS s2_sync (
  account bigint PRIMARY KEY,
  upstream_id bytea NOT NULL);
CREATE TABLE IF NOT EXISTS s2_gaps (
  account bigint NOT NULL,
  after_id bigint NOT NULL,
  from_ms bigint NOT NULL,
  to_ms bigint NOT NULL,
  reason bytea NOT NULL,
  PRIMARY KEY (account, after_id));
CREATE TABLE IF NOT EXISTS s2_devices (
  account bigint NOT NULL,
  k bytea NOT NULL,
  device_id bytea NOT NULL,
  last_delivered bigint NOT NULL,
  sm_state bytea NOT NULL,
  push bytea NOT NULL,
  csi_state smallint NOT NULL,
  last_seen_ms bigint NOT NULL,
  PRIMARY KEY (account, k));
-- One append in one round trip: the Mirror's Append (mirror_write.cpp) with
-- the key bytes computed by the caller. o_status 1: no such account.
-- o_matched: 0 new, 1 upstream stanza-id, 2 origin-id, 3 fingerprint.
CREATE OR REPLACE FUNCTION s2_append(
    p_account bigint, p_ts bigint, p_direction bigint, p_peer bytea, p_peer_key bytea,
    p_flags bigint, p_sid bytea, p_oid bytea, p_msg_id bytea, p_fp bytea, p_stanza bytea,
    p_sid_key bytea, p_oid_key bytea, p_fp_key bytea, p_id_ref_key bytea, p_resend_key bytea,
    p_window bigint, p_route bytea, p_ob_stanza bytea, p_ob_created bigint,
    OUT o_status int, OUT o_archive_id bigint, OUT o_matched int, OUT o_outbox_seq bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  v_id bigint;
  v_existing bigint;
  v_ts bigint;
  v_ms bigint;
  v_outbox int := CASE WHEN p_route IS NULL THEN 0 ELSE 1 END;
  n int;
BEGIN
  o_status := 0; o_matched := 0; o_outbox_seq := 0; o_archive_id := 0;
  SELECT a.next_archive_id INTO v_id FROM s2_accounts a WHERE a.account = p_account FOR UPDATE;
  IF NOT FOUND THEN o_status := 1; RETURN; END IF;
  IF p_sid_key IS NOT NULL THEN
    INSERT INTO s2_upstream_keys AS u (account, k, archive_id, ts_ms)
      VALUES (p_account, p_sid_key, v_id, p_ts) ON CONFLICT (account, k) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
      SELECT u.archive_id INTO v_existing FROM s2_upstream_keys u
        WHERE u.account = p_account AND u.k = p_sid_key;
      IF p_oid_key IS NOT NULL THEN  -- back-fill, keep whatever is there
        INSERT INTO s2_refs AS r (account, k, archive_id) VALUES (p_account, p_oid_key, v_existing)
          ON CONFLICT (account, k) DO NOTHING;
      END IF;
      o_archive_id := v_existing; o_matched := 1;
      RETURN;
    END IF;
  END IF;
  IF p_oid_key IS NOT NULL THEN
    INSERT INTO s2_refs AS r (account, k, archive_id) VALUES (p_account, p_oid_key, v_id)
      ON CONFLICT (account, k) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
      SELECT r.archive_id INTO v_existing FROM s2_refs r WHERE r.account = p_account AND r.k = p_oid_key;
      o_matched := 2;
    END IF;
  END IF;
  IF o_matched = 0 AND p_fp_key IS NOT NULL THEN
    SELECT u.archive_id, u.ts_ms INTO v_existing, v_ts FROM s2_upstream_keys u
      WHERE u.account = p_account AND u.k = p_fp_key;
    IF FOUND AND abs(v_ts::numeric - p_ts::numeric) <= p_window THEN
      o_matched := 3;
    ELSE  -- new, or the old match expired: the window restarts at this message
      INSERT INTO s2_upstream_keys AS u (account, k, archive_id, ts_ms)
        VALUES (p_account, p_fp_key, v_id, p_ts)
        ON CONFLICT (account, k) DO UPDATE SET archive_id = EXCLUDED.archive_id, ts_ms = EXCLUDED.ts_ms;
    END IF;
  END IF;
  IF o_matched <> 0 THEN  -- re-point the keys claimed above at the archived copy
    IF p_sid_key IS NOT NULL THEN
      UPDATE s2_upstream_keys u SET archive_id = v_existing, ts_ms = p_ts
        WHERE u.account = p_account AND u.k = p_sid_key;
    END IF;
    IF o_matched = 3 AND p_oid_key IS NOT NULL THEN
      UPDATE s2_refs r SET archive_id = v_existing WHERE r.account = p_account AND r.k = p_oid_key;
    END IF;
    o_archive_id := v_existing;
    RETURN;
  END IF;
  -- Archive time never goes backwards in archive order.
  UPDATE s2_accounts a SET next_archive_id = a.next_archive_id + 1,
      last_archive_ms = GREATEST(a.last_archive_ms, p_ts),
      next_outbox_seq = a.next_outbox_seq + v_outbox
    WHERE a.account = p_account
    RETURNING a.last_archive_ms, a.next_outbox_seq - v_outbox INTO v_ms, o_outbox_seq;
  INSERT INTO s2_messages (account, archive_id, archive_ms, timestamp_ms, direction, peer, peer_key,
      flags, upstream_stanza_id, origin_id, msg_id, fingerprint, stanza)
    VALUES (p_account, v_id, v_ms, p_ts, p_direction, p_peer, p_peer_key, p_flags, p_sid, p_oid,
      p_msg_id, p_fp, p_stanza);
  IF p_id_ref_key IS NOT NULL THEN  -- a repeated 'id': the newest message wins
    INSERT INTO s2_refs AS r (account, k, archive_id) VALUES (p_account, p_id_ref_key, v_id)
      ON CONFLICT (account, k) DO UPDATE SET archive_id = EXCLUDED.archive_id;
  END IF;
  IF p_resend_key IS NOT NULL THEN
    INSERT INTO s2_refs AS r (account, k, archive_id) VALUES (p_account, p_resend_key, v_id)
      ON CONFLICT (account, k) DO UPDATE SET archive_id = EXCLUDED.archive_id;
  END IF;
  IF v_outbox = 1 THEN
    INSERT INTO s2_outbox (account, seq, archive_id, route, stanza, created_ms)
      VALUES (p_account, o_outbox_seq, v_id, p_route, p_ob_stanza, p_ob_created);
  ELSE
    o_outbox_seq := 0;
  END IF;
  o_archive_id := v_id;
END
$fn$;
CREATE TABLE IF NOT EXISTS s2_outbox (
  account bigint NOT NULL,
  seq bigint NOT NULL,
  archive_id bigint NOT NULL,
  route bytea NOT NULL,
  stanza bytea NOT NULL,
  created_ms bigint NOT NULL,
  PRIMARY KEY (account, seq));
)SQL";

// Any constant: the key of the advisory lock that serialises schema creation.
constexpr const char* kLock = "SELECT pg_advisory_xact_lock(7310741927301117953)";

}  // namespace

void ensure_schema(pg::Conn& c) {
  c.run("BEGIN");
  try {
    c.run(kLock);
    c.run(kCreate);
    pg::Rows v = c.exec("SELECT value FROM s2_meta WHERE key = 'schema'");
    if (v.empty()) {
      c.exec("INSERT INTO s2_meta (key, value) VALUES ('schema', $1)",
             pg::Params().i64(kPgSchemaVersion));
    } else {
      const int64_t found = v.i64(0, 0);
      if (found > kPgSchemaVersion) {
        throw OpError{
            Error{Errc::kCorrupt,
                  "the database was written by a newer s2proxy (schema " + std::to_string(found) +
                      "); this s2proxy reads schema " + std::to_string(kPgSchemaVersion) +
                      " and older: run the newer s2proxy, or restore a dump made by this version"}};
      }
      // Migrations run here, one step per version, in this transaction.
      // Schema 1 is the first: there is nothing older.
      if (found < 1) throw OpError{Error{Errc::kCorrupt, "unreadable s2proxy schema version"}};
    }
    c.run("COMMIT");
  } catch (...) {
    try {
      c.run("ROLLBACK");
    } catch (const pg::Failure&) {  // the connection is gone: so is the transaction
    }
    throw;
  }
}

}  // namespace s2::store::pgdetail
