// LMDB RAII wrappers; see lmdb.h for the ownership and error rules.
#include "common/store/lmdb.h"

#include <string>
#include <utility>

namespace s2::lmdb {

Error::Error(int rc, const char* call)
    : std::runtime_error(std::string(call) + ": " + mdb_strerror(rc)), rc_(rc) {}

void throw_error(int rc, const char* call) { throw Error(rc, call); }

// --- Env ---------------------------------------------------------------------

Env Env::open(const std::string& dir, const EnvOptions& opts) {
  Env env;
  check(mdb_env_create(&env.env_), "mdb_env_create");
  check(mdb_env_set_maxdbs(env.env_, opts.max_dbs), "mdb_env_set_maxdbs");
  check(mdb_env_set_maxreaders(env.env_, opts.max_readers), "mdb_env_set_maxreaders");
  check(mdb_env_set_mapsize(env.env_, opts.map_size), "mdb_env_set_mapsize");
  // MDB_NOTLS: reader slots belong to the transaction, not the thread, so a
  // read may start on the loop thread and finish on a pool thread.
  unsigned flags = MDB_NOTLS;
  if (opts.no_sync) flags |= MDB_NOSYNC;
  check(mdb_env_open(env.env_, dir.c_str(), flags, 0600), "mdb_env_open");
  return env;
}

Env::~Env() {
  if (env_ != nullptr) mdb_env_close(env_);
}

Env& Env::operator=(Env&& o) noexcept {
  if (this != &o) {
    if (env_ != nullptr) mdb_env_close(env_);
    env_ = std::exchange(o.env_, nullptr);
  }
  return *this;
}

size_t Env::map_size() const {
  MDB_envinfo info{};
  check(mdb_env_info(env_, &info), "mdb_env_info");
  return info.me_mapsize;
}

void Env::set_map_size(size_t bytes) {
  check(mdb_env_set_mapsize(env_, bytes), "mdb_env_set_mapsize");
}

// --- Dbi ---------------------------------------------------------------------

Dbi Dbi::open(Txn& txn, const char* name, unsigned flags) {
  Dbi d;
  check(mdb_dbi_open(txn.get(), name, flags, &d.dbi_), "mdb_dbi_open");
  d.name_ = name;
  return d;
}

// --- Txn ---------------------------------------------------------------------

Txn Txn::begin(const Env& env, unsigned flags) {
  Txn t;
  check(mdb_txn_begin(env.get(), nullptr, flags, &t.txn_), "mdb_txn_begin");
  return t;
}

Txn& Txn::operator=(Txn&& o) noexcept {
  if (this != &o) {
    abort();
    txn_ = std::exchange(o.txn_, nullptr);
  }
  return *this;
}

void Txn::commit() {
  MDB_txn* t = std::exchange(txn_, nullptr);
  check(mdb_txn_commit(t), "mdb_txn_commit");
}

void Txn::abort() noexcept {
  if (txn_ != nullptr) mdb_txn_abort(std::exchange(txn_, nullptr));
}

std::optional<std::string_view> Txn::get(Dbi dbi, std::string_view key) const {
  MDB_val k = to_val(key), v{};
  int rc = mdb_get(txn_, dbi.get(), &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, "mdb_get");
  return to_sv(v);
}

void Txn::put(Dbi dbi, std::string_view key, std::string_view val, unsigned flags) {
  MDB_val k = to_val(key), v = to_val(val);
  check(mdb_put(txn_, dbi.get(), &k, &v, flags), "mdb_put");
}

bool Txn::put_if_absent(Dbi dbi, std::string_view key, std::string_view val) {
  MDB_val k = to_val(key), v = to_val(val);
  int rc = mdb_put(txn_, dbi.get(), &k, &v, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) return false;
  check(rc, "mdb_put");
  return true;
}

std::optional<std::string_view> Txn::put_or_get(Dbi dbi, std::string_view key,
                                                std::string_view val) {
  MDB_val k = to_val(key), v = to_val(val);
  int rc = mdb_put(txn_, dbi.get(), &k, &v, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) return to_sv(v);  // LMDB points v at the existing value
  check(rc, "mdb_put");
  return std::nullopt;
}

bool Txn::del(Dbi dbi, std::string_view key) {
  MDB_val k = to_val(key);
  int rc = mdb_del(txn_, dbi.get(), &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, "mdb_del");
  return true;
}

size_t Txn::entries(Dbi dbi) const {
  MDB_stat st{};
  check(mdb_stat(txn_, dbi.get(), &st), "mdb_stat");
  return st.ms_entries;
}

// --- Cursor ------------------------------------------------------------------

Cursor::Cursor(const Txn& txn, Dbi dbi) {
  check(mdb_cursor_open(txn.get(), dbi.get(), &cur_), "mdb_cursor_open");
}

Cursor::~Cursor() { mdb_cursor_close(cur_); }

bool Cursor::move(MDB_cursor_op op, MDB_val* key) {
  if (key != nullptr) k_ = *key;
  int rc = mdb_cursor_get(cur_, &k_, &v_, op);
  if (rc == MDB_NOTFOUND) {
    valid_ = false;
    return false;
  }
  check(rc, "mdb_cursor_get");
  valid_ = true;
  return true;
}

bool Cursor::seek(std::string_view key) {
  MDB_val k = to_val(key);
  return move(MDB_SET_RANGE, &k);
}

bool Cursor::find(std::string_view key) {
  MDB_val k = to_val(key);
  return move(MDB_SET_KEY, &k);
}

bool Cursor::first() { return move(MDB_FIRST); }
bool Cursor::last() { return move(MDB_LAST); }
bool Cursor::next() { return move(MDB_NEXT); }
bool Cursor::prev() { return move(MDB_PREV); }

void Cursor::del() {
  check(mdb_cursor_del(cur_, 0), "mdb_cursor_del");
  valid_ = false;
}

}  // namespace s2::lmdb
