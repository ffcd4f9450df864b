// PgStore: connections, group commit with a savepoint per batch, reads.
// The design is in pg_store.h; the operations live in pg_write.cpp and
// pg_query.cpp, the tables in pg_schema.cpp.
#include "common/store/pg_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <variant>

#include "common/store/pg_conn.h"
#include "common/store/pg_ops.h"
#include "common/store/schema.h"

namespace s2::store {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxGroup = 16;
using pg::Params;
using pg::Rows;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Rolls back whatever transaction the connection is in; a connection that
// cannot even do that is dropped by the caller (healthy() is false).
void abandon(pg::Conn& c) {
  try {
    if (c.in_transaction()) c.run("ROLLBACK");
  } catch (const pg::Failure&) {
  }
}

}  // namespace

bool is_postgresql_url(std::string_view s) {
  return s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0;
}

std::string check_conninfo(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts != nullptr) {
    PQconninfoFree(opts);
    return "";
  }
  std::string why = err != nullptr ? pg::libpq_text(err) : "out of memory";
  PQfreemem(err);
  return why;
}

Result<PgProbe> probe_postgresql(const std::string& conninfo) {
  try {
    auto c = pg::Conn::connect(conninfo);
    PgProbe p;
    p.server_version = c->server_version();
    Rows t = c->exec("SELECT to_regclass('s2_meta') IS NOT NULL");
    if (t.i64(0, 0) != 0) {
      Rows v = c->exec("SELECT value FROM s2_meta WHERE key = 'schema'");
      if (!v.empty()) p.schema = v.i64(0, 0);
    }
    return p;
  } catch (const pg::Failure& f) {
    return pg::to_error(f);
  }
}

PgStore::PgStore(PgStoreOptions opts) : opts_(std::move(opts)) {}

Result<std::unique_ptr<PgStore>> PgStore::open(PgStoreOptions opts) {
  // A group is applied statement by statement (~0.2 ms per append on
  // loopback, several ms when the machine is busy), and another account's
  // lone write waits for the group in flight, twice per echo (its message
  // out, the answer in). 16 per group: during the 5,000-message burst
  // another account's echo p95 was 64-89 ms at 256 or 64 per group, 27-71 ms
  // at 16, and the burst was acknowledged as fast (7.2 s both ways): the
  // commit's fsync is ~1 ms, a small share of a group even at 16.
  opts.writer.max_batch = std::min(opts.writer.max_batch, kMaxGroup);
  std::unique_ptr<PgStore> s(new PgStore(std::move(opts)));
  const size_t n = std::max<size_t>(1, s->opts_.writers);
  for (size_t i = 0; i < n; ++i) s->slots_.push_back(std::make_unique<WriterSlot>());
  try {
    // The first writer's connection creates or checks the schema; the others connect at their
    // first group (and after any loss, as the first does).
    s->slots_[0]->conn = pg::Conn::connect(s->opts_.conninfo);
    pgdetail::ensure_schema(*s->slots_[0]->conn);
  } catch (const pg::Failure& f) {
    return pg::to_error(f);
  } catch (const pgdetail::OpError& e) {
    return e.error;
  }
  PgStore* self = s.get();
  for (auto& slot : s->slots_) {
    WriterSlot* sl = slot.get();
    sl->writer = std::make_unique<MirrorWriter>(
        [self, sl](const std::vector<const WriteBatch*>& group, CommitInfo& info) {
          return self->commit_group(*sl, group, info);
        },
        s->opts_.writer);
  }
  return s;
}

PgStore::~PgStore() {
  for (auto& slot : slots_)
    if (slot->writer) slot->writer->stop();
}

// --- group commit -----------------------------------------------------------------

// Several writers, as several nodes of a cluster already write side by side: each transaction
// holds the row locks of the accounts it writes (s2_append's FOR UPDATE, the fencing check), and
// an account's batches are never on two writers at once, so they commit in submission order.
void PgStore::submit(WriteBatch batch, WriteCallback done) {
  submit_to_writer(std::move(batch), std::move(done), false);
}

