// PgStore: the Store interface on PostgreSQL (issue 14 item 1).
//
// LMDB (mirror.h) stays the embedded default for a single node. PostgreSQL is
// the store when several s2proxy nodes serve one domain: operators of Prosody
// and ejabberd already run it, it replicates and fails over by itself, and it
// can hold both the shared state and, later, each account's ownership.
//
// Same semantics as the Mirror, operation by operation; the store unit tests
// run against both (tests/unit/store, `unit_store_pg`). How it maps:
// * Tables keyed by account (pg_schema.cpp); every table is prefixed `s2_`
//   so that the database may be the one Prosody or ejabberd already uses.
// * Index keys are the Mirror's own key bytes (schema.h: component-encoded,
//   long values hashed), so dedup and reference lookups match the Mirror's
//   byte for byte, and a key is never too long for a B-tree.
// * Writes: the same MirrorWriter thread and group commit. A group is one
//   transaction; a batch of several ops runs under a SAVEPOINT, so one that
//   fails (unknown account, bad value) is rolled back to it and fails alone
//   while the others commit. A one-op batch needs none (every op checks what
//   can fail it before writing); an append is one statement (s2_append()). A completion means
//   COMMIT returned, i.e. the WAL is flushed (synchronous_commit as the server has it, `on` by
//   default).
// * Reads: synchronous, on the caller's thread, on a small pool of
//   connections; a read of several statements runs in one REPEATABLE READ
//   READ ONLY transaction, so it sees one snapshot like an LMDB read.
// * A lost connection fails what was in flight with Errc::kIo and is
//   re-established on next use: the hub already treats a failed write as
//   "not acknowledged", so the device resends.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/store/store.h"
#include "common/store/writer.h"

namespace s2::store {

namespace pg {
class Conn;
}

struct PgStoreOptions {
  std::string conninfo;  // "postgresql://user@host/db" or "host=… dbname=…" (libpq syntax)
  int64_t fingerprint_window_ms = 24 * 3600 * 1000;  // as MirrorOptions
  size_t max_idle_readers = 8;                       // pooled read connections kept open
  // Writer threads, each with its own connection and group commit. An account's writes stay on
  // one of them while any is in flight (their order is kept); an account with none in flight
  // goes to the least busy one, so another account's lone write does not wait behind a burst's
  // group (docs/architecture.md §24).
  size_t writers = 2;
  WriterOptions writer;
};

// True when `s` names a PostgreSQL store (postgresql:// or postgres:// URL).
bool is_postgresql_url(std::string_view s);

// libpq's own parse of a connection string, without connecting: "" when it
// parses, else libpq's reason (which never repeats a password).
std::string check_conninfo(const std::string& conninfo);

// What `check-config --probe` reports, read without writing anything.
struct PgProbe {
  int server_version = 0;  // e.g. 150018
  int64_t schema = 0;      // s2proxy schema found; 0: no s2proxy tables yet
};
Result<PgProbe> probe_postgresql(const std::string& conninfo);
inline constexpr int64_t kPgSchemaVersionSupported = 1;

class PgStore final : public Store {
 public:
  // Connects, creates or checks the schema (pg_schema.cpp) and starts the writer.
  static Result<std::unique_ptr<PgStore>> open(PgStoreOptions opts);
  ~PgStore() override;  // drains the writer, closes the connections
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  void submit(WriteBatch batch, WriteCallback done) override;
  void submit_deferrable(WriteBatch batch, WriteCallback done) override;
  void flush(WriteCallback done) override;

