// Mirror: the embedded (LMDB) Store — one environment in the data dir.
//
// Layout in schema.h. Threads (ARCHITECTURE §3): reads run on the caller's
// thread in their own read-only transaction (MDB_NOTLS, so a read may also run
// on a pool thread); every write goes through the MirrorWriter thread this
// object owns, which applies a whole group of batches in one transaction.
//
// Group commit needs per-batch atomicity inside a shared transaction: if one
// batch fails (unknown account, bad argument) the transaction is aborted and
// the group re-run without it, so the others neither see its partial writes
// nor fail with it. A storage error that cannot be pinned on one batch
// splits the group into single-batch transactions.
//
// Map size: starts at map_size (or the file's size if larger); MDB_MAP_FULL
// aborts, doubles the map up to max_map_size and retries, and beyond that
// fails the batches with Errc::kMapFull. Groups that only delete may grow into
// a reserve of max_map_size / 8 beyond it (LMDB is copy-on-write: deleting
// needs pages too), so a full mirror can still be pruned. Resizing needs no
// transaction open in the process, so every reader holds a shared lock for
// the life of its read transaction and the resize takes it exclusively.
//
// Durability: MDB_NOSYNC is off by default, so a completion means fsynced.
// With no_sync a kill -9 still loses nothing (the OS has the pages) but a
// power loss may lose the last commits.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/store/lmdb.h"
#include "common/store/schema.h"
#include "common/store/store.h"
#include "common/store/writer.h"

namespace s2::store {

struct MirrorOptions {
  std::string dir;  // created (0700) if absent
  size_t map_size = size_t{1} << 30;
  size_t max_map_size = size_t{64} << 30;
  unsigned max_readers = 126;
  bool no_sync = false;
  // Fingerprints (the last-resort dedup key) only match within this window of
  // message timestamps: the same (from, to, type, id, body) later is a new
  // message ("ok" with id "1" is said more than once).
  int64_t fingerprint_window_ms = 24 * 3600 * 1000;
  WriterOptions writer;
};

class Mirror final : public Store {
 public:
  static Result<std::unique_ptr<Mirror>> open(MirrorOptions opts);
  ~Mirror() override;  // drains the writer (completions still run), closes the env
  Mirror(const Mirror&) = delete;
  Mirror& operator=(const Mirror&) = delete;

  void submit(WriteBatch batch, WriteCallback done) override;
  void submit_deferrable(WriteBatch batch, WriteCallback done) override;

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

  // LMDB specifics (metrics, tests, tools).
  Result<std::vector<std::pair<std::string, uint64_t>>> entry_counts() const;
  size_t map_size() const;
  uint64_t map_grows() const;
  size_t writer_queued() const { return writer_->queued(); }

 private:
  struct ReadTxn {  // field order: the transaction ends before the lock is released
    std::shared_lock<std::shared_mutex> lock;
    lmdb::Txn txn;
  };

  explicit Mirror(MirrorOptions opts);
  void open_env();
  ReadTxn begin_read() const;
  lmdb::Txn begin_write();
  bool grow_map(bool freeing);
  template <class F>
  auto read(F&& f) const -> Result<decltype(f(std::declval<const lmdb::Txn&>()))>;

  std::vector<WriteResult> commit_group(const std::vector<const WriteBatch*>& group,
                                        CommitInfo& info);
  enum class Outcome { kOk, kBatchFailed, kMapFull, kFatal };
  Outcome attempt(const std::vector<const WriteBatch*>& group, std::vector<size_t>& live,
                  std::vector<WriteResult>& out, CommitInfo& info, Error& fatal);
  void run_live(const std::vector<const WriteBatch*>& group, std::vector<size_t> live,
                std::vector<WriteResult>& out, CommitInfo& info, bool allow_split);

  MirrorOptions opts_;
  lmdb::Env env_;
  schema::Dbs dbs_;
  mutable std::shared_mutex resize_mu_;
  std::atomic<uint64_t> map_grows_{0};
  std::unique_ptr<MirrorWriter> writer_;
};

}  // namespace s2::store
