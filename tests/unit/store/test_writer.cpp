// The writer thread: group commit, completion delivery through an executor,
// per-batch isolation inside a group, stop, and map growth / map full.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "store_test_util.h"

using namespace s2::store;
using namespace s2::store::test;

TEST_CASE("completions run on the executor, after commit, in submit order") {
  TempDir dir;
  QueueExecutor q;
  MirrorOptions o = options(dir.path());
  o.writer.executor = q.executor();
  o.writer.max_delay = std::chrono::microseconds(2000);
  std::atomic<int> commits{0};
  o.writer.on_commit = [&](const CommitInfo&) { ++commits; };
  auto m = open_store(o);

  AccountNo a = 0;
  m->submit({op::CreateAccount{"alice@example.org"}}, [&](WriteResult r) {
    REQUIRE(r.ok());
    a = r.ops[0].account;
  });
  q.run_until([&] { return a != 0; });

  constexpr int kN = 3000;
  std::vector<ArchiveId> done;
  std::thread::id loop = std::this_thread::get_id();
  for (int i = 0; i < kN; ++i) {
    m->submit({op::Append{a, msg("bob@example.org", i, "S" + std::to_string(i)), std::nullopt}},
              [&, i](WriteResult r) {
                REQUIRE(r.ok());
                CHECK(std::this_thread::get_id() == loop);
                // Durable and visible to a fresh read snapshot already.
                auto stored = m->get_message(a, r.ops[0].archive_id);
                REQUIRE(stored.ok());
                REQUIRE(stored->has_value());
                CHECK((*stored)->record.upstream_stanza_id == "S" + std::to_string(i));
                done.push_back(r.ops[0].archive_id);
              });
  }
  q.run_until([&] { return done.size() == kN; });
  for (int i = 0; i < kN; ++i) CHECK(done[i] == ArchiveId(i + 1));
  CHECK(commits.load() < kN);  // grouped, not one fsync per append
}

// On PostgreSQL several writer threads commit side by side (pg_store.h): each account's writes
// must still commit and complete in the order they were submitted, whatever the interleaving.
TEST_CASE("interleaved accounts: each account's writes commit and complete in submit order") {
  TempDir dir;
  QueueExecutor q;
  MirrorOptions o = options(dir.path());
  o.writer.executor = q.executor();
  auto m = open_store(o);
  std::vector<AccountNo> accounts;
  for (const char* jid : {"alice@example.org", "bob@example.org", "carol@example.org"}) {
    AccountNo a = 0;
    m->submit({op::CreateAccount{jid}}, [&](WriteResult r) {
      REQUIRE(r.ok());
      a = r.ops[0].account;
    });
    q.run_until([&] { return a != 0; });
    accounts.push_back(a);
  }
  // A burst for the first account, with the others' writes in between, some of them lone.
  constexpr int kN = 600;
  std::map<AccountNo, std::vector<int>> completed;  // per account: the submit numbers, in order
  std::map<AccountNo, std::vector<ArchiveId>> ids;
  int done = 0;
  int submitted = 0;
  for (int i = 0; i < kN; ++i) {
    const AccountNo a = i % 5 == 0 ? accounts[1 + (i / 5) % 2] : accounts[0];
    m->submit({op::Append{a, msg("dave@example.org", i, "S" + std::to_string(i)), std::nullopt}},
              [&, a, i](WriteResult r) {
                REQUIRE(r.ok());
                completed[a].push_back(i);
                ids[a].push_back(r.ops[0].archive_id);
                ++done;
              });
    ++submitted;
    if (i % 97 == 0) q.run_until([&] { return done >= submitted / 2; });  // interleave completions
  }
  q.run_until([&] { return done == kN; });
  for (AccountNo a : accounts) {
    const auto& c = completed[a];
    const auto& id = ids[a];
    REQUIRE(!c.empty());
    CHECK(std::is_sorted(c.begin(), c.end()));
    for (size_t k = 0; k < id.size(); ++k) CHECK(id[k] == ArchiveId(k + 1));
  }
}

