// MAM queries over 1000 messages: every filter, both paging directions, and
// item-not-found.
#include <doctest/doctest.h>

#include <vector>

#include "common/store/archive_id.h"
#include "store_test_util.h"

using namespace s2::store;
using namespace s2::store::test;

namespace {

constexpr int kMessages = 1000;
constexpr int64_t kT0 = 1'700'000'000'000;
const char* const kPeers[] = {"bob@example.org", "carol@example.org", "dave@example.org"};

// Message i (0-based) gets archive id i + 1, peer kPeers[i % 3], ts kT0 + i s.
struct Fixture {
  TempDir dir;
  std::unique_ptr<Store> m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");
  AccountNo other = create_account(*m, "zed@example.org");

  Fixture() {
    WriteBatch b;
    for (int i = 0; i < kMessages; ++i) {
      b.push_back(op::Append{a, msg(kPeers[i % 3], kT0 + i * 1000, "S" + std::to_string(i)), {}});
      if (b.size() == 100) {
        REQUIRE(write_sync(*m, std::move(b)).ok());
        b.clear();
      }
    }
    append(*m, other, msg("bob@example.org", kT0));
  }

  // Pages through the whole result in the given direction; returns ids in
  // archive order and checks each page's metadata on the way.
  std::vector<ArchiveId> page_all(MamQuery q, size_t max, bool backward) {
    q.max = max;
    q.from_end = backward;
    std::vector<std::vector<ArchiveId>> pages;
    for (int guard = 0; guard < 10000; ++guard) {
      auto page = m->query(a, q);
      REQUIRE(page.ok());
      std::vector<ArchiveId> ids;
      for (auto& it : page->items) ids.push_back(it.archive_id);
      if (!ids.empty()) {
        CHECK(page->first == render_archive_id(ids.front()));
        CHECK(page->last == render_archive_id(ids.back()));
      }
      CHECK(ids.size() <= max);
      pages.push_back(ids);
      if (page->complete) break;
      REQUIRE(ids.size() == max);  // an incomplete page is a full page
      if (backward) {
        q.before_id = page->first;
      } else {
        q.after_id = page->last;
      }
    }
    if (backward) std::reverse(pages.begin(), pages.end());
    std::vector<ArchiveId> all;
    for (auto& p : pages) all.insert(all.end(), p.begin(), p.end());
    return all;
  }
};

std::vector<ArchiveId> expected(int from, int to, const char* peer = nullptr) {
  std::vector<ArchiveId> out;  // message indexes [from, to)
  for (int i = from; i < to; ++i) {
    if (peer == nullptr || std::string(kPeers[i % 3]) == peer) out.push_back(i + 1);
  }
  return out;
}

}  // namespace

TEST_CASE("paging the whole archive returns each message once, in order, both directions") {
  Fixture f;
  for (size_t max : {37, 250, 1000, 5000}) {
    CAPTURE(max);
    CHECK(f.page_all({}, max, false) == expected(0, kMessages));
    CHECK(f.page_all({}, max, true) == expected(0, kMessages));
  }
}

TEST_CASE("count and index are exact without `with`") {
  Fixture f;
  MamQuery q;
  q.max = 10;
  auto p = f.m->query(f.a, q);
  REQUIRE(p.ok());
  CHECK(p->count == 1000u);
  CHECK(p->first_index == 0u);
  CHECK_FALSE(p->complete);
  q.after_id = render_archive_id(500);
  p = f.m->query(f.a, q);
  CHECK(p->count == 500u);
  CHECK(p->items.front().archive_id == 501);
  q.after_id.reset();
  q.from_end = true;
  p = f.m->query(f.a, q);
  CHECK(p->first_index == 990u);
  CHECK(p->items.back().archive_id == 1000);
  q.max = 0;  // count only
  p = f.m->query(f.a, q);
  CHECK(p->items.empty());
  CHECK(p->count == 1000u);
}

TEST_CASE("`with` pages through one peer's index") {
  Fixture f;
  MamQuery q;
  q.with = "carol@example.org";
  CHECK(f.page_all(q, 25, false) == expected(0, kMessages, "carol@example.org"));
  CHECK(f.page_all(q, 25, true) == expected(0, kMessages, "carol@example.org"));
  CHECK(f.page_all(q, 1000, false) == expected(0, kMessages, "carol@example.org"));
  q.max = 1000;
  auto p = f.m->query(f.a, q);
  REQUIRE(p->complete);
  CHECK(p->count == 333u);  // complete page: the count is exact
  q.with = "nobody@example.org";
  p = f.m->query(f.a, q);
  CHECK(p->items.empty());
  CHECK(p->complete);
}