void PgStore::submit_deferrable(WriteBatch batch, WriteCallback done) {
  submit_to_writer(std::move(batch), std::move(done), true);
}

// An empty batch on every writer: each completes after what its writer had queued (an account's
// writes stay on one writer), and `done` runs after the last of them.
void PgStore::flush(WriteCallback done) {
  // Completions run on the executor, or on the writer threads when there is none.
  auto left = std::make_shared<std::atomic<size_t>>(slots_.size());
  auto shared_done = std::make_shared<WriteCallback>(std::move(done));
  for (auto& slot : slots_)
    slot->writer->submit({}, [left, shared_done](WriteResult r) {
      if (left->fetch_sub(1) == 1 && *shared_done) (*shared_done)(std::move(r));
    });
}

void PgStore::submit_to_writer(WriteBatch batch, WriteCallback done, bool deferrable) {
  const uint64_t lane = lane_of(batch);
  size_t pick = 0;
  {
    std::lock_guard lk(lanes_mu_);
    auto it = lanes_.find(lane);
    if (it != lanes_.end()) {
      pick = it->second.first;
      ++it->second.second;
    } else {
      for (size_t i = 1; i < slots_.size(); ++i)
        if (slots_[i]->outstanding < slots_[pick]->outstanding) pick = i;
      lanes_.emplace(lane, std::make_pair(pick, size_t{1}));
    }
    ++slots_[pick]->outstanding;
  }
  slots_[pick]->writer->submit(
      std::move(batch),
      [this, lane, pick, done = std::move(done)](WriteResult r) mutable {
        {
          std::lock_guard lk(lanes_mu_);
          --slots_[pick]->outstanding;
          auto it = lanes_.find(lane);
          if (it != lanes_.end() && --it->second.second == 0) lanes_.erase(it);
        }
        if (done) done(std::move(r));
      },
      deferrable);
}

std::vector<WriteResult> PgStore::commit_group(WriterSlot& slot,
                                               const std::vector<const WriteBatch*>& group,
                                               CommitInfo& info) {
  std::vector<WriteResult> out(group.size());
  const auto t0 = Clock::now();
  auto fail_all = [&](const Error& e) {
    for (auto& r : out) r = WriteResult{e, {}};
    info.apply += Clock::now() - t0;
  };
  try {
    // A connection lost by the previous group is re-established here; until
    // it is, every group fails (and its writers retry as for any failure).
    if (!slot.conn || !slot.conn->healthy()) {
      slot.conn.reset();
      slot.conn = pg::Conn::connect(opts_.conninfo);
    }
  } catch (const pg::Failure& f) {
    ++info.attempts;
    fail_all(pg::to_error(f));
    return out;
  }
  // First attempt: savepoints only around batches of several ops. Every op
  // checks what can fail it before it writes, so a one-op batch that fails
  // has written nothing and needs no savepoint; that saves two round trips
  // per batch. A database error inside such a batch aborts the transaction:
  // the group is then re-run with a savepoint around every batch.
  // (If the connection broke meanwhile, the second attempt's BEGIN fails and
  // fails every batch: the first attempt's results were rolled back.)
  if (!attempt(slot, group, out, info, /*savepoint_all=*/false)) {
    attempt(slot, group, out, info, /*savepoint_all=*/true);
  }
  info.apply += Clock::now() - t0 - info.commit;
  return out;
}

// A group of one batch of one append, on a node that does not fence (a single node): s2_append()
// is one statement and as atomic alone as in a transaction. With fencing the epoch check must
// share the append's transaction.
bool PgStore::lone_append(const std::vector<const WriteBatch*>& group) const {
  if (group.size() != 1 || group[0]->size() != 1 ||
      !std::holds_alternative<op::Append>(group[0]->front()))
    return false;
  std::lock_guard lk(fence_mu_);
  return !fencing_;
}

