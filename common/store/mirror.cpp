// Mirror: environment, read snapshots, map growth and group commit.
// The design is in mirror.h; the operations live in mirror_write.cpp and
// mirror_query.cpp.
#include "common/store/mirror.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <mutex>

#include "common/store/mirror_ops.h"

namespace s2::store {
namespace {

using Clock = std::chrono::steady_clock;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool frees_space(const WriteOp& op) {
  return std::holds_alternative<op::ForgetAccount>(op) ||
         std::holds_alternative<op::DeleteCredentials>(op) ||
         std::holds_alternative<op::DeleteFastToken>(op) ||
         std::holds_alternative<op::DeleteFastTokens>(op) ||
         std::holds_alternative<op::ExpireFastTokens>(op) ||
         std::holds_alternative<op::DeleteDevice>(op) ||
         std::holds_alternative<op::RemoveOutbox>(op) ||
         std::holds_alternative<op::ClearResendKeys>(op) ||
         std::holds_alternative<op::PruneArchive>(op);
}

bool only_frees_space(const std::vector<const WriteBatch*>& group,
                      const std::vector<size_t>& live) {
  for (size_t i : live) {
    for (const WriteOp& op : *group[i]) {
      if (!frees_space(op)) return false;
    }
  }
  return true;
}

Error to_error(const lmdb::Error& e) {
  if (e.code() == MDB_MAP_FULL) return Error{Errc::kMapFull, e.what()};
  if (e.code() == ENOSPC || e.code() == EDQUOT) return Error{Errc::kNoSpace, e.what()};
  return Error{Errc::kIo, e.what()};
}

}  // namespace

// --- open / close ---------------------------------------------------------------

Mirror::Mirror(MirrorOptions opts) : opts_(std::move(opts)) {}

Result<std::unique_ptr<Mirror>> Mirror::open(MirrorOptions opts) {
  if (::mkdir(opts.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error{Errc::kIo, "mkdir " + opts.dir + ": " + std::strerror(errno)};
  }
  std::unique_ptr<Mirror> m(new Mirror(std::move(opts)));
  try {
    m->open_env();
  } catch (const lmdb::Error& e) {
    return to_error(e);
  } catch (const schema::CorruptError& e) {
    return Error{Errc::kCorrupt, e.what};
  }
  Mirror* self = m.get();
  m->writer_ = std::make_unique<MirrorWriter>(
      [self](const std::vector<const WriteBatch*>& group, CommitInfo& info) {
        return self->commit_group(group, info);
      },
      m->opts_.writer);
  return m;
}

void Mirror::open_env() {
  lmdb::EnvOptions eo;
  eo.map_size = opts_.map_size;
  eo.max_readers = opts_.max_readers;
  eo.max_dbs = 16;
  eo.no_sync = opts_.no_sync;
  env_ = lmdb::Env::open(opts_.dir, eo);
  lmdb::Txn txn = lmdb::Txn::begin_write(env_);
  dbs_ = schema::open_dbs(txn);
  if (auto v = txn.get(dbs_.meta, "schema")) {
    if (v->size() != 4) throw schema::CorruptError{"unreadable mirror schema version"};
    const uint32_t found = schema::get_u32(*v, 0);
    if (found > schema::kSchemaVersion) {
      // Written by a newer s2proxy: its layout may mean things this one
      // would misread or destroy. Never open it.
      throw schema::CorruptError{
          "the mirror was written by a newer s2proxy (schema " + std::to_string(found) +
          "); this s2proxy reads schema " + std::to_string(schema::kSchemaVersion) +
          " and older: run the newer s2proxy, or restore a backup made by this version"};
    }
    if (found < schema::kSchemaVersion) {
      // Migrations run here, one step per version, in this transaction
      // (schema.h lists them). Schema 1 is the first: there is nothing older.
      throw schema::CorruptError{"mirror schema " + std::to_string(found) +
                                 " is older than any s2proxy release (schema 1 is the first)"};
    }
  } else {
    std::string s;
    schema::put_u32(s, schema::kSchemaVersion);
    txn.put(dbs_.meta, "schema", s);
  }
  txn.commit();
}

Mirror::~Mirror() {
  // Completions of everything already submitted still run; then no thread
  // touches the environment any more and Env's destructor closes it.
  if (writer_) writer_->stop();
}

// --- transactions -----------------------------------------------------------------

Mirror::ReadTxn Mirror::begin_read() const {
  for (;;) {
    ReadTxn r{std::shared_lock(resize_mu_), lmdb::Txn()};
    try {
      r.txn = lmdb::Txn::begin_read(env_);
      return r;
    } catch (const lmdb::Error& e) {
      if (e.code() != MDB_MAP_RESIZED) throw;
    }
    // Another process grew the map: adopt its size (needs no open txn here).
    r.lock.unlock();
    std::unique_lock lk(resize_mu_);
    const_cast<lmdb::Env&>(env_).set_map_size(0);
  }
}

lmdb::Txn Mirror::begin_write() {
  for (;;) {
    try {
      return lmdb::Txn::begin_write(env_);
    } catch (const lmdb::Error& e) {
      if (e.code() != MDB_MAP_RESIZED) throw;
    }
    std::unique_lock lk(resize_mu_);
    env_.set_map_size(0);
  }
}

bool Mirror::grow_map(bool freeing) {
  // LMDB is copy-on-write: even a delete needs free pages. Groups that only
  // free space may use a reserve beyond max_map_size, so a full mirror can
  // still be pruned (forget an account, drop tokens) instead of being stuck.
  size_t limit = opts_.max_map_size;
  if (freeing) limit += std::max(opts_.max_map_size / 8, size_t{1} << 20);
  std::unique_lock lk(resize_mu_);  // waits for every read transaction to end
  size_t cur = env_.map_size();
  if (cur >= limit) return false;
  size_t next = std::min(limit, cur * 2);
  env_.set_map_size(next);
  map_grows_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

size_t Mirror::map_size() const {
  std::shared_lock lk(resize_mu_);
  return env_.map_size();
}

uint64_t Mirror::map_grows() const { return map_grows_.load(std::memory_order_relaxed); }

// Runs f(txn) in a read snapshot and turns internal exceptions into Errors.
template <class F>
auto Mirror::read(F&& f) const -> Result<decltype(f(std::declval<const lmdb::Txn&>()))> {
  try {
    ReadTxn r = begin_read();
    return f(static_cast<const lmdb::Txn&>(r.txn));
  } catch (const lmdb::Error& e) {
    return to_error(e);
  } catch (const schema::CorruptError& e) {
    return Error{Errc::kCorrupt, e.what};
  }
}

// --- group commit -----------------------------------------------------------------

void Mirror::submit(WriteBatch batch, WriteCallback done) {
  writer_->submit(std::move(batch), std::move(done));
}

void Mirror::submit_deferrable(WriteBatch batch, WriteCallback done) {
  writer_->submit(std::move(batch), std::move(done), /*deferrable=*/true);
}

std::vector<WriteResult> Mirror::commit_group(const std::vector<const WriteBatch*>& group,
                                              CommitInfo& info) {
  std::vector<WriteResult> out(group.size());
  std::vector<size_t> live(group.size());
  for (size_t i = 0; i < live.size(); ++i) live[i] = i;
  run_live(group, std::move(live), out, info, /*allow_split=*/true);
  return out;
}

void Mirror::run_live(const std::vector<const WriteBatch*>& group, std::vector<size_t> live,
                      std::vector<WriteResult>& out, CommitInfo& info, bool allow_split) {
  while (!live.empty()) {
    Error fatal;
    switch (attempt(group, live, out, info, fatal)) {
      case Outcome::kOk:
        return;
      case Outcome::kBatchFailed:
        continue;  // attempt() dropped the failed batch from `live`; re-run the rest
      case Outcome::kMapFull:
        if (grow_map(only_frees_space(group, live))) continue;
        fatal = Error{Errc::kMapFull, "mirror map reached max_map_size"};
        break;
      case Outcome::kFatal:
        if (allow_split && live.size() > 1) {
          // Cannot tell which batch caused it (or the group was too big):
          // give each batch its own transaction.
          for (size_t i : live) run_live(group, {i}, out, info, false);
          return;
        }
        break;
    }
    for (size_t i : live) out[i] = WriteResult{fatal, {}};
    return;
  }
}

Mirror::Outcome Mirror::attempt(const std::vector<const WriteBatch*>& group,
                                std::vector<size_t>& live, std::vector<WriteResult>& out,
                                CommitInfo& info, Error& fatal) {
  ++info.attempts;
  auto t0 = Clock::now();
  try {
    lmdb::Txn txn = begin_write();
    detail::TxnContext ctx(dbs_, txn, opts_.fingerprint_window_ms, wall_ms());
    for (size_t k = 0; k < live.size(); ++k) {
      size_t i = live[k];
      std::optional<Error> failed;
      try {
        out[i] = WriteResult{std::nullopt, detail::apply_batch(ctx, *group[i])};
      } catch (const detail::OpError& e) {
        failed = e.error;
      } catch (const schema::CorruptError& e) {
        failed = Error{Errc::kCorrupt, e.what};
      } catch (const lmdb::Error& e) {
        // Errors caused by this batch's own data; anything else is the group's.
        if (e.code() != MDB_BAD_VALSIZE && e.code() != MDB_BAD_DBI) throw;
        failed = Error{Errc::kInvalidArgument, e.what()};
      }
      if (failed) {
        out[i] = WriteResult{std::move(failed), {}};
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(k));
        info.apply += Clock::now() - t0;
        return Outcome::kBatchFailed;  // ~Txn aborts the batches before it too
      }
    }
    ctx.flush();
    auto t1 = Clock::now();
    info.apply += t1 - t0;
    txn.commit();
    info.commit += Clock::now() - t1;
    return Outcome::kOk;
  } catch (const lmdb::Error& e) {
    info.apply += Clock::now() - t0;
    if (e.code() == MDB_MAP_FULL) return Outcome::kMapFull;
    fatal = to_error(e);
    return Outcome::kFatal;
  }
}

// --- reads ----------------------------------------------------------------------

Result<std::optional<AccountInfo>> Mirror::find_account(std::string_view bare_jid) const {
  return read([&](const lmdb::Txn& txn) -> std::optional<AccountInfo> {
    auto v = txn.get(dbs_.accounts, schema::account_name_key(bare_jid));
    if (!v) return std::nullopt;
    AccountNo a = schema::get_u32(*v, 0);
    auto iv = txn.get(dbs_.account_info, schema::account_key(a));
    if (!iv) throw schema::CorruptError{"account without record"};
    schema::AccountInfoValue info = schema::decode_account_info(*iv);
    if (info.bare_jid != bare_jid) return std::nullopt;  // long-name hash collision
    return AccountInfo{a, info.bare_jid, info.state, info.created_ms, info.settings};
  });
}

Result<std::vector<AccountInfo>> Mirror::list_accounts() const {
  return read([&](const lmdb::Txn& txn) {
    std::vector<AccountInfo> out;
    lmdb::Cursor c(txn, dbs_.account_info);
    for (bool ok = c.first(); ok; ok = c.next()) {
      schema::AccountInfoValue info = schema::decode_account_info(c.val());
      out.push_back(AccountInfo{schema::get_u32(c.key(), 0), info.bare_jid, info.state,
                                info.created_ms, info.settings});
    }
    return out;
  });
}

Result<std::optional<std::string>> Mirror::get_credentials(AccountNo a) const {
  return read([&](const lmdb::Txn& txn) -> std::optional<std::string> {
    auto v = txn.get(dbs_.credentials, schema::account_key(a));
    if (!v) return std::nullopt;
    return std::string(*v);
  });
}

Result<std::optional<FastToken>> Mirror::get_fast_token(const TokenHash& hash) const {
  return read([&](const lmdb::Txn& txn) -> std::optional<FastToken> {
    auto v = txn.get(dbs_.fast_tokens, schema::token_key(hash));
    if (!v) return std::nullopt;
    return schema::decode_fast_token(*v);
  });
}

Result<std::optional<StoredMessage>> Mirror::get_message(AccountNo a, ArchiveId id) const {
  return read([&](const lmdb::Txn& txn) -> std::optional<StoredMessage> {
    auto v = txn.get(dbs_.messages, schema::message_key(a, id));
    if (!v) return std::nullopt;
    return schema::decode_message(id, *v);
  });
}

Result<std::optional<ArchiveId>> Mirror::find_upstream_id(AccountNo a,
                                                          std::string_view upstream_id) const {
  return read([&](const lmdb::Txn& txn) -> std::optional<ArchiveId> {
    auto v = txn.get(dbs_.by_upstream_id, schema::upstream_key(a, 'S', upstream_id));
    if (!v) return std::nullopt;
    return schema::decode_id_ms(*v).first;
  });
}

Result<std::optional<ArchiveId>> Mirror::resolve_ref(AccountNo a, std::string_view peer_bare,
                                                     RefKind kind, std::string_view ref) const {
  return read(
      [&](const lmdb::Txn& txn) { return detail::lookup_ref(dbs_, txn, a, peer_bare, kind, ref); });
}

Result<ResendKeys> Mirror::list_resend_keys(AccountNo a, std::string_view scope) const {
  return read([&](const lmdb::Txn& txn) {
    ResendKeys out;
    const schema::Key prefix = schema::ref_prefix(a, scope, RefKind::kResendKey);
    const std::string_view p = prefix;
    lmdb::Cursor c(txn, dbs_.by_ref);
    for (bool ok = c.seek(p); ok && schema::has_prefix(c.key(), p); ok = c.next())
      out.insert_encoded(std::string(c.key().substr(p.size())), schema::get_u64(c.val(), 0));
    return out;
  });
}

Result<ArchiveBounds> Mirror::bounds(AccountNo a) const {
  return read([&](const lmdb::Txn& txn) { return detail::read_bounds(dbs_, txn, a); });
}

Result<MamPage> Mirror::query(AccountNo a, const MamQuery& q) const {
  auto r = read([&](const lmdb::Txn& txn) { return detail::run_query(dbs_, txn, a, q); });
  if (!r) return r.error();
  return std::move(*r);
}

Result<std::optional<std::string>> Mirror::get_sync_cursor(AccountNo a) const {
  return read([&](const lmdb::Txn& txn) -> std::optional<std::string> {
    auto v = txn.get(dbs_.sync, schema::sync_cursor_key(a));
    if (!v) return std::nullopt;
    return std::string(*v);
  });
}

Result<std::vector<Gap>> Mirror::list_gaps(AccountNo a) const {
  return read([&](const lmdb::Txn& txn) {
    std::vector<Gap> out;
    schema::Key prefix = schema::gap_prefix(a);
    lmdb::Cursor c(txn, dbs_.sync);
    for (bool ok = c.seek(prefix); ok && schema::has_prefix(c.key(), prefix); ok = c.next()) {
      out.push_back(schema::decode_gap(schema::key_suffix_u64(c.key()), c.val()));
    }
    return out;
  });
}

Result<std::optional<DeviceRecord>> Mirror::get_device(AccountNo a,
                                                       std::string_view device_id) const {
  return read([&](const lmdb::Txn& txn) -> std::optional<DeviceRecord> {
    auto v = txn.get(dbs_.devices, schema::device_key(a, device_id));
    if (!v) return std::nullopt;
    return schema::decode_device(*v);
  });
}

Result<std::vector<DeviceRecord>> Mirror::list_devices(AccountNo a) const {
  return read([&](const lmdb::Txn& txn) {
    std::vector<DeviceRecord> out;
    schema::Key prefix = schema::account_key(a);
    lmdb::Cursor c(txn, dbs_.devices);
    for (bool ok = c.seek(prefix); ok && schema::has_prefix(c.key(), prefix); ok = c.next()) {
      out.push_back(schema::decode_device(c.val()));
    }
    return out;
  });
}

Result<std::vector<OutboxEntry>> Mirror::list_outbox(AccountNo a, uint64_t after_seq,
                                                     size_t max) const {
  return read([&](const lmdb::Txn& txn) {
    std::vector<OutboxEntry> out;
    if (after_seq == std::numeric_limits<uint64_t>::max()) return out;
    schema::Key prefix = schema::account_key(a);
    lmdb::Cursor c(txn, dbs_.outbox);
    for (bool ok = c.seek(schema::outbox_key(a, after_seq + 1));
         ok && schema::has_prefix(c.key(), prefix) && out.size() < max; ok = c.next()) {
      out.push_back(schema::decode_outbox(schema::key_suffix_u64(c.key()), c.val()));
    }
    return out;
  });
}

Result<std::vector<std::pair<std::string, uint64_t>>> Mirror::entry_counts() const {
  return read([&](const lmdb::Txn& txn) {
    std::vector<std::pair<std::string, uint64_t>> out;
    for (lmdb::Dbi d : dbs_.all()) out.emplace_back(d.name(), txn.entries(d));
    return out;
  });
}

}  // namespace s2::store
