// Group-commit writer thread; see writer.h for the batching rules.
#include "common/store/writer.h"

#include <unordered_set>
#include <utility>

namespace s2::store {

uint64_t lane_of(const WriteBatch& batch) {
  if (batch.empty()) return 0;
  return std::visit(
      [](const auto& op) -> uint64_t {
        if constexpr (requires { op.account; })
          return static_cast<uint64_t>(op.account);
        else
          return 0;
      },
      batch.front());
}

MirrorWriter::MirrorWriter(GroupCommit commit, WriterOptions opts)
    : commit_(std::move(commit)), opts_(std::move(opts)) {
  if (opts_.max_batch == 0) opts_.max_batch = 1;
  thread_ = std::thread([this] { run(); });
}

MirrorWriter::~MirrorWriter() { stop(); }

void MirrorWriter::submit(WriteBatch batch, WriteCallback done, bool deferrable) {
  std::unique_lock lk(mu_);
  if (stopping_) {
    lk.unlock();
    WriteResult r;
    r.error = Error{Errc::kClosed, "store writer stopped"};
    deliver([done = std::move(done), r = std::move(r)]() mutable {
      if (done) done(std::move(r));
    });
    return;
  }
  const uint64_t lane = lane_of(batch);
  const bool was_empty = queue_.empty();
  queue_.push_back(Request{std::move(batch), std::move(done), Clock::now(), lane, deferrable});
  if (!deferrable) ++waited_for_;
  // A deferrable request wakes the thread only to start its deadline (the queue was empty).
  bool wake = (wait_ == Wait::kFirst && (!deferrable || was_empty)) ||
              (wait_ == Wait::kFull && queue_.size() >= opts_.max_batch);
  if (wake) wait_ = Wait::kNone;  // one signal is enough
  lk.unlock();
  if (wake) cv_.notify_one();
}

void MirrorWriter::stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

size_t MirrorWriter::queued() const {
  std::lock_guard lk(mu_);
  return queue_.size();
}

void MirrorWriter::deliver(std::function<void()> task) {
  if (opts_.executor) {
    opts_.executor(std::move(task));
  } else {
    task();
  }
}

// A group is the queue's head, unless the queue holds more than a group:
// then the first request of every account waiting goes first, and the rest
// fill the group in queue order. One account's burst (a client writing
// thousands of messages) so never makes another account's lone write wait
// behind more than the group in flight. Each account's requests stay in
// order: what a group takes of one lane is a prefix of it (its head, then
// the next ones in queue order up to where the group filled).
void MirrorWriter::take_group(std::vector<Request>& group) {
  group.clear();
  if (queue_.size() <= opts_.max_batch) {
    for (auto& r : queue_) group.push_back(std::move(r));
    queue_.clear();
    return;
  }
  const size_t n = opts_.max_batch;
  std::vector<char> picked(queue_.size(), 0);
  std::unordered_set<uint64_t> lanes;
  size_t taken = 0;
  for (size_t i = 0; i < queue_.size() && taken < n; ++i)
    if (lanes.insert(queue_[i].lane).second) {
      picked[i] = 1;
      ++taken;
    }
  for (size_t i = 0; i < queue_.size() && taken < n; ++i)
    if (!picked[i]) {
      picked[i] = 1;
      ++taken;
    }
  std::deque<Request> rest;
  for (size_t i = 0; i < queue_.size(); ++i) {
    if (picked[i])
      group.push_back(std::move(queue_[i]));
    else
      rest.push_back(std::move(queue_[i]));
  }
  queue_ = std::move(rest);
}

void MirrorWriter::run() {
  std::vector<Request> group;
  std::vector<const WriteBatch*> batches;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      while (!stopping_ && waited_for_ == 0) {
        wait_ = Wait::kFirst;
        if (queue_.empty()) {
          cv_.wait(lk);
          continue;
        }
        // Only deferrable requests: they wait for company until the oldest one's deadline.
        const auto deadline = queue_.front().enqueued + opts_.deferrable_delay;
        if (Clock::now() >= deadline) break;
        cv_.wait_until(lk, deadline);
      }
      if (queue_.empty()) return;  // stopping and drained
      // Linger for company only under load (the last group shared its
      // commit): an idle proxy commits a lone request at once, so a single
      // message pays one fsync, not fsync + max_delay. Never when stopping.
      auto deadline = queue_.front().enqueued + opts_.max_delay;
      while (!stopping_ && (loaded_ || opts_.linger_when_idle) && queue_.size() < opts_.max_batch &&
             Clock::now() < deadline) {
        wait_ = Wait::kFull;
        cv_.wait_until(lk, deadline);
      }
      wait_ = Wait::kNone;
      take_group(group);
      waited_for_ = 0;
      for (const Request& r : queue_) waited_for_ += r.deferrable ? 0 : 1;
    }

    loaded_ = group.size() > 1;
    CommitInfo info;
    info.requests = group.size();
    info.wait = Clock::now() - group.front().enqueued;
    batches.clear();
    for (const Request& r : group) {
      batches.push_back(&r.batch);
      info.ops += r.batch.size();
    }
    std::vector<WriteResult> results = commit_(batches, info);
    if (results.size() != group.size()) {  // a broken GroupCommit must not look like success
      results.assign(group.size(),
                     WriteResult{Error{Errc::kIo, "writer: result count mismatch"}, {}});
    }
    if (opts_.on_commit) opts_.on_commit(info);

    // One task per group: the executor's queue and wake-up are paid once.
    std::vector<std::pair<WriteCallback, WriteResult>> done;
    done.reserve(group.size());
    for (size_t i = 0; i < group.size(); ++i) {
      done.emplace_back(std::move(group[i].done), std::move(results[i]));
    }
    deliver([done = std::move(done)]() mutable {
      for (auto& [cb, r] : done) {
        if (cb) cb(std::move(r));
      }
    });
  }
}

}  // namespace s2::store
