// The PostgreSQL store's tables (schema 1), created on first open.
//
//   table              key                        holds
//   s2_meta            key                        'schema' → version
//   s2_accounts        account                    name_key (unique), bare JID, state, created,
//                                                 settings, the per-account counters
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
  next_outbox_seq bigint NOT NULL DEFAULT 1);
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