// One transaction over the group. Returns false when it must be re-run with
// a savepoint around every batch (then `out` is to be overwritten); on a
// failure of the transaction itself every batch gets the error.
bool PgStore::attempt(WriterSlot& slot, const std::vector<const WriteBatch*>& group,
                      std::vector<WriteResult>& out, CommitInfo& info, bool savepoint_all) {
  ++info.attempts;
  pg::Conn& c = *slot.conn;
  const int64_t now = wall_ms();
  if (lone_append(group)) {
    // One statement is its own transaction: one round trip instead of BEGIN, the append and
    // COMMIT. This is the write of a quiet account (a chat's message, one per echo leg), which
    // under another account's burst waited for the two extra round trips to a busy server.
    try {
      const auto t1 = Clock::now();
      out[0] = WriteResult{std::nullopt,
                           pgdetail::apply_batch(c, *group[0], opts_.fingerprint_window_ms, now)};
      info.commit += Clock::now() - t1;
    } catch (const pgdetail::OpError& e) {
      out[0] = WriteResult{e.error, {}};
    } catch (const pg::Failure& f) {
      if (!c.healthy()) slot.conn.reset();
      out[0] = WriteResult{pg::to_error(f), {}};
    }
    return true;
  }
  // Accounts whose epoch this transaction checked: the row lock it took holds
  // until COMMIT, so one check per account per group is enough.
  std::unordered_set<AccountNo> checked;
  try {
    c.run("BEGIN");
    for (size_t i = 0; i < group.size(); ++i) {
      const bool savepoint = savepoint_all || group[i]->size() > 1;
      if (savepoint) c.run("SAVEPOINT b");
      try {
        check_fences(c, *group[i], checked);
        out[i] = WriteResult{std::nullopt,
                             pgdetail::apply_batch(c, *group[i], opts_.fingerprint_window_ms, now)};
        if (savepoint) c.run("RELEASE SAVEPOINT b");
      } catch (const pgdetail::OpError& e) {
        out[i] = WriteResult{e.error, {}};
        if (savepoint) c.run("ROLLBACK TO SAVEPOINT b");
      } catch (const pg::Failure& f) {
        if (f.connection_lost) throw;
        if (!savepoint) {  // the transaction is aborted: re-run with savepoints
          abandon(c);
          return false;
        }
        // A statement the server refused because of this batch's data:
        // the batch fails, not the group.
        out[i] = WriteResult{pg::to_error(f), {}};
        c.run("ROLLBACK TO SAVEPOINT b");
      }
    }
    const auto t1 = Clock::now();
    c.run("COMMIT");
    info.commit += Clock::now() - t1;
  } catch (const pg::Failure& f) {
    // The transaction as a whole failed (connection lost, COMMIT refused):
    // nothing of it is durable, so no batch may report success.
    abandon(c);
    if (!c.healthy()) slot.conn.reset();
    for (auto& r : out) r = WriteResult{pg::to_error(f), {}};
  }
  return true;
}

// --- fencing ----------------------------------------------------------------------

namespace {
// The account whose history or records an op writes; none for account
// creation and removal by name, and for login material: credentials and FAST
// token records (pg_store.h).
std::optional<AccountNo> fenced_account(const WriteOp& op) {
  return std::visit(
      [](const auto& o) -> std::optional<AccountNo> {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, op::CreateAccount> ||
                      std::is_same_v<T, op::ForgetAccount> ||
                      std::is_same_v<T, op::PutCredentials> ||
                      std::is_same_v<T, op::DeleteCredentials> ||
                      std::is_same_v<T, op::PutFastToken> ||
                      std::is_same_v<T, op::DeleteFastToken> ||
                      std::is_same_v<T, op::DeleteFastTokens> ||
                      std::is_same_v<T, op::ExpireFastTokens>) {
          return std::nullopt;
        } else {
          return o.account;
        }
      },
      op);
}
}  // namespace

void PgStore::enable_fencing() {
  std::lock_guard lk(fence_mu_);
  fencing_ = true;
}

void PgStore::set_fence(AccountNo a, int64_t epoch) {
  std::lock_guard lk(fence_mu_);
  fences_[a] = epoch;
}

