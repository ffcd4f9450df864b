// Crash safety (ARCHITECTURE §5: "kill -9 at any moment loses nothing that was
// acknowledged and duplicates nothing").
//
// A forked child appends through the writer as fast as it can — each batch an
// append, its outbox entry and the sync cursor, plus re-submitted duplicates —
// and reports every completion on a pipe. The parent SIGKILLs it mid-stream,
// reopens the mirror and checks: every reported append is there with its id,
// exactly once; ids are dense and monotonic; the cursor names the newest
// message; the outbox holds every reported entry. Three rounds on the same
// directory, so recovery from a crash is itself crashed.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "store_test_util.h"

using namespace s2::store;
using namespace s2::store::test;

namespace {

constexpr size_t kKillAfter = 3000;  // reports before the kill
constexpr int kDupEvery = 10;        // every 10th submission repeats an earlier message

std::string sid(int i) { return "up-" + std::to_string(i); }

[[noreturn]] void child(const std::string& dir, int fd, int base) {
  MirrorOptions o;
  o.dir = dir;
  o.map_size = size_t{64} << 20;
  o.writer.max_delay = std::chrono::microseconds(500);
  auto opened = Mirror::open(o);
  if (!opened) _exit(2);
  Mirror& m = **opened;
  WriteResult created = write_sync(m, {op::CreateAccount{"crash@example.org"}});
  if (!created.ok()) _exit(3);
  AccountNo a = created.ops[0].account;

  std::atomic<int> inflight{0};
  for (int i = base;; ++i) {
    while (inflight.load() > 512) std::this_thread::sleep_for(std::chrono::microseconds(50));
    ++inflight;
    bool dup = i % kDupEvery == kDupEvery - 1;
    int n = dup && i - 5 >= base ? i - 5 : i;  // a duplicate re-sends message i - 5
    dup = n != i;
    MessageRecord r = msg("bob@example.org", 1000 + n, sid(n));
    WriteBatch b{op::Append{a, r, OutboxItem{"dev", "<m/>", n}}};
    if (!dup) b.push_back(op::SetSyncCursor{a, sid(n)});
    m.submit(std::move(b), [fd, n, dup, &inflight](WriteResult res) {
      if (res.ok()) {
        char line[96];
        int len = std::snprintf(line, sizeof line, "%c %d %llu %llu\n", dup ? 'D' : 'A', n,
                                static_cast<unsigned long long>(res.ops[0].archive_id),
                                static_cast<unsigned long long>(res.ops[0].outbox_seq));
        if (::write(fd, line, len) != len) _exit(4);  // < PIPE_BUF: atomic
      }
      --inflight;
    });
  }
}

struct Report {
  std::map<int, std::pair<ArchiveId, uint64_t>> appended;  // n → (id, outbox seq)
  std::vector<std::pair<int, ArchiveId>> duplicates;       // n → id returned for the repeat
};

// Reads reports, kills the child after kKillAfter of them, reads to EOF.
void collect(pid_t pid, int fd, Report& rep) {
  std::string buf;
  size_t lines = 0;
  bool killed = false;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 30'000) == 1);  // the child must make progress
    char chunk[4096];
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      char kind = 0;
      int num = 0;
      unsigned long long id = 0, seq = 0;
      REQUIRE(std::sscanf(buf.c_str(), "%c %d %llu %llu", &kind, &num, &id, &seq) == 4);
      if (kind == 'A') {
        rep.appended[num] = {id, seq};
      } else {
        rep.duplicates.emplace_back(num, id);
      }
      buf.erase(0, nl + 1);
      ++lines;
    }
    if (!killed && lines >= kKillAfter) {
      REQUIRE(::kill(pid, SIGKILL) == 0);
      killed = true;
    }
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(killed);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
}

void run_round(const std::string& dir, int base, Report& rep) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    child(dir, fds[1], base);
  }
  ::close(fds[1]);
  collect(pid, fds[0], rep);
  ::close(fds[0]);
}

}  // namespace

TEST_CASE("kill -9 mid-stream loses no acknowledged append and duplicates none" *
          doctest::test_suite("lmdb-only")) {
  TempDir dir;
  Report rep;
  for (int round = 0; round < 3; ++round) {
    run_round(dir.path(), round * 1'000'000, rep);
    MESSAGE("round " << round << ": acknowledged appends " << rep.appended.size() << ", duplicates "
                     << rep.duplicates.size());
  }

  auto m = open_mirror(options(dir.path()));
  auto acct = *m->find_account("crash@example.org");
  REQUIRE(acct.has_value());
  AccountNo a = acct->account;

  // Walk the whole archive: dense ids from 1, each upstream id exactly once.
  std::map<std::string, ArchiveId> stored;
  ArchiveId expect = 1;
  MamQuery q;
  q.max = 1000;
  for (;;) {
    auto page = m->query(a, q);
    REQUIRE(page.ok());
    for (const StoredMessage& s : page->items) {
      REQUIRE(s.archive_id == expect++);
      REQUIRE(stored.emplace(s.record.upstream_stanza_id, s.archive_id).second);
    }
    if (page->complete) break;
    q.after_id = page->last;
  }
  ArchiveId last = expect - 1;
  CHECK(last >= rep.appended.size());

  // Every acknowledged append is there, with the id it was acknowledged with.
  for (auto& [n, v] : rep.appended) {
    auto it = stored.find(sid(n));
    REQUIRE(it != stored.end());
    CHECK(it->second == v.first);
  }
  // Every acknowledged duplicate named the original's id.
  for (auto& [n, id] : rep.duplicates) {
    auto it = stored.find(sid(n));
    REQUIRE(it != stored.end());
    CHECK(it->second == id);
  }
  // The cursor was committed with the newest message.
  auto newest = *m->get_message(a, last);
  REQUIRE(newest.has_value());
  CHECK(**m->get_sync_cursor(a) == newest->record.upstream_stanza_id);
  // The outbox holds one entry per stored message (dups enqueue nothing), and
  // every acknowledged one.
  auto outbox = *m->list_outbox(a, 0, 1'000'000);
  CHECK(outbox.size() == last);
  std::map<uint64_t, ArchiveId> by_seq;
  for (auto& e : outbox) by_seq[e.seq] = e.archive_id;
  for (auto& [n, v] : rep.appended) {
    auto it = by_seq.find(v.second);
    REQUIRE(it != by_seq.end());
    CHECK(it->second == v.first);
  }
}