TEST_CASE("a failing batch does not fail, or leak into, the others of its group") {
  TempDir dir;
  AccountNo a = 0;
  {
    auto m = open_store(options(dir.path()));
    a = create_account(*m, "alice@example.org");
  }
  // A full group commits at once, so max_batch 3 with a long linger puts the
  // next three requests into one transaction without depending on timing.
  MirrorOptions o = options(dir.path());
  o.writer.max_batch = 3;
  o.writer.max_delay = std::chrono::seconds(30);
  o.writer.linger_when_idle = true;
  std::vector<CommitInfo> infos;
  std::mutex mu;
  o.writer.on_commit = [&](const CommitInfo& i) {
    std::lock_guard lk(mu);
    infos.push_back(i);
  };
  auto m = open_store(o);

  std::promise<WriteResult> p1, p2, p3;
  m->submit({op::Append{a, msg("bob@example.org", 1, "S1"), std::nullopt}},
            [&](WriteResult r) { p1.set_value(r); });
  m->submit({op::Append{a, msg("bob@example.org", 2, "S2"), std::nullopt},
             op::Append{4242, msg("bob@example.org", 2), std::nullopt}},
            [&](WriteResult r) { p2.set_value(r); });
  m->submit({op::Append{a, msg("bob@example.org", 3, "S3"), std::nullopt}},
            [&](WriteResult r) { p3.set_value(r); });
  WriteResult r1 = p1.get_future().get(), r2 = p2.get_future().get(), r3 = p3.get_future().get();
  REQUIRE(r1.ok());
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.error->code == Errc::kNotFound);
  REQUIRE(r3.ok());
  CHECK(r1.ops[0].archive_id == 1);
  CHECK(r3.ops[0].archive_id == 2);  // dense: batch 2's first append was rolled back
  CHECK_FALSE(m->find_upstream_id(a, "S2")->has_value());
  std::lock_guard lk(mu);
  REQUIRE(infos.size() == 1);
  CHECK(infos[0].requests == 3);
  // LMDB re-runs the group without the failed batch; PostgreSQL rolls back
  // to the batch's savepoint and carries on in the same transaction.
  CHECK(infos[0].attempts == (testing_postgres() ? 1u : 2u));
}

TEST_CASE("stop drains; later submits complete with kClosed") {
  TempDir dir;
  MirrorOptions o = options(dir.path());
  o.writer.max_delay = std::chrono::milliseconds(50);
  std::atomic<int> ok{0};
  {
    auto m = open_store(o);
    AccountNo a = create_account(*m, "alice@example.org");
    for (int i = 0; i < 100; ++i) {
      m->submit({op::Append{a, msg("bob@example.org", i), std::nullopt}}, [&](WriteResult r) {
        if (r.ok()) ++ok;
      });
    }
  }  // ~Mirror stops the writer: everything submitted is committed and completed
  CHECK(ok.load() == 100);

  std::atomic<int> calls{0};
  MirrorWriter w([](const std::vector<const WriteBatch*>& g,
                    CommitInfo&) { return std::vector<WriteResult>(g.size()); },
                 WriterOptions{});
  w.stop();
  w.submit({}, [&](WriteResult r) {
    CHECK(r.error->code == Errc::kClosed);
    ++calls;
  });
  CHECK(calls.load() == 1);
  auto m = open_store(o);
  auto a = *m->find_account("alice@example.org");
  CHECK((*m->bounds((*a).account)).last_id == 100);
}

TEST_CASE("the map grows on MDB_MAP_FULL up to the maximum" * doctest::test_suite("lmdb-only")) {
  TempDir dir;
  MirrorOptions o = options(dir.path());
  o.map_size = size_t{1} << 20;
  o.max_map_size = size_t{64} << 20;
  auto m = open_mirror(o);
  AccountNo a = create_account(*m, "alice@example.org");
  std::string big(4000, 'x');
  WriteBatch b;
  for (int i = 0; i < 2000; ++i) {  // ~8 MB of stanzas
    MessageRecord r = msg("bob@example.org", i);
    r.stanza = big;
    b.push_back(op::Append{a, r, std::nullopt});
    if (b.size() == 200) {
      REQUIRE(write_sync(*m, std::move(b)).ok());
      b.clear();
    }
  }
  CHECK(m->map_grows() > 0);
  CHECK(m->map_size() > o.map_size);
  CHECK(m->bounds(a)->last_id == 2000);
}

