// Helpers shared by the store tests: a temp dir, a queue executor standing in
// for the daemon's uv_async_send executor, a blocking write, and a message
// builder.
#pragma once

#include <stdlib.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "common/store/mirror.h"

namespace s2::store::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "s2store.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Completions land in a queue; the test thread runs them, like the loop would.
class QueueExecutor {
 public:
  Executor executor() {
    return [this](std::function<void()> task) {
      {
        std::lock_guard lk(mu_);
        tasks_.push_back(std::move(task));
      }
      cv_.notify_all();
    };
  }
  // Runs queued tasks until pred() holds (checked after each task).
  template <class Pred>
  void run_until(Pred pred) {
    while (!pred()) {
      std::function<void()> task;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  size_t pending() {
    std::lock_guard lk(mu_);
    return tasks_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
};

inline MirrorOptions options(const std::string& dir) {
  MirrorOptions o;
  o.dir = dir;
  o.map_size = size_t{64} << 20;
  o.writer.max_delay = std::chrono::microseconds(0);
  return o;
}

inline std::unique_ptr<Mirror> open_mirror(MirrorOptions o) {
  auto m = Mirror::open(std::move(o));
  if (!m) throw std::runtime_error("open: " + m.error().text);
  return std::move(*m);
}

// Blocks until the batch is committed (the completion runs on the writer
// thread when the mirror has no executor).
inline WriteResult write_sync(Store& s, WriteBatch b) {
  auto p = std::make_shared<std::promise<WriteResult>>();
  auto f = p->get_future();
  s.submit(std::move(b), [p](WriteResult r) { p->set_value(std::move(r)); });
  return f.get();
}

inline AccountNo create_account(Store& s, const std::string& jid) {
  WriteResult r = write_sync(s, {op::CreateAccount{jid}});
  if (!r.ok()) throw std::runtime_error("create account: " + r.error->text);
  return r.ops.at(0).account;
}

inline MessageRecord msg(std::string peer, int64_t ts, std::string upstream_id = {},
                         std::string origin_id = {}, std::string fingerprint = {}) {
  MessageRecord m;
  m.timestamp_ms = ts;
  m.direction = Direction::kIncoming;
  m.peer_bare = std::move(peer);
  m.flags = msgflag::kPersistent;
  m.upstream_stanza_id = std::move(upstream_id);
  m.origin_id = std::move(origin_id);
  m.fingerprint = std::move(fingerprint);
  m.stanza = "<message from='" + m.peer_bare + "'><body>hi</body></message>";
  return m;
}

inline OpResult append(Store& s, AccountNo a, MessageRecord m) {
  WriteResult r = write_sync(s, {op::Append{a, std::move(m), std::nullopt}});
  if (!r.ok()) throw std::runtime_error("append: " + r.error->text);
  return r.ops.at(0);
}

}  // namespace s2::store::test
