// MAM queries (XEP-0313 + RSM) as index range scans.
//
// Every filter is first turned into an inclusive archive-id range [lo, hi]:
// after-id/before-id are point lookups (and must exist: item-not-found
// otherwise, XEP-0313 §4.1.4, except an id retention pruned: the page then
// starts at the oldest remaining message); start/end are binary searches over the ids,
// because archive_ms never decreases in archive order and ids are dense
// (O(log² n) page touches, and no time index to write on every append). Then:
// * no `with`: walk `messages` from the end of the range the page is taken
//   from; the archive is dense, so count and index are subtractions;
// * `with`: walk `by_peer` the same way, loading each hit from `messages`;
// * `ids`: point lookups, clipped to [lo, hi] and the `with` filter.
// Either way a page costs O(log² n + max): logarithmic in the archive's size.
// One item beyond `max` is looked at to tell whether the page is complete.
#include <algorithm>
#include <limits>
#include <string>

#include "common/store/archive_id.h"
#include "common/store/mirror_ops.h"

namespace s2::store::detail {
namespace {

using namespace schema;  // NOLINT(google-build-using-namespace)

// Positions `c` on the greatest key < `key`.
bool seek_before(lmdb::Cursor& c, std::string_view key) {
  return c.seek(key) ? c.prev() : c.last();
}

Error item_not_found(const std::string& id) {
  return Error{Errc::kItemNotFound, "archive id not in the archive: " + id};
}

struct Range {
  ArchiveId lo = 1, hi = 0;  // inclusive; empty when lo > hi
  bool empty() const { return lo > hi; }
};

class Query {
 public:
  Query(const Dbs& d, const lmdb::Txn& txn, AccountNo a, const MamQuery& q)
      : d_(d), txn_(txn), a_(a), q_(q) {}

  Result<MamPage> run() {
    ArchiveBounds b = read_bounds(d_, txn_, a_);
    const Range all{b.first_id == 0 ? 1 : b.first_id, b.last_id};
    Range r = all;
    if (auto err = clip_ids(all, r)) return *err;
    clip_time(all, r);
    MamPage page;
    if (!q_.ids.empty()) {
      if (auto err = by_ids(r, page)) return *err;
    } else if (q_.with.empty()) {
      all_in_range(r, page);
    } else {
      with_peer(r, page);
    }
    if (!page.items.empty()) {
      page.first = render_archive_id(page.items.front().archive_id);
      page.last = render_archive_id(page.items.back().archive_id);
    }
    return page;
  }

 private:
  // A rendered id that names a message of this account, or nullopt.
  std::optional<ArchiveId> resolve(const std::string& s) const {
    auto id = parse_archive_id(s);
    if (!id || !txn_.get(d_.messages, message_key(a_, *id))) return std::nullopt;
    return id;
  }

  // An id below the oldest remaining message was pruned by retention (ids are
  // dense from 1, only a prefix is ever removed): a device syncing from it
  // continues from what remains instead of getting item-not-found forever.
  static bool pruned(const Range& all, const std::string& s) {
    auto id = parse_archive_id(s);
    return id && *id != 0 && !all.empty() && *id < all.lo;
  }

  std::optional<Error> clip_ids(const Range& all, Range& r) const {
    if (q_.after_id) {
      if (auto id = resolve(*q_.after_id)) {
        r.lo = std::max(r.lo, *id + 1);
      } else if (!pruned(all, *q_.after_id)) {
        return item_not_found(*q_.after_id);
      }
    }
    if (q_.before_id) {
      if (auto id = resolve(*q_.before_id)) {
        r.hi = std::min(r.hi, *id - 1);
      } else if (pruned(all, *q_.before_id)) {
        r.hi = r.lo - 1;  // nothing remains before it
      } else {
        return item_not_found(*q_.before_id);
      }
    }
    return std::nullopt;
  }

  int64_t archive_ms(ArchiveId id) const {
    auto v = txn_.get(d_.messages, message_key(a_, id));
    if (!v) throw CorruptError{"archive ids are not dense"};
    return message_archive_ms(*v);
  }

