// MAM queries (XEP-0313 + RSM) on PostgreSQL, with the Mirror's semantics
// (mirror_query.cpp): every filter becomes an inclusive archive-id range
// [lo, hi]; after-id/before-id must name a message (item-not-found otherwise,
// except an id retention pruned); start/end are one index probe each on
// (account, archive_ms, archive_id), since archive time never decreases in
// archive order; ids are dense, so counts without `with` are subtractions.
// The caller runs all of it in one REPEATABLE READ snapshot.
#include <algorithm>
#include <limits>
#include <string>

#include "common/store/archive_id.h"
#include "common/store/pg_ops.h"
#include "common/store/schema.h"

namespace s2::store::pgdetail {
namespace {

using pg::Params;
using pg::Rows;

Error item_not_found(const std::string& id) {
  return Error{Errc::kItemNotFound, "archive id not in the archive: " + id};
}

struct Range {
  ArchiveId lo = 1, hi = 0;  // inclusive; empty when lo > hi
  bool empty() const { return lo > hi; }
};

class Query {
 public:
  Query(pg::Conn& c, AccountNo a, const MamQuery& q) : c_(c), a_(a), q_(q) {}

  Result<MamPage> run() {
    const ArchiveBounds b = read_bounds(c_, a_);
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
  bool exists(ArchiveId id) const {
    return !c_.exec("SELECT 1 FROM s2_messages WHERE account = $1 AND archive_id = $2",
                    Params().i64(a_).u64(id))
                .empty();
  }
  std::optional<ArchiveId> resolve(const std::string& s) const {
    auto id = parse_archive_id(s);
    if (!id || !exists(*id)) return std::nullopt;
    return id;
  }
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

  // Smallest id in `all` whose archive_ms >= t, or all.hi + 1.
  ArchiveId first_at_or_after(const Range& all, int64_t t) const {
    Rows r = c_.exec(
        "SELECT archive_id FROM s2_messages WHERE account = $1 AND archive_ms >= $2 "
        "ORDER BY archive_ms, archive_id LIMIT 1",
        Params().i64(a_).i64(t));
    return r.empty() ? all.hi + 1 : std::max(all.lo, r.u64(0, 0));
  }

  void clip_time(const Range& all, Range& r) const {
    if (all.empty()) return;
    if (q_.start_ms) r.lo = std::max(r.lo, first_at_or_after(all, *q_.start_ms));
    if (q_.end_ms && *q_.end_ms < std::numeric_limits<int64_t>::max()) {
      r.hi = std::min(r.hi, first_at_or_after(all, *q_.end_ms + 1) - 1);
    }
  }

  std::vector<StoredMessage> load(const char* where, const Params& p) const {
    Rows rows = c_.exec(std::string("SELECT ") + kMessageColumns + " FROM s2_messages " + where, p);
    std::vector<StoredMessage> out;
    out.reserve(static_cast<size_t>(rows.size()));
    for (int i = 0; i < rows.size(); ++i) out.push_back(decode_message_row(rows, i));
    return out;
  }

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
      auto m = load("WHERE account = $1 AND archive_id = $2", Params().i64(a_).u64(id));
      if (m.empty()) throw pg::Failure{"", "a message vanished inside a snapshot", false};
      if (q_.with.empty() || m[0].record.peer_bare == q_.with) hits.push_back(std::move(m[0]));
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
    const uint64_t total = r.hi - r.lo + 1;  // dense ids
    const uint64_t take = std::min<uint64_t>(total, q_.max);
    const ArchiveId from = q_.from_end ? r.hi - take + 1 : r.lo;
    page.count = total;
    page.first_index = from - r.lo;
    page.complete = take == total;
    if (take == 0) return;
    page.items = load("WHERE account = $1 AND archive_id BETWEEN $2 AND $3 ORDER BY archive_id",
                      Params().i64(a_).u64(from).u64(from + take - 1));
  }

  void with_peer(const Range& r, MamPage& page) const {
    if (r.empty()) {
      page.complete = true;
      page.count = 0;
      return;
    }
    // One row beyond max tells whether the page is complete.
    const Params p = Params()
                         .i64(a_)
                         .bytes(std::string_view(schema::peer_prefix(a_, q_.with)))
                         .u64(r.lo)
                         .u64(r.hi)
                         .u64(std::min<uint64_t>(q_.max, uint64_t{1} << 62) + 1);
    std::vector<StoredMessage> items =
        q_.from_end ? load(
                          "WHERE account = $1 AND peer_key = $2 AND archive_id BETWEEN $3 AND "
                          "$4 ORDER BY archive_id DESC LIMIT $5",
                          p)
                    : load(
                          "WHERE account = $1 AND peer_key = $2 AND archive_id BETWEEN $3 AND "
                          "$4 ORDER BY archive_id LIMIT $5",
                          p);
    page.complete = items.size() <= q_.max;
    if (!page.complete) items.pop_back();
    if (q_.from_end) std::reverse(items.begin(), items.end());
    if (page.complete) {
      page.count = items.size();
      page.first_index = 0;
    }
    page.items = std::move(items);
  }

  pg::Conn& c_;
  AccountNo a_;
  const MamQuery& q_;
};

}  // namespace

StoredMessage decode_message_row(const pg::Rows& r, int row) {
  StoredMessage m;
  m.archive_id = r.u64(row, 0);
  m.archive_ms = r.i64(row, 1);
  m.record.timestamp_ms = r.i64(row, 2);
  m.record.direction = static_cast<Direction>(r.i64(row, 3));
  m.record.peer_bare = r.bytes(row, 4);
  m.record.flags = static_cast<uint32_t>(r.u64(row, 5));
  m.record.upstream_stanza_id = r.bytes(row, 6);
  m.record.origin_id = r.bytes(row, 7);
  m.record.id = r.bytes(row, 8);
  m.record.fingerprint = r.bytes(row, 9);
  m.record.stanza = r.bytes(row, 10);
  return m;
}

ArchiveBounds read_bounds(pg::Conn& c, AccountNo a) {
  ArchiveBounds b;
  Rows first = c.exec(
      "SELECT archive_id, archive_ms FROM s2_messages WHERE account = $1 "
      "ORDER BY archive_id LIMIT 1",
      Params().i64(a));
  if (first.empty()) return b;
  Rows last = c.exec(
      "SELECT archive_id, archive_ms FROM s2_messages WHERE account = $1 "
      "ORDER BY archive_id DESC LIMIT 1",
      Params().i64(a));
  b.first_id = first.u64(0, 0);
  b.first_ms = first.i64(0, 1);
  b.last_id = last.u64(0, 0);
  b.last_ms = last.i64(0, 1);
  return b;
}

Result<MamPage> run_query(pg::Conn& c, AccountNo a, const MamQuery& q) {
  return Query(c, a, q).run();
}

}  // namespace s2::store::pgdetail