TEST_CASE("start/end select by archive time, inclusive, alone and with `with`") {
  Fixture f;
  MamQuery q;
  q.start_ms = kT0 + 100'000;
  q.end_ms = kT0 + 199'500;
  CHECK(f.page_all(q, 30, false) == expected(100, 200));
  CHECK(f.page_all(q, 30, true) == expected(100, 200));
  q.with = "bob@example.org";
  CHECK(f.page_all(q, 7, false) == expected(100, 200, "bob@example.org"));
  CHECK(f.page_all(q, 7, true) == expected(100, 200, "bob@example.org"));
  q = {};
  q.start_ms = kT0 + 999'000;
  CHECK(f.page_all(q, 10, false) == expected(999, 1000));
  q.start_ms = kT0 + 999'001;
  CHECK(f.page_all(q, 10, false).empty());
  q = {};
  q.end_ms = kT0 - 1;
  CHECK(f.page_all(q, 10, false).empty());
  q.end_ms = kT0;
  CHECK(f.page_all(q, 10, false) == expected(0, 1));
}

TEST_CASE("after-id and before-id bound the range") {
  Fixture f;
  MamQuery q;
  q.after_id = render_archive_id(10);
  q.before_id = render_archive_id(21);
  CHECK(f.page_all(q, 3, false) == expected(10, 20));
  q.with = "dave@example.org";
  CHECK(f.page_all(q, 3, true) == expected(10, 20, "dave@example.org"));
  q = {};
  q.after_id = render_archive_id(1000);
  auto p = f.m->query(f.a, q);
  REQUIRE(p.ok());
  CHECK(p->items.empty());
  CHECK(p->complete);
}

TEST_CASE("unknown after/before/ids is item-not-found") {
  Fixture f;
  const std::string unknown[] = {render_archive_id(1001), render_archive_id(0), "garbage",
                                 "28482-98726-73623", ""};
  for (const std::string& id : unknown) {
    CAPTURE(id);
    MamQuery q;
    q.after_id = id;
    auto p = f.m->query(f.a, q);
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().code == Errc::kItemNotFound);
    q = {};
    q.before_id = id;
    CHECK(f.m->query(f.a, q).error().code == Errc::kItemNotFound);
    q = {};
    q.ids = {render_archive_id(5), id};
    CHECK(f.m->query(f.a, q).error().code == Errc::kItemNotFound);
  }
  // Ids are per account: the other account only has id 1.
  MamQuery q;
  q.after_id = render_archive_id(2);
  CHECK(f.m->query(f.other, q).error().code == Errc::kItemNotFound);
  // An empty archive knows no id either.
  AccountNo empty = create_account(*f.m, "new@example.org");
  CHECK(f.m->query(empty, q).error().code == Errc::kItemNotFound);
  auto p = f.m->query(empty, MamQuery{});
  REQUIRE(p.ok());
  CHECK(p->items.empty());
  CHECK(p->complete);
  CHECK(p->count == 0u);
}

TEST_CASE("ids fetches exactly those messages, in archive order") {
  Fixture f;
  MamQuery q;
  q.ids = {render_archive_id(7), render_archive_id(1), render_archive_id(5), render_archive_id(1)};
  auto p = f.m->query(f.a, q);
  REQUIRE(p.ok());
  REQUIRE(p->items.size() == 3);
  CHECK(p->items[0].archive_id == 1);
  CHECK(p->items[1].archive_id == 5);
  CHECK(p->items[2].archive_id == 7);
  CHECK(p->count == 3u);
  CHECK(p->complete);
  q.with = "bob@example.org";  // id 5 is carol's
  p = f.m->query(f.a, q);
  REQUIRE(p->items.size() == 2);
  CHECK(p->items[0].archive_id == 1);
  CHECK(p->items[1].archive_id == 7);
  q.max = 1;
  q.from_end = true;
  p = f.m->query(f.a, q);
  REQUIRE(p->items.size() == 1);
  CHECK(p->items[0].archive_id == 7);
  CHECK_FALSE(p->complete);
  CHECK(p->first_index == 1u);
}

TEST_CASE("archive time never goes backwards; the record keeps its own timestamp") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");
  append(*m, a, msg("bob@example.org", 5000));
  append(*m, a, msg("bob@example.org", 3000));  // delayed delivery, stamped earlier
  auto second = *m->get_message(a, 2);
  REQUIRE(second.has_value());
  CHECK(second->record.timestamp_ms == 3000);
  CHECK(second->archive_ms == 5000);
  MamQuery q;
  q.start_ms = 5000;
  CHECK(m->query(a, q)->items.size() == 2);
  auto b = *m->bounds(a);
  CHECK(b.first_id == 1);
  CHECK(b.last_id == 2);
  CHECK(b.first_ms == 5000);
  CHECK(b.last_ms == 5000);
  auto empty = *m->bounds(create_account(*m, "x@example.org"));
  CHECK(empty.first_id == 0);
  CHECK(empty.last_id == 0);
}