  Result<std::optional<AccountInfo>> find_account(std::string_view bare_jid) const override;
  Result<std::vector<AccountInfo>> list_accounts() const override;
  Result<std::optional<std::string>> get_credentials(AccountNo a) const override;
  Result<std::optional<FastToken>> get_fast_token(const TokenHash& hash) const override;
  Result<std::optional<StoredMessage>> get_message(AccountNo a, ArchiveId id) const override;
  Result<std::optional<ArchiveId>> find_upstream_id(AccountNo a,
                                                    std::string_view upstream_id) const override;
  Result<std::optional<ArchiveId>> resolve_ref(AccountNo a, std::string_view peer_bare,
                                               RefKind kind, std::string_view ref) const override;
  Result<ResendKeys> list_resend_keys(AccountNo a, std::string_view scope) const override;
  Result<ArchiveBounds> bounds(AccountNo a) const override;
  Result<MamPage> query(AccountNo a, const MamQuery& q) const override;
  Result<std::optional<std::string>> get_sync_cursor(AccountNo a) const override;
  Result<std::vector<Gap>> list_gaps(AccountNo a) const override;
  Result<std::optional<DeviceRecord>> get_device(AccountNo a,
                                                 std::string_view device_id) const override;
  Result<std::vector<DeviceRecord>> list_devices(AccountNo a) const override;
  Result<std::vector<OutboxEntry>> list_outbox(AccountNo a, uint64_t after_seq,
                                               size_t max) const override;

  // Fencing (pg_leases.h). Once enabled, every batch that writes an account's
  // history or records commits only while the account's owner_epoch is the
  // one set here (checked under a row lock in the batch's transaction);
  // otherwise it fails with Errc::kFenced before writing anything. Login
  // material is exempt (credentials, FAST token records): a login is
  // verified, and what it teaches is kept, on whichever node it reaches,
  // before it is sent to the owner; a first login creates the account there.
  void enable_fencing();
  void set_fence(AccountNo a, int64_t epoch);
  void clear_fences();

  // Rows per table (tests compare before/after; the metrics' store sizes).
  Result<std::vector<std::pair<std::string, uint64_t>>> entry_counts() const;

 private:
  explicit PgStore(PgStoreOptions opts);

  std::unique_ptr<pg::Conn> take_reader() const;
  void give_back(std::unique_ptr<pg::Conn> c) const;
  // Runs f(conn) on a pooled connection; with `snapshot` inside one
  // REPEATABLE READ READ ONLY transaction. Failures become Error values.
  template <class F>
  auto read(bool snapshot, F&& f) const -> Result<decltype(f(std::declval<pg::Conn&>()))>;

  // One writer thread and its connection (the connection is that thread's only).
  struct WriterSlot {
    std::unique_ptr<pg::Conn> conn;
    std::unique_ptr<MirrorWriter> writer;
    size_t outstanding = 0;  // submitted, not yet completed (lanes_mu_)
  };
  // The writer of the batch's account (its lane), or the least busy one.
  void submit_to_writer(WriteBatch batch, WriteCallback done, bool deferrable);
  std::vector<WriteResult> commit_group(WriterSlot& slot,
                                        const std::vector<const WriteBatch*>& group,
                                        CommitInfo& info);
  bool lone_append(const std::vector<const WriteBatch*>& group) const;
  bool attempt(WriterSlot& slot, const std::vector<const WriteBatch*>& group,
               std::vector<WriteResult>& out, CommitInfo& info, bool savepoint_all);

  // The accounts of a batch that fencing checks (see enable_fencing()).
  void check_fences(pg::Conn& c, const WriteBatch& batch, std::unordered_set<AccountNo>& checked);

  PgStoreOptions opts_;
  mutable std::mutex fence_mu_;
  bool fencing_ = false;
  std::unordered_map<AccountNo, int64_t> fences_;
  mutable std::mutex pool_mu_;
  mutable std::vector<std::unique_ptr<pg::Conn>> idle_;
  std::vector<std::unique_ptr<WriterSlot>> slots_;
  // Accounts (writer lanes, lane_of) with writes in flight: the slot they are on and how many.
  std::mutex lanes_mu_;
  std::unordered_map<uint64_t, std::pair<size_t, size_t>> lanes_;
};

}  // namespace s2::store
