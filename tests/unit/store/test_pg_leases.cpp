// Account leases and fencing on PostgreSQL (pg_leases.h): two stores on one
// database stand for two nodes.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "common/store/pg_leases.h"
#include "store_test_util.h"

using namespace s2::store;
using namespace s2::store::test;

namespace {

std::string conninfo_for(const TempDir& dir) {
  return std::string(postgres_conninfo()) + " options='-c search_path=" + schema_for(dir.path()) +
         "'";
}

std::unique_ptr<AccountLeases> leases(const TempDir& dir, PgStore& s, const std::string& node) {
  auto l = AccountLeases::open(LeaseOptions{conninfo_for(dir), node, node + ":5222"}, s);
  if (!l) throw std::runtime_error("leases: " + l.error().text);
  return std::move(*l);
}

PgStore& as_pg(std::unique_ptr<Store>& s) { return dynamic_cast<PgStore&>(*s); }

}  // namespace

TEST_CASE("one owner per account; a node that lost its lease can no longer commit" *
          doctest::test_suite("postgres-only")) {
  TempDir dir;
  auto a_store = open_store(options(dir.path()));  // node A
  auto b_store = open_store(options(dir.path()));  // node B, same database and schema
  const AccountNo alice = create_account(*a_store, "alice@example.org");
  const AccountNo bob = create_account(*a_store, "bob@example.org");
  // Only accounts with credentials are candidates for a takeover (an anchor needs them).
  REQUIRE(
      write_sync(*a_store, {op::PutCredentials{alice, "sealed"}, op::PutCredentials{bob, "sealed"}})
          .ok());
  auto a = leases(dir, as_pg(a_store), "node-a");
  auto b = leases(dir, as_pg(b_store), "node-b");

  // Nobody owns them yet; A takes alice, B takes bob.
  auto free = b->unowned(/*now_ms=*/INT64_MAX / 2, /*settle_ms=*/0, 10);
  REQUIRE(free.ok());
  CHECK(free->size() == 2);
  auto ca = a->claim(alice);
  REQUIRE(ca.ok());
  CHECK(ca->owned);
  CHECK(ca->epoch == 1);
  CHECK(a->claim(alice)->epoch == 1);  // already held: same epoch, no bump
  auto cb = b->claim(alice);
  REQUIRE(cb.ok());
  CHECK_FALSE(cb->owned);
  CHECK(cb->node == "node-a");
  CHECK(cb->address == "node-a:5222");
  CHECK(b->claim(bob)->owned);
  free = b->unowned(INT64_MAX / 2, 0, 10);
  REQUIRE(free.ok());
  CHECK(free->empty());

  // Each node commits for its own accounts only.
  CHECK(write_sync(*a_store, {op::Append{alice, msg("bob@example.org", 1, "S1"), std::nullopt}})
            .ok());
  WriteResult fenced =
      write_sync(*b_store, {op::Append{alice, msg("bob@example.org", 2, "S2"), std::nullopt}});
  REQUIRE_FALSE(fenced.ok());
  CHECK(fenced.error->code == Errc::kFenced);
  CHECK(write_sync(*a_store, {op::SetSyncCursor{bob, "x"}}).error->code == Errc::kFenced);
  // FAST token records are not fenced: a login is verified wherever it lands.
  FastToken t{alice, "ua", "HT-SHA-256-NONE", 10'000, 1, 0};
  TokenHash h{};
  h.fill(7);
  CHECK(write_sync(*b_store, {op::PutFastToken{h, t}}).ok());

  // A's lease connection goes away (the node died): B takes alice over with a
  // new epoch, and A's store, which still believes it owns alice, is fenced.
  // PostgreSQL releases a closed session's locks when its backend finishes
  // exiting, a moment after the client's PQfinish: poll as the node's sweep does.
  a.reset();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    free = b->unowned(INT64_MAX / 2, 0, 10);
    REQUIRE(free.ok());
    if (!free->empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < give_up);
  REQUIRE(free->size() == 1);
  CHECK(free->at(0).bare_jid == "alice@example.org");
  auto taken = b->claim(alice);
  REQUIRE(taken.ok());
  CHECK(taken->owned);
  CHECK(taken->epoch == 2);
  WriteResult late =
      write_sync(*a_store, {op::Append{alice, msg("bob@example.org", 3, "S3"), std::nullopt}});
  REQUIRE_FALSE(late.ok());
  CHECK(late.error->code == Errc::kFenced);
  WriteResult now =
      write_sync(*b_store, {op::Append{alice, msg("bob@example.org", 4, "S4"), std::nullopt}});
  REQUIRE(now.ok());
  CHECK(now.ops[0].archive_id == 2);  // dense: nothing of A's fenced write landed
  CHECK(b->alive());
  CHECK(b->owned() == 2);
}
