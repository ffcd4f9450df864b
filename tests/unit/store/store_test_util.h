// Helpers shared by the store tests: a temp dir, a queue executor standing in
// for the daemon's uv_async_send executor, a blocking write, and a message
// builder.
//
// The store under test: the LMDB Mirror, or the PostgreSQL store when
// S2_TEST_POSTGRES holds a libpq connection string (with_postgres.sh starts a
// throwaway server and sets it; ctest runs the binary both ways). Each test's
// temp dir names its own PostgreSQL schema, so tests never see each other's
// rows and a reopen of the same dir finds the same data. Cases that only make
// sense on LMDB are in the doctest suite "lmdb-only".
#pragma once

#include <stdlib.h>

#include <condition_variable>
#include <cstdio>
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
#include "common/store/pg_conn.h"
#include "common/store/pg_store.h"

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

inline const char* postgres_conninfo() { return ::getenv("S2_TEST_POSTGRES"); }
inline bool testing_postgres() { return postgres_conninfo() != nullptr; }

// The options' dir, as a PostgreSQL schema name (lower-case hex of its hash).
inline std::string schema_for(const std::string& dir) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "t_%016zx", std::hash<std::string>{}(dir));
  return buf;
}

// The store under test, opened on `o.dir` (LMDB) or on its schema (PostgreSQL).
inline std::unique_ptr<Store> open_store(const MirrorOptions& o) {
  if (!testing_postgres()) return open_mirror(o);
  const std::string base = postgres_conninfo();
  const std::string schema = schema_for(o.dir);
  pg::Conn::connect(base)->run("CREATE SCHEMA IF NOT EXISTS " + schema);
  PgStoreOptions po;
  po.conninfo = base + " options='-c search_path=" + schema + "'";
  po.fingerprint_window_ms = o.fingerprint_window_ms;
  po.writer = o.writer;
  auto s = PgStore::open(std::move(po));
  if (!s) throw std::runtime_error("open: " + s.error().text);
  return std::move(*s);
}

// Records per table (LMDB database or PostgreSQL table): tests compare them
// before and after, never their names.
inline std::vector<std::pair<std::string, uint64_t>> entry_counts(const Store& s) {
  auto c = dynamic_cast<const Mirror*>(&s) != nullptr
               ? dynamic_cast<const Mirror&>(s).entry_counts()
               : dynamic_cast<const PgStore&>(s).entry_counts();
  if (!c) throw std::runtime_error("entry counts: " + c.error().text);
  return *c;
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