void PgStore::clear_fences() {
  std::lock_guard lk(fence_mu_);
  fences_.clear();
}

void PgStore::check_fences(pg::Conn& c, const WriteBatch& batch,
                           std::unordered_set<AccountNo>& checked) {
  std::vector<std::pair<AccountNo, int64_t>> want;
  {
    std::lock_guard lk(fence_mu_);
    if (!fencing_) return;
    for (const WriteOp& op : batch) {
      auto a = fenced_account(op);
      if (!a || checked.count(*a) != 0) continue;
      auto it = fences_.find(*a);
      if (it == fences_.end()) {
        throw pgdetail::OpError{
            Error{Errc::kFenced, "account " + std::to_string(*a) + " is not owned by this node"}};
      }
      want.emplace_back(*a, it->second);
    }
  }
  std::sort(want.begin(), want.end());
  want.erase(std::unique(want.begin(), want.end()), want.end());
  for (const auto& [a, epoch] : want) {
    // FOR SHARE: a takeover's epoch bump waits for this transaction, so what
    // commits here is ordered before the new owner's catch-up.
    Rows r = c.exec("SELECT 1 FROM s2_accounts WHERE account = $1 AND owner_epoch = $2 FOR SHARE",
                    Params().i64(a).i64(epoch));
    if (r.empty()) {
      throw pgdetail::OpError{
          Error{Errc::kFenced, "account " + std::to_string(a) + " was taken over by another node"}};
    }
    checked.insert(a);
  }
}

// --- reads ----------------------------------------------------------------------