TEST_CASE("at the maximum map size writes fail cleanly and reads still work" *
          doctest::test_suite("lmdb-only")) {
  TempDir dir;
  MirrorOptions o = options(dir.path());
  o.map_size = size_t{1} << 20;
  o.max_map_size = size_t{1} << 20;
  auto m = open_mirror(o);
  AccountNo a = create_account(*m, "alice@example.org");
  std::string big(4000, 'x');
  std::optional<Error> err;
  ArchiveId last = 0;
  for (int i = 0; i < 1000 && !err; ++i) {
    MessageRecord r = msg("bob@example.org", i);
    r.stanza = big;
    WriteResult w = write_sync(*m, {op::Append{a, r, std::nullopt}});
    if (w.ok()) {
      last = w.ops[0].archive_id;
    } else {
      err = w.error;
    }
  }
  REQUIRE(err.has_value());
  CHECK(err->code == Errc::kMapFull);
  CHECK(last > 0);
  CHECK(m->bounds(a)->last_id == last);
  MamQuery q;
  q.max = 5;
  q.from_end = true;
  CHECK(m->query(a, q)->items.size() == 5);
  // Deleting still works and makes room again.
  REQUIRE(write_sync(*m, {op::ForgetAccount{"alice@example.org"}}).ok());
  AccountNo b = create_account(*m, "bob@example.org");
  CHECK(append(*m, b, msg("x@example.org", 1)).archive_id == 1);
}

TEST_CASE("an idle writer commits a lone request at once; under load groups linger") {
  TempDir dir;
  MirrorOptions o = options(dir.path());
  o.writer.max_delay = std::chrono::seconds(30);  // would time the test out if it lingered
  std::vector<CommitInfo> infos;
  std::mutex mu;
  o.writer.on_commit = [&](const CommitInfo& i) {
    std::lock_guard lk(mu);
    infos.push_back(i);
  };
  auto m = open_store(o);
  AccountNo a = create_account(*m, "alice@example.org");
  const auto t0 = std::chrono::steady_clock::now();
  std::promise<WriteResult> p1;
  m->submit({op::Append{a, msg("bob@example.org", 1), std::nullopt}},
            [&](WriteResult r) { p1.set_value(r); });
  REQUIRE(p1.get_future().get().ok());
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  std::lock_guard lk(mu);
  REQUIRE_FALSE(infos.empty());
  CHECK(infos.back().requests == 1);
}

TEST_CASE(
    "a queue longer than a group: every waiting account's head goes first, order per account") {
  // The writer alone, with a commit function that records its groups; the
  // first group blocks until the queue has built up behind it.
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::vector<std::vector<std::pair<AccountNo, int64_t>>> groups;  // (account, sequence)
  MirrorWriter::GroupCommit commit = [&](const std::vector<const WriteBatch*>& batches,
                                         CommitInfo&) {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return release; });
    auto& g = groups.emplace_back();
    for (const auto* b : batches) {
      const auto& ap = std::get<op::Append>(b->front());
      g.emplace_back(ap.account, ap.message.timestamp_ms);
    }
    return std::vector<WriteResult>(batches.size());
  };
  WriterOptions o;
  o.max_batch = 4;
  std::atomic<int> completed{0};
  {
    MirrorWriter w(commit, o);
    auto submit = [&](AccountNo a, int64_t seq) {
      w.submit({op::Append{a, msg("bob@example.org", seq), std::nullopt}},
               [&](WriteResult) { ++completed; });
    };
    submit(1, 0);  // the group in flight (blocked)
    while (w.queued() != 0) std::this_thread::yield();
    for (int i = 1; i <= 9; ++i) submit(1, i);  // account 1's burst
    submit(2, 100);                             // another account's lone write
    submit(3, 200);
    submit(1, 10);
    CHECK(w.queued() == 12);
    {
      std::lock_guard lk(mu);
      release = true;
    }
    cv.notify_all();
    w.stop();
  }
  CHECK(completed == 13);
  REQUIRE(groups.size() >= 2);
  // The group after the one in flight holds both lone writes.
  std::vector<AccountNo> second;
  for (auto& [a, seq] : groups[1]) second.push_back(a);
  CHECK(groups[1].size() == 4);
  CHECK(std::count(second.begin(), second.end(), AccountNo{2}) == 1);
  CHECK(std::count(second.begin(), second.end(), AccountNo{3}) == 1);
  // Every account's requests committed in submit order, none lost.
  std::map<AccountNo, std::vector<int64_t>> order;
  for (auto& g : groups)
    for (auto& [a, seq] : g) order[a].push_back(seq);
  CHECK(order[1] == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(order[2] == std::vector<int64_t>{100});
  CHECK(order[3] == std::vector<int64_t>{200});
  // A queue that fits one group is taken as it is.
  CHECK(groups[0].size() == 1);
}

TEST_CASE("lane_of: the account of a batch's first op, 0 when it names none") {
  CHECK(lane_of({}) == 0);
  CHECK(lane_of({op::CreateAccount{"a@example.org"}}) == 0);
  CHECK(lane_of({op::Append{7, msg("bob@example.org", 1), std::nullopt}}) == 7);
  CHECK(lane_of({op::SetSyncCursor{9, "x"}, op::CreateAccount{"a@example.org"}}) == 9);
}