  // Smallest id in `all` whose archive_ms >= t, or all.hi + 1.
  ArchiveId first_at_or_after(const Range& all, int64_t t) const {
    ArchiveId lo = all.lo, hi = all.hi + 1;
    while (lo < hi) {
      ArchiveId mid = lo + (hi - lo) / 2;
      if (archive_ms(mid) >= t) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return lo;
  }

  void clip_time(const Range& all, Range& r) const {
    if (all.empty()) return;
    if (q_.start_ms) r.lo = std::max(r.lo, first_at_or_after(all, *q_.start_ms));
    if (q_.end_ms && *q_.end_ms < std::numeric_limits<int64_t>::max()) {
      r.hi = std::min(r.hi, first_at_or_after(all, *q_.end_ms + 1) - 1);
    }
  }

  StoredMessage load(ArchiveId id) const {
    auto v = txn_.get(d_.messages, message_key(a_, id));
    if (!v) throw CorruptError{"index points to a missing message"};
    return decode_message(id, *v);
  }

  // Selects the page out of `n` ordered candidates: [first, first + take).
  std::pair<size_t, size_t> window(size_t n) const {
    size_t take = std::min(n, q_.max);
    return {q_.from_end ? n - take : 0, take};
  }

  std::optional<Error> by_ids(const Range& r, MamPage& page) const {
    std::vector<ArchiveId> ids;
    for (const std::string& s : q_.ids) {
      auto id = resolve(s);
      if (!id) return item_not_found(s);
      if (*id >= r.lo && *id <= r.hi) ids.push_back(*id);
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::vector<StoredMessage> hits;
    for (ArchiveId id : ids) {
      StoredMessage m = load(id);
      if (q_.with.empty() || m.record.peer_bare == q_.with) hits.push_back(std::move(m));
    }
    auto [first, take] = window(hits.size());
    for (size_t i = first; i < first + take; ++i) page.items.push_back(std::move(hits[i]));
    page.complete = take == hits.size();
    page.count = hits.size();
    page.first_index = first;
    return std::nullopt;
  }

  void all_in_range(const Range& r, MamPage& page) const {
    if (r.empty()) {
      page.complete = true;
      page.count = 0;
      return;
    }
    // Dense ids: the range holds exactly hi - lo + 1 messages.
    uint64_t total = r.hi - r.lo + 1;
    uint64_t take = std::min<uint64_t>(total, q_.max);
    ArchiveId from = q_.from_end ? r.hi - take + 1 : r.lo;
    page.count = total;
    page.first_index = from - r.lo;
    page.complete = take == total;
    if (take == 0) return;
    ArchiveId to = from + take - 1;
    Key acct = account_key(a_);
    lmdb::Cursor c(txn_, d_.messages);
    for (bool ok = c.seek(message_key(a_, from)); ok && has_prefix(c.key(), acct); ok = c.next()) {
      ArchiveId id = key_suffix_u64(c.key());
      if (id > to) break;
      page.items.push_back(decode_message(id, c.val()));
    }
  }

  void with_peer(const Range& r, MamPage& page) const {
    if (r.empty()) {
      page.complete = true;
      page.count = 0;
      return;
    }
    Key prefix = peer_prefix(a_, q_.with);
    std::vector<ArchiveId> ids;
    lmdb::Cursor c(txn_, d_.by_peer);
    // Look one past max to learn whether the page is complete.
    if (!q_.from_end) {
      for (bool ok = c.seek(peer_key(a_, q_.with, r.lo)); ok && has_prefix(c.key(), prefix);
           ok = c.next()) {
        ArchiveId id = key_suffix_u64(c.key());
        if (id > r.hi || ids.size() > q_.max) break;
        ids.push_back(id);
      }
    } else {
      for (bool ok = seek_before(c, peer_key(a_, q_.with, r.hi + 1));
           ok && has_prefix(c.key(), prefix); ok = c.prev()) {
        ArchiveId id = key_suffix_u64(c.key());
        if (id < r.lo || ids.size() > q_.max) break;
        ids.push_back(id);
      }
    }
    page.complete = ids.size() <= q_.max;
    if (!page.complete) ids.pop_back();
    if (q_.from_end) std::reverse(ids.begin(), ids.end());
    if (page.complete) {  // the walk covered the whole range from one end to the other
      page.count = ids.size();
      page.first_index = 0;
    }
    for (ArchiveId id : ids) page.items.push_back(load(id));
  }

  const Dbs& d_;
  const lmdb::Txn& txn_;
  AccountNo a_;
  const MamQuery& q_;
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
  return Query(d, txn, a, q).run();
}

}  // namespace s2::store::detail
