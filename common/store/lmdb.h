// RAII wrappers for LMDB: environment, transaction, cursor, database handle.
//
// Each C resource has exactly one owner: Env closes the environment, Txn aborts
// in its destructor unless it was committed (so an early return or exception
// never leaves a write transaction holding the writer lock), Cursor closes its
// cursor. Cursors must not outlive their transaction; declare them in the inner
// scope. Dbi is a plain value: LMDB database handles live as long as the
// environment and are never closed individually.
//
// Errors: unexpected return codes throw lmdb::Error carrying the LMDB code
// (MDB_MAP_FULL, EIO, ...); "not found" is a normal result (optional / bool).
// The exception never leaves common/store: Mirror catches it at its public
// boundary and turns it into an Error value (STYLE.md: errors are data), and
// the code in between stays a straight line instead of an rc check per call.
#pragma once

#include <lmdb.h>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace s2::lmdb {

class Error : public std::runtime_error {
 public:
  Error(int rc, const char* call);
  int code() const { return rc_; }

 private:
  int rc_;
};

[[noreturn]] void throw_error(int rc, const char* call);
inline void check(int rc, const char* call) {
  if (rc != MDB_SUCCESS) throw_error(rc, call);
}

inline MDB_val to_val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
inline std::string_view to_sv(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

struct EnvOptions {
  size_t map_size = size_t{1} << 30;
  unsigned max_readers = 126;
  unsigned max_dbs = 16;
  bool no_sync = false;
};

class Env {
 public:
  Env() = default;
  // Opens (creating if needed) the environment in directory `dir`, which must
  // exist. Always MDB_NOTLS: read transactions are not tied to a thread.
  static Env open(const std::string& dir, const EnvOptions& opts);
  ~Env();
  Env(Env&& o) noexcept : env_(o.env_) { o.env_ = nullptr; }
  Env& operator=(Env&& o) noexcept;
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* get() const { return env_; }
  size_t map_size() const;
  // Only with no transaction active in this process (the caller's lock).
  // 0 adopts the size another process has set.
  void set_map_size(size_t bytes);

 private:
  MDB_env* env_ = nullptr;
};

class Txn;

class Dbi {
 public:
  Dbi() = default;
  // Opens (MDB_CREATE unless read-only) a named database inside `txn`; the
  // handle becomes usable by other transactions once `txn` commits.
  static Dbi open(Txn& txn, const char* name, unsigned flags = MDB_CREATE);
  MDB_dbi get() const { return dbi_; }
  const char* name() const { return name_; }

 private:
  MDB_dbi dbi_ = 0;
  const char* name_ = "";
};

class Txn {
 public:
  Txn() = default;
  static Txn begin(const Env& env, unsigned flags);  // MDB_RDONLY for readers
  static Txn begin_read(const Env& env) { return begin(env, MDB_RDONLY); }
  static Txn begin_write(const Env& env) { return begin(env, 0); }
  ~Txn() { abort(); }
  Txn(Txn&& o) noexcept : txn_(o.txn_) { o.txn_ = nullptr; }
  Txn& operator=(Txn&& o) noexcept;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  // LMDB frees the handle whether or not commit succeeds, so the Txn is
  // finished either way; a failure (e.g. MDB_MAP_FULL) throws.
  void commit();
  void abort() noexcept;
  bool active() const { return txn_ != nullptr; }
  MDB_txn* get() const { return txn_; }

  // The view is valid until the next write in this transaction or its end.
  std::optional<std::string_view> get(Dbi dbi, std::string_view key) const;
  void put(Dbi dbi, std::string_view key, std::string_view val, unsigned flags = 0);
  // MDB_NOOVERWRITE: false when the key already exists (nothing written).
  bool put_if_absent(Dbi dbi, std::string_view key, std::string_view val);
  // Insert-or-get in one descent: writes and returns nullopt when the key is
  // new, otherwise writes nothing and returns the existing value.
  std::optional<std::string_view> put_or_get(Dbi dbi, std::string_view key, std::string_view val);
  bool del(Dbi dbi, std::string_view key);  // false when absent
  size_t entries(Dbi dbi) const;

 private:
  MDB_txn* txn_ = nullptr;
};

class Cursor {
 public:
  Cursor(const Txn& txn, Dbi dbi);
  ~Cursor();
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  // Each positioning call returns whether the cursor now sits on a record.
  bool seek(std::string_view key);  // first key >= key (MDB_SET_RANGE)
  bool find(std::string_view key);  // exactly key (MDB_SET_KEY)
  bool first();
  bool last();
  bool next();
  bool prev();
  bool valid() const { return valid_; }
  std::string_view key() const { return to_sv(k_); }
  std::string_view val() const { return to_sv(v_); }
  // Deletes the current record; the following next() yields the record after
  // it (LMDB keeps the cursor on the successor and skips the advance).
  void del();

 private:
  bool move(MDB_cursor_op op, MDB_val* key = nullptr);

  MDB_cursor* cur_ = nullptr;
  MDB_val k_{}, v_{};
  bool valid_ = false;
};

}  // namespace s2::lmdb
