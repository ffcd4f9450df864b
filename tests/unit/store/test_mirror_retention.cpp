// PruneArchive (retention): only the oldest prefix goes, with its index
// entries; batches are bounded; MAM over what remains is exact, and a cursor
// into the pruned prefix continues from the oldest remaining message.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/store/archive_id.h"
#include "store_test_util.h"

using namespace s2::store;
using namespace s2::store::test;

namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

struct Fixture {
  TempDir dir;
  std::unique_ptr<Store> m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");
  AccountNo other = create_account(*m, "zed@example.org");

  // Message i (0-based): id i + 1, at kT0 + i s, peer bob/carol alternating,
  // upstream id S<i>, origin-id O<i>, a separate 'id' I<i>.
  explicit Fixture(int n) {
    WriteBatch b;
    for (int i = 0; i < n; ++i) {
      MessageRecord r = msg(i % 2 ? "carol@example.org" : "bob@example.org", kT0 + i * 1000,
                            "S" + std::to_string(i), "O" + std::to_string(i));
      r.id = "I" + std::to_string(i);
      b.push_back(op::Append{a, std::move(r), {}});
    }
    REQUIRE(write_sync(*m, std::move(b)).ok());
    append(*m, other, msg("bob@example.org", kT0, "S0", "O0"));
  }

  uint64_t prune(op::PruneArchive p) {
    p.account = a;
    auto r = write_sync(*m, {p});
    REQUIRE(r.ok());
    return r.ops.at(0).count;
  }

  std::vector<ArchiveId> ids(MamQuery q = {}) {
    q.max = 1000;
    auto page = m->query(a, q);
    REQUIRE(page.ok());
    std::vector<ArchiveId> out;
    for (auto& it : page->items) out.push_back(it.archive_id);
    return out;
  }
};

std::vector<ArchiveId> range(ArchiveId from, ArchiveId to) {
  std::vector<ArchiveId> v;
  for (ArchiveId i = from; i <= to; ++i) v.push_back(i);
  return v;
}

TEST_CASE("prune by count and by age, in bounded batches") {
  struct Row {
    const char* what;
    op::PruneArchive p;
    std::vector<uint64_t> batches;  // count of each batch until 0 or short
    ArchiveId first_left;
  };
  const Row rows[] = {
      {"keep the last 30 of 100, batches of 25", {0, 0, 30, 25}, {25, 25, 20}, 71},
      {"older than message 40 (archive time), batches of 500",
       {0, kT0 + 40 * 1000, 0, 500},
       {40},
       41},
      {"both: the stricter wins", {0, kT0 + 10 * 1000, 50, 500}, {50}, 51},
      {"age limit before everything: nothing", {0, kT0 - 1, 0, 500}, {0}, 1},
      {"keep more than there are: nothing", {0, 0, 1000, 500}, {0}, 1},
      {"no limits: nothing", {0, 0, 0, 500}, {0}, 1},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    Fixture f(100);
    std::vector<uint64_t> got;
    for (int guard = 0; guard < 20; ++guard) {
      const uint64_t n = f.prune(row.p);
      got.push_back(n);
      if (n < row.p.max_batch) break;
    }
    CHECK(got == row.batches);
    auto b = f.m->bounds(f.a);
    REQUIRE(b.ok());
    CHECK(b->first_id == row.first_left);
    CHECK(b->last_id == 100);
    CHECK(f.ids() == range(row.first_left, 100));
    // The other account is untouched.
    auto ob = f.m->bounds(f.other);
    REQUIRE(ob.ok());
    CHECK(ob->first_id == 1);
    CHECK(ob->last_id == 1);
  }
}

TEST_CASE("pruned messages leave no index entries; the rest still resolve and dedup") {
  Fixture f(20);
  CHECK(f.prune({0, 0, 5, 500}) == 15);
  // Gone: upstream id, origin-id, 'id', `with`.
  for (int i : {0, 7, 14}) {
    INFO(i);
    auto up = f.m->find_upstream_id(f.a, "S" + std::to_string(i));
    REQUIRE(up.ok());
    CHECK_FALSE(up->has_value());
  }
  MamQuery with_bob;
  with_bob.with = "bob@example.org";
  CHECK(f.ids(with_bob) == std::vector<ArchiveId>{17, 19});  // bob: even i, odd ids
  // Kept: message 15 (id 16) still dedups by its upstream id and origin-id.
  auto up = f.m->find_upstream_id(f.a, "S15");
  REQUIRE(up.ok());
  CHECK(up->value_or(0) == 16);
  auto again = append(*f.m, f.a, msg("carol@example.org", kT0 + 15 * 1000, "S15", "O15"));
  CHECK(again.duplicate);
  CHECK(again.archive_id == 16);
  // The other account's identical keys were not touched.
  auto other_up = f.m->find_upstream_id(f.other, "S0");
  REQUIRE(other_up.ok());
  CHECK(other_up->value_or(0) == 1);
  // A new message gets the next id: the archive stays dense.
  auto fresh = append(*f.m, f.a, msg("bob@example.org", kT0 + 99'000, "S-new"));
  CHECK(fresh.archive_id == 21);
  CHECK(f.ids() == range(16, 21));
}

TEST_CASE("a cursor into the pruned prefix continues from the oldest remaining message") {
  Fixture f(50);
  CHECK(f.prune({0, 0, 20, 500}) == 30);
  MamQuery after_pruned;
  after_pruned.after_id = render_archive_id(10);
  CHECK(f.ids(after_pruned) == range(31, 50));
  MamQuery before_pruned;
  before_pruned.before_id = render_archive_id(10);
  CHECK(f.ids(before_pruned).empty());
  MamQuery after_kept;
  after_kept.after_id = render_archive_id(45);
  CHECK(f.ids(after_kept) == range(46, 50));
  // Ids that never existed are still item-not-found.
  MamQuery future;
  future.after_id = render_archive_id(51);
  auto page = f.m->query(f.a, future);
  REQUIRE_FALSE(page.ok());
  CHECK(page.error().code == Errc::kItemNotFound);
  MamQuery zero;
  zero.after_id = render_archive_id(0);
  CHECK_FALSE(f.m->query(f.a, zero).ok());
  // Counts stay exact over the dense remainder.
  MamQuery all;
  all.max = 5;
  auto p = f.m->query(f.a, all);
  REQUIRE(p.ok());
  CHECK(p->count == 20);
  CHECK(p->first_index == 0);
}

}  // namespace
