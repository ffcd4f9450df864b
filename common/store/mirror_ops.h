// Internal to common/store: the transaction-level operations behind Mirror.
//
// mirror.cpp owns the environment, locking and group commit; the functions
// declared here do the work inside a transaction they are handed, so they can
// be read (and split into files) by topic: writes in mirror_write.cpp, MAM in
// mirror_query.cpp. They throw OpError for a value error that fails the batch,
// schema::CorruptError for a bad stored value and lmdb::Error for storage
// errors; Mirror turns all three into Error values.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/store/lmdb.h"
#include "common/store/schema.h"
#include "common/store/store.h"

namespace s2::store::detail {

struct OpError {
  Error error;
};

// One write transaction's working state. Account records carry the counters
// every append bumps (next archive id, next outbox seq, last archive time);
// they are cached here and written back once per transaction by flush(),
// instead of one B-tree update per message. The context lives exactly as
// long as one attempt, so an aborted attempt discards its cache with it.
class TxnContext {
 public:
  TxnContext(const schema::Dbs& dbs, lmdb::Txn& txn, int64_t fingerprint_window_ms, int64_t now_ms)
      : dbs(dbs), txn(txn), fingerprint_window_ms(fingerprint_window_ms), now_ms(now_ms) {}

  // The account's record, or nullptr when there is no such account. With
  // `modify` the record is written back by flush().
  schema::AccountInfoValue* account(AccountNo a, bool modify);
  void created(AccountNo a, schema::AccountInfoValue v);
  void forgotten(AccountNo a) { infos_.erase(a); }
  void flush();  // before commit

  const schema::Dbs& dbs;
  lmdb::Txn& txn;
  const int64_t fingerprint_window_ms;
  const int64_t now_ms;  // wall clock at transaction start (account created_ms)

 private:
  struct Cached {
    schema::AccountInfoValue value;
    bool dirty = false;
  };
  std::unordered_map<AccountNo, Cached> infos_;
};

std::vector<OpResult> apply_batch(TxnContext& ctx, const WriteBatch& batch);

// by_ref lookup with the id == origin-id fallback (see Append).
std::optional<ArchiveId> lookup_ref(const schema::Dbs& dbs, const lmdb::Txn& txn, AccountNo a,
                                    std::string_view peer, RefKind kind, std::string_view ref);

// MAM (mirror_query.cpp).
Result<MamPage> run_query(const schema::Dbs& dbs, const lmdb::Txn& txn, AccountNo a,
                          const MamQuery& q);
ArchiveBounds read_bounds(const schema::Dbs& dbs, const lmdb::Txn& txn, AccountNo a);

}  // namespace s2::store::detail
