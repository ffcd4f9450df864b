// MAM queries on LMDB: the archive access for the shared plan (mam_plan.h),
// as index range scans.
//
// start/end are binary searches over the ids, because archive_ms never
// decreases in archive order and ids are dense (O(log² n) page touches, and no
// time index to write on every append); a range is a walk of `messages`; a
// `with` page walks `by_peer` from the end it is taken from, loading each hit.
// Either way a page costs O(log² n + max): logarithmic in the archive's size.
#include <algorithm>
#include <limits>
#include <string>

#include "common/store/mam_plan.h"
#include "common/store/mirror_ops.h"

namespace s2::store::detail {
namespace {

using namespace schema;  // NOLINT(google-build-using-namespace)

// Positions `c` on the greatest key < `key`.
bool seek_before(lmdb::Cursor& c, std::string_view key) {
  return c.seek(key) ? c.prev() : c.last();
}

class LmdbArchive {
 public:
  LmdbArchive(const Dbs& d, const lmdb::Txn& txn, AccountNo a) : d_(d), txn_(txn), a_(a) {}

  ArchiveBounds bounds() const { return read_bounds(d_, txn_, a_); }

  bool exists(ArchiveId id) const { return txn_.get(d_.messages, message_key(a_, id)).has_value(); }

  // Smallest id in [lo, hi] whose archive_ms >= t, or hi + 1.
  ArchiveId first_at_or_after(ArchiveId lo, ArchiveId hi, int64_t t) const {
    ArchiveId end = hi + 1;
    while (lo < end) {
      ArchiveId mid = lo + (end - lo) / 2;
      if (archive_ms(mid) >= t) {
        end = mid;
      } else {
        lo = mid + 1;
      }
    }
    return lo;
  }

  StoredMessage load(ArchiveId id) const {
    auto v = txn_.get(d_.messages, message_key(a_, id));
    if (!v) throw CorruptError{"index points to a missing message"};
    return decode_message(id, *v);
  }

  std::vector<StoredMessage> load_range(ArchiveId from, ArchiveId to) const {
    std::vector<StoredMessage> out;
    Key acct = account_key(a_);
    lmdb::Cursor c(txn_, d_.messages);
    for (bool ok = c.seek(message_key(a_, from)); ok && has_prefix(c.key(), acct); ok = c.next()) {
      ArchiveId id = key_suffix_u64(c.key());
      if (id > to) break;
      out.push_back(decode_message(id, c.val()));
    }
    return out;
  }

  std::vector<StoredMessage> peer_walk(const std::string& peer, ArchiveId lo, ArchiveId hi,
                                       size_t limit, bool from_end) const {
    Key prefix = peer_prefix(a_, peer);
    std::vector<ArchiveId> ids;
    lmdb::Cursor c(txn_, d_.by_peer);
    if (!from_end) {
      for (bool ok = c.seek(peer_key(a_, peer, lo)); ok && has_prefix(c.key(), prefix);
           ok = c.next()) {
        ArchiveId id = key_suffix_u64(c.key());
        if (id > hi || ids.size() >= limit) break;
        ids.push_back(id);
      }
    } else {
      for (bool ok = seek_before(c, peer_key(a_, peer, hi + 1)); ok && has_prefix(c.key(), prefix);
           ok = c.prev()) {
        ArchiveId id = key_suffix_u64(c.key());
        if (id < lo || ids.size() >= limit) break;
        ids.push_back(id);
      }
    }
    std::vector<StoredMessage> out;
    out.reserve(ids.size());
    for (ArchiveId id : ids) out.push_back(load(id));
    return out;
  }

 private:
  int64_t archive_ms(ArchiveId id) const {
    auto v = txn_.get(d_.messages, message_key(a_, id));
    if (!v) throw CorruptError{"archive ids are not dense"};
    return message_archive_ms(*v);
  }

  const Dbs& d_;
  const lmdb::Txn& txn_;
  AccountNo a_;
};

}  // namespace

ArchiveBounds read_bounds(const Dbs& d, const lmdb::Txn& txn, AccountNo a) {
  ArchiveBounds b;
  Key acct = account_key(a);
  lmdb::Cursor c(txn, d.messages);
  if (!c.seek(acct) || !has_prefix(c.key(), acct)) return b;
  b.first_id = key_suffix_u64(c.key());
  b.first_ms = message_archive_ms(c.val());
  bool ok =
      a == std::numeric_limits<AccountNo>::max() ? c.last() : seek_before(c, account_key(a + 1));
  if (!ok || !has_prefix(c.key(), acct)) throw CorruptError{"archive bounds moved"};
  b.last_id = key_suffix_u64(c.key());
  b.last_ms = message_archive_ms(c.val());
  return b;
}

Result<MamPage> run_query(const Dbs& d, const lmdb::Txn& txn, AccountNo a, const MamQuery& q) {
  LmdbArchive ar(d, txn, a);
  return run_mam_plan(ar, q);
}

}  // namespace s2::store::detail
