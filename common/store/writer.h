// MirrorWriter: the one thread that runs write transactions (group commit).
//
// ARCHITECTURE §3: the libuv loop must never wait for fsync, and one fsync per
// stanza would cap the proxy at a few hundred stanzas per second. Callers
// submit a WriteBatch with a completion callback and return at once; this
// thread collects requests until it has `max_batch` of them or the oldest has
// waited `max_delay`, applies them all in ONE transaction, commits (the fsync
// is shared by the whole group), and only then posts the completions. A
// completion therefore always means "durable": the caller may ack (SM <a/>)
// from it.
//
// Under load the queue refills while a commit is in flight, so batches grow
// with the load and the fsync cost per request shrinks: batching needs no
// timer. By default nothing lingers. With `max_delay` > 0 a group that
// follows a shared commit lingers up to that long for company (the bench's
// knob); it used to be 2 ms by default, and at a chat's pace (a few hundred
// requests/s, two of them now and then in one group) that put 2 ms of pure
// waiting on the next message's round trip (issue 12: scale bench latency).
//
// A deferrable request (submit(..., true): bookkeeping nobody waits for, such as delivery
// cursors; not settled outbox entries, docs/architecture.md §31) does not wake the thread on its
// own. It waits, up to `deferrable_delay`, for a request someone waits for, and commits in that
// request's group: it rides an fsync that happens anyway. At 100 messages/s over 1,000
// single-device accounts these were half the commits (one cursor write and one outbox removal per
// message, each alone: docs/architecture.md §31). Order per account is kept: one queue, taken in
// order.
//
// Completion delivery is pluggable: `executor` receives one closure per
// committed group (the daemon wraps a queue + uv_async_send; tests use a plain
// queue). Without an executor the callbacks run on the writer thread.
//
// The writer knows nothing about LMDB: it is given a GroupCommit function
// (Mirror::commit_group) that applies a group in one transaction.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/store/store.h"

namespace s2::store {

using Executor = std::function<void(std::function<void()>)>;

// What one committed group cost; given to WriterOptions::on_commit (metrics).
struct CommitInfo {
  size_t requests = 0;  // batches in the transaction
  size_t ops = 0;
  unsigned attempts = 0;               // > 1 after a failed batch, a map resize or a split
  std::chrono::nanoseconds wait{0};    // oldest request: enqueue → transaction start
  std::chrono::nanoseconds apply{0};   // building the transaction(s)
  std::chrono::nanoseconds commit{0};  // mdb_txn_commit, fsync included
};

// max_batch is a cap that only matters under overload: a commit costs two
// syncs plus one page write per dirty page, and random-keyed dedup indexes
// dirty about a page per insert unless many inserts share pages, so bigger
// groups are cheaper per request; LMDB's own bookkeeping grows faster than
// linearly in dirty pages, which bounds the useful size (bench_mirror: 16k
// beats 4k by ~2x with UUID ids; peak dirty memory ~100 MB).
struct WriterOptions {
  size_t max_batch = 16384;                // requests per transaction
  std::chrono::microseconds max_delay{0};  // linger for more requests (0: never)
  bool linger_when_idle = false;           // also linger when the last group was a lone request
  std::chrono::milliseconds deferrable_delay{
      100};           // longest a deferrable request waits for company
  Executor executor;  // null: run completions on the writer thread
  std::function<void(const CommitInfo&)> on_commit;  // writer thread, after the commit
};

// The account a batch writes (its first op's), 0 for one that names none
// (CreateAccount): requests of one lane keep their order in every group.
uint64_t lane_of(const WriteBatch& batch);

class MirrorWriter {
 public:
  // Applies `group` in one transaction, returns one WriteResult per request
  // and fills the timing fields of `info`. Runs on the writer thread only.
  using GroupCommit =
      std::function<std::vector<WriteResult>(const std::vector<const WriteBatch*>&, CommitInfo&)>;

  MirrorWriter(GroupCommit commit, WriterOptions opts);
  ~MirrorWriter();  // stop()
  MirrorWriter(const MirrorWriter&) = delete;
  MirrorWriter& operator=(const MirrorWriter&) = delete;

  // Thread-safe. After stop(), `done` receives Errc::kClosed. `deferrable`: see above.
  void submit(WriteBatch batch, WriteCallback done, bool deferrable = false);
  // Commits and completes everything submitted so far, then joins the thread.
  // Idempotent.
  void stop();
  size_t queued() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Request {
    WriteBatch batch;
    WriteCallback done;
    Clock::time_point enqueued;
    uint64_t lane = 0;  // the account its first op writes (lane_of)
    bool deferrable = false;
  };

  void run();
  // Moves the next group out of the queue (mu_ held): see writer.cpp.
  void take_group(std::vector<Request>& group);
  void deliver(std::function<void()> task);

  GroupCommit commit_;
  WriterOptions opts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> queue_;
  size_t waited_for_ = 0;  // requests in queue_ that are not deferrable
  bool stopping_ = false;
  bool loaded_ = false;  // writer thread only: the last group had company
  // What the thread is waiting for, so submit() signals only when it matters
  // (a futex wake per request would cost more than the request).
  enum class Wait { kNone, kFirst, kFull } wait_ = Wait::kNone;
  std::thread thread_;
};

}  // namespace s2::store
