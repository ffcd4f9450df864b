// MAM queries (XEP-0313 + RSM) as one plan over any store's archive: the
// semantics both stores share, written once (mirror_query.cpp for LMDB,
// pg_query.cpp for PostgreSQL supply the archive access).
//
// Every filter is first turned into an inclusive archive-id range [lo, hi]:
// after-id/before-id must name a message (item-not-found otherwise,
// XEP-0313 §4.1.4, except an id retention pruned: the page then starts at the
// oldest remaining message); start/end are "the first id at or after a time",
// because archive_ms never decreases in archive order. Then:
// * no `with`: ids are dense, so count and index are subtractions and the
//   page is one range read;
// * `with`: the peer's messages in the range, walked from the end the page is
//   taken from, one beyond `max` to tell whether the page is complete;
// * `ids`: point lookups, clipped to [lo, hi] and the `with` filter.
//
// Archive (the store's side, all reads in one snapshot):
//   ArchiveBounds bounds();
//   bool exists(ArchiveId id);
//   ArchiveId first_at_or_after(ArchiveId lo, ArchiveId hi, int64_t t);  // or hi + 1
//   StoredMessage load(ArchiveId id);                       // must exist
//   std::vector<StoredMessage> load_range(ArchiveId from, ArchiveId to);  // ascending
//   // up to `limit` of the peer's messages in [lo, hi], ascending from lo, or
//   // descending from hi when `from_end`
//   std::vector<StoredMessage> peer_walk(const std::string& peer, ArchiveId lo, ArchiveId hi,
//                                        size_t limit, bool from_end);
#pragma once

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/store/archive_id.h"
#include "common/store/store.h"

namespace s2::store::detail {

template <class Archive>
class MamPlan {
 public:
  MamPlan(Archive& ar, const MamQuery& q) : ar_(ar), q_(q) {}

  Result<MamPage> run() {
    const ArchiveBounds b = ar_.bounds();
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
  struct Range {
    ArchiveId lo = 1, hi = 0;  // inclusive; empty when lo > hi
    bool empty() const { return lo > hi; }
  };

  static Error item_not_found(const std::string& id) {
    return Error{Errc::kItemNotFound, "archive id not in the archive: " + id};
  }

  // A rendered id that names a message of this account, or nullopt.
  std::optional<ArchiveId> resolve(const std::string& s) {
    auto id = parse_archive_id(s);
    if (!id || !ar_.exists(*id)) return std::nullopt;
    return id;
  }

  // An id below the oldest remaining message was pruned by retention (ids are
  // dense from 1, only a prefix is ever removed): a device syncing from it
  // continues from what remains instead of getting item-not-found forever.
  static bool pruned(const Range& all, const std::string& s) {
    auto id = parse_archive_id(s);
    return id && *id != 0 && !all.empty() && *id < all.lo;
  }

  std::optional<Error> clip_ids(const Range& all, Range& r) {
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

  void clip_time(const Range& all, Range& r) {
    if (all.empty()) return;
    if (q_.start_ms) r.lo = std::max(r.lo, ar_.first_at_or_after(all.lo, all.hi, *q_.start_ms));
    if (q_.end_ms && *q_.end_ms < std::numeric_limits<int64_t>::max()) {
      r.hi = std::min(r.hi, ar_.first_at_or_after(all.lo, all.hi, *q_.end_ms + 1) - 1);
    }
  }

  // Selects the page out of `n` ordered candidates: [first, first + take).
  std::pair<size_t, size_t> window(size_t n) const {
    size_t take = std::min(n, q_.max);
    return {q_.from_end ? n - take : 0, take};
  }

  std::optional<Error> by_ids(const Range& r, MamPage& page) {
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
      StoredMessage m = ar_.load(id);
      if (q_.with.empty() || m.record.peer_bare == q_.with) hits.push_back(std::move(m));
    }
    auto [first, take] = window(hits.size());
    for (size_t i = first; i < first + take; ++i) page.items.push_back(std::move(hits[i]));
    page.complete = take == hits.size();
    page.count = hits.size();
    page.first_index = first;
    return std::nullopt;
  }

  void all_in_range(const Range& r, MamPage& page) {
    if (r.empty()) {
      page.complete = true;
      page.count = 0;
      return;
    }
    // Dense ids: the range holds exactly hi - lo + 1 messages.
    const uint64_t total = r.hi - r.lo + 1;
    const uint64_t take = std::min<uint64_t>(total, q_.max);
    const ArchiveId from = q_.from_end ? r.hi - take + 1 : r.lo;
    page.count = total;
    page.first_index = from - r.lo;
    page.complete = take == total;
    if (take == 0) return;
    page.items = ar_.load_range(from, from + take - 1);
  }

  void with_peer(const Range& r, MamPage& page) {
    if (r.empty()) {
      page.complete = true;
      page.count = 0;
      return;
    }
    // One beyond max tells whether the page is complete.
    const size_t limit = std::min<size_t>(q_.max, size_t{1} << 40) + 1;
    std::vector<StoredMessage> items = ar_.peer_walk(q_.with, r.lo, r.hi, limit, q_.from_end);
    page.complete = items.size() <= q_.max;
    if (!page.complete) items.pop_back();
    if (q_.from_end) std::reverse(items.begin(), items.end());
    if (page.complete) {  // the walk covered the whole range from one end to the other
      page.count = items.size();
      page.first_index = 0;
    }
    page.items = std::move(items);
  }

  Archive& ar_;
  const MamQuery& q_;
};

template <class Archive>
Result<MamPage> run_mam_plan(Archive& ar, const MamQuery& q) {
  return MamPlan<Archive>(ar, q).run();
}

}  // namespace s2::store::detail