// Bookkeeping nobody waits for (cursors, outbox removals) rides the next commit someone waits
// for, instead of paying a commit of its own; alone, it still commits after deferrable_delay.
TEST_CASE(
    "a deferrable request waits for company, up to its delay, and keeps its account's order") {
  std::mutex mu;
  std::vector<std::vector<std::pair<AccountNo, int64_t>>> groups;  // (account, sequence)
  MirrorWriter::GroupCommit commit = [&](const std::vector<const WriteBatch*>& batches,
                                         CommitInfo&) {
    std::lock_guard lk(mu);
    auto& g = groups.emplace_back();
    for (const auto* b : batches) {
      const auto& ap = std::get<op::Append>(b->front());
      g.emplace_back(ap.account, ap.message.timestamp_ms);
    }
    return std::vector<WriteResult>(batches.size());
  };
  auto group_count = [&] {
    std::lock_guard lk(mu);
    return groups.size();
  };
  WriterOptions o;
  o.deferrable_delay = std::chrono::milliseconds(300);
  std::atomic<int> completed{0};
  {
    MirrorWriter w(commit, o);
    auto submit = [&](AccountNo a, int64_t seq, bool deferrable) {
      w.submit(
          {op::Append{a, msg("bob@example.org", seq), std::nullopt}},
          [&](WriteResult) { ++completed; }, deferrable);
    };
    // Two deferrable requests wait; a request someone waits for takes them along, in order.
    submit(1, 1, true);
    submit(2, 2, true);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(group_count() == 0);
    CHECK(completed == 0);
    submit(1, 3, false);
    while (completed < 3) std::this_thread::yield();
    {
      std::lock_guard lk(mu);
      REQUIRE(groups.size() == 1);
      CHECK(groups[0] == std::vector<std::pair<AccountNo, int64_t>>{{1, 1}, {2, 2}, {1, 3}});
    }
    // Alone, a deferrable request commits once its delay has passed, not before.
    const auto t0 = std::chrono::steady_clock::now();
    submit(3, 4, true);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(group_count() == 1);
    while (completed < 4) std::this_thread::yield();
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took >= std::chrono::milliseconds(300));
    CHECK(took < std::chrono::seconds(5));
    CHECK(group_count() == 2);
    // stop() commits what is deferred at once.
    submit(4, 5, true);
    const auto t1 = std::chrono::steady_clock::now();
    w.stop();
    CHECK(std::chrono::steady_clock::now() - t1 < std::chrono::milliseconds(250));
  }
  CHECK(completed == 5);
  std::lock_guard lk(mu);
  REQUIRE(groups.size() == 3);
  CHECK(groups[2] == std::vector<std::pair<AccountNo, int64_t>>{{4, 5}});
}

// A clean stop must not leave deferrable writes behind on any writer: Store::flush commits them
// at once (PostgreSQL runs several writers; an account's writes stay on one).
TEST_CASE("flush commits the deferrable writes of every writer at once, then completes") {
  TempDir dir;
  MirrorOptions o = options(dir.path());
  o.writer.deferrable_delay = std::chrono::seconds(30);  // would time the test out
  auto m = open_store(o);
  std::vector<AccountNo> accounts;
  for (int i = 0; i < 4; ++i)
    accounts.push_back(create_account(*m, "user" + std::to_string(i) + "@example.org"));
  std::mutex mu;
  std::vector<std::string> order;
  for (size_t i = 0; i < accounts.size(); ++i)
    m->submit_deferrable({op::Append{accounts[i], msg("bob@example.org", 1), std::nullopt}},
                         [&, i](WriteResult r) {
                           CHECK(r.ok());
                           std::lock_guard lk(mu);
                           order.push_back("append" + std::to_string(i));
                         });
  const auto t0 = std::chrono::steady_clock::now();
  std::promise<void> flushed;
  m->flush([&](WriteResult) {
    {
      std::lock_guard lk(mu);
      order.push_back("flush");
    }
    flushed.set_value();
  });
  flushed.get_future().get();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  std::lock_guard lk(mu);
  REQUIRE(order.size() == accounts.size() + 1);
  CHECK(order.back() == "flush");
  for (AccountNo a : accounts) {
    auto b = m->bounds(a);
    REQUIRE(b.ok());
    CHECK(b->last_id == 1);
  }
}