std::unique_ptr<pg::Conn> PgStore::take_reader() const {
  {
    std::lock_guard lk(pool_mu_);
    if (!idle_.empty()) {
      std::unique_ptr<pg::Conn> c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  return pg::Conn::connect(opts_.conninfo);
}

void PgStore::give_back(std::unique_ptr<pg::Conn> c) const {
  if (!c || !c->healthy() || c->in_transaction()) return;  // dropped
  std::lock_guard lk(pool_mu_);
  if (idle_.size() < opts_.max_idle_readers) idle_.push_back(std::move(c));
}

template <class F>
auto PgStore::read(bool snapshot, F&& f) const -> Result<decltype(f(std::declval<pg::Conn&>()))> {
  std::unique_ptr<pg::Conn> c;
  try {
    c = take_reader();
    if (snapshot) c->run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    auto v = f(*c);
    if (snapshot) c->run("COMMIT");
    give_back(std::move(c));
    return v;
  } catch (const pg::Failure& e) {
    if (c) abandon(*c);
    give_back(std::move(c));
    return pg::to_error(e);
  }
}

Result<std::optional<AccountInfo>> PgStore::find_account(std::string_view bare_jid) const {
  return read(false, [&](pg::Conn& c) -> std::optional<AccountInfo> {
    Rows r = c.exec(
        "SELECT account, bare_jid, state, created_ms, settings FROM s2_accounts "
        "WHERE name_key = $1",
        Params().bytes(std::string_view(schema::account_name_key(bare_jid))));
    if (r.empty() || r.bytes(0, 1) != bare_jid) return std::nullopt;  // absent, or a collision
    return AccountInfo{static_cast<AccountNo>(r.u64(0, 0)), r.bytes(0, 1),
                       static_cast<AccountState>(r.i64(0, 2)), r.i64(0, 3),
                       static_cast<uint32_t>(r.u64(0, 4))};
  });
}

Result<std::vector<AccountInfo>> PgStore::list_accounts() const {
  return read(false, [&](pg::Conn& c) {
    Rows r = c.exec(
        "SELECT account, bare_jid, state, created_ms, settings FROM s2_accounts "
        "ORDER BY account");
    std::vector<AccountInfo> out;
    for (int i = 0; i < r.size(); ++i) {
      out.push_back(AccountInfo{static_cast<AccountNo>(r.u64(i, 0)), r.bytes(i, 1),
                                static_cast<AccountState>(r.i64(i, 2)), r.i64(i, 3),
                                static_cast<uint32_t>(r.u64(i, 4))});
    }
    return out;
  });
}

Result<std::optional<std::string>> PgStore::get_credentials(AccountNo a) const {
  return read(false, [&](pg::Conn& c) -> std::optional<std::string> {
    Rows r = c.exec("SELECT sealed FROM s2_credentials WHERE account = $1", Params().i64(a));
    if (r.empty()) return std::nullopt;
    return r.bytes(0, 0);
  });
}

Result<std::optional<FastToken>> PgStore::get_fast_token(const TokenHash& hash) const {
  return read(false, [&](pg::Conn& c) -> std::optional<FastToken> {
    Rows r = c.exec(
        "SELECT account, user_agent_id, mechanism, expiry_ms, created_ms, flags, nonce, "
        "last_count FROM s2_fast_tokens WHERE hash = $1",
        Params().bytes(schema::token_key(hash)));
    if (r.empty()) return std::nullopt;
    FastToken t;
    t.account = static_cast<AccountNo>(r.u64(0, 0));
    t.user_agent_id = r.bytes(0, 1);
    t.mechanism = r.bytes(0, 2);
    t.expiry_ms = r.i64(0, 3);
    t.created_ms = r.i64(0, 4);
    t.flags = static_cast<uint32_t>(r.u64(0, 5));
    t.nonce = r.bytes(0, 6);
    t.last_count = r.u64(0, 7);
    return t;
  });
}

Result<std::optional<StoredMessage>> PgStore::get_message(AccountNo a, ArchiveId id) const {
  return read(false, [&](pg::Conn& c) -> std::optional<StoredMessage> {
    Rows r = c.exec(std::string("SELECT ") + pgdetail::kMessageColumns +
                        " FROM s2_messages WHERE account = $1 AND archive_id = $2",
                    Params().i64(a).u64(id));
    if (r.empty()) return std::nullopt;
    return pgdetail::decode_message_row(r, 0);
  });
}

Result<std::optional<ArchiveId>> PgStore::find_upstream_id(AccountNo a,
                                                           std::string_view upstream_id) const {
  return read(false, [&](pg::Conn& c) -> std::optional<ArchiveId> {
    Rows r =
        c.exec("SELECT archive_id FROM s2_upstream_keys WHERE account = $1 AND k = $2",
               Params().i64(a).bytes(std::string_view(schema::upstream_key(a, 'S', upstream_id))));
    if (r.empty()) return std::nullopt;
    return r.u64(0, 0);
  });
}

Result<std::optional<ArchiveId>> PgStore::resolve_ref(AccountNo a, std::string_view peer_bare,
                                                      RefKind kind, std::string_view ref) const {
  return read(false, [&](pg::Conn& c) { return pgdetail::lookup_ref(c, a, peer_bare, kind, ref); });
}

// One range read of the index: every key of the scope starts with the same
// prefix, which ends in the kind byte, so the range ends below kind + 1.
Result<ResendKeys> PgStore::list_resend_keys(AccountNo a, std::string_view scope) const {
  return read(false, [&](pg::Conn& c) {
    const schema::Key from = schema::ref_prefix(a, scope, RefKind::kResendKey);
    schema::Key below = schema::peer_prefix(a, scope);
    below.push_back(static_cast<char>(static_cast<uint8_t>(RefKind::kResendKey) + 1));
    Rows r = c.exec("SELECT k, archive_id FROM s2_refs WHERE account = $1 AND k >= $2 AND k < $3",
                    Params().i64(a).bytes(std::string_view(from)).bytes(std::string_view(below)));
    ResendKeys out;
    for (int i = 0; i < r.size(); ++i)
      out.insert_encoded(r.bytes(i, 0).substr(from.size()), r.u64(i, 1));
    return out;
  });
}

Result<ArchiveBounds> PgStore::bounds(AccountNo a) const {
  return read(false, [&](pg::Conn& c) { return pgdetail::read_bounds(c, a); });
}

Result<MamPage> PgStore::query(AccountNo a, const MamQuery& q) const {
  auto r = read(true, [&](pg::Conn& c) { return pgdetail::run_query(c, a, q); });
  if (!r) return r.error();
  return std::move(*r);  // the inner Result: a page or item-not-found
}

Result<std::optional<std::string>> PgStore::get_sync_cursor(AccountNo a) const {
  return read(false, [&](pg::Conn& c) -> std::optional<std::string> {
    Rows r = c.exec("SELECT upstream_id FROM s2_sync WHERE account = $1", Params().i64(a));
    if (r.empty()) return std::nullopt;
    return r.bytes(0, 0);
  });
}

Result<std::vector<Gap>> PgStore::list_gaps(AccountNo a) const {
  return read(false, [&](pg::Conn& c) {
    Rows r = c.exec(
        "SELECT after_id, from_ms, to_ms, reason FROM s2_gaps WHERE account = $1 "
        "ORDER BY after_id",
        Params().i64(a));
    std::vector<Gap> out;
    for (int i = 0; i < r.size(); ++i)
      out.push_back(Gap{r.u64(i, 0), r.i64(i, 1), r.i64(i, 2), r.bytes(i, 3)});
    return out;
  });
}

namespace {
constexpr const char* kDeviceColumns =
    "device_id, last_delivered, sm_state, push, csi_state, last_seen_ms";
DeviceRecord decode_device_row(const Rows& r, int i) {
  return DeviceRecord{
      r.bytes(i, 0), r.u64(i, 1), r.bytes(i, 2), r.bytes(i, 3), static_cast<uint8_t>(r.i64(i, 4)),
      r.i64(i, 5)};
}
}  // namespace

Result<std::optional<DeviceRecord>> PgStore::get_device(AccountNo a,
                                                        std::string_view device_id) const {
  return read(false, [&](pg::Conn& c) -> std::optional<DeviceRecord> {
    Rows r = c.exec(
        std::string("SELECT ") + kDeviceColumns + " FROM s2_devices WHERE account = $1 AND k = $2",
        Params().i64(a).bytes(std::string_view(schema::device_key(a, device_id))));
    if (r.empty()) return std::nullopt;
    return decode_device_row(r, 0);
  });
}

Result<std::vector<DeviceRecord>> PgStore::list_devices(AccountNo a) const {
  return read(false, [&](pg::Conn& c) {
    Rows r = c.exec(
        std::string("SELECT ") + kDeviceColumns + " FROM s2_devices WHERE account = $1 ORDER BY k",
        Params().i64(a));
    std::vector<DeviceRecord> out;
    for (int i = 0; i < r.size(); ++i) out.push_back(decode_device_row(r, i));
    return out;
  });
}

Result<std::vector<OutboxEntry>> PgStore::list_outbox(AccountNo a, uint64_t after_seq,
                                                      size_t max) const {
  return read(false, [&](pg::Conn& c) {
    Rows r = c.exec(
        "SELECT seq, archive_id, route, stanza, created_ms FROM s2_outbox "
        "WHERE account = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        Params().i64(a).u64(after_seq).u64(std::min<uint64_t>(max, uint64_t{1} << 62)));
    std::vector<OutboxEntry> out;
    for (int i = 0; i < r.size(); ++i)
      out.push_back(OutboxEntry{r.u64(i, 0), r.u64(i, 1),
                                OutboxItem{r.bytes(i, 2), r.bytes(i, 3), r.i64(i, 4)}});
    return out;
  });
}

Result<std::vector<std::pair<std::string, uint64_t>>> PgStore::entry_counts() const {
  return read(true, [&](pg::Conn& c) {
    std::vector<std::pair<std::string, uint64_t>> out;
    for (const char* t :
         {"s2_accounts", "s2_credentials", "s2_fast_tokens", "s2_messages", "s2_upstream_keys",
          "s2_refs", "s2_sync", "s2_gaps", "s2_devices", "s2_outbox"}) {
      Rows r = c.exec(std::string("SELECT count(*) FROM ") + t);
      out.emplace_back(t, r.u64(0, 0));
    }
    return out;
  });
}

}  // namespace s2::store
