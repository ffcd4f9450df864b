// Account leases: advisory locks, owner epochs, the unowned-account sweep.
#include "common/store/pg_leases.h"

#include <unistd.h>

#include <utility>

#include "common/store/pg_conn.h"

namespace s2::store {
namespace {

using pg::Params;
using pg::Rows;

// The advisory lock of account A is (class, A as int4). Advisory locks are
// per database, not per schema, so the class is derived from the schema the
// tables live in: two deployments in two schemas of one database (or the test
// suite's proxies) never contend, and the two-key form keeps our locks apart
// from anything else using advisory locks.
int64_t lock_class_for(const std::string& schema) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char ch : "s2proxy:" + schema) h = (h ^ ch) * 16777619u;
  return static_cast<int32_t>(h);
}

int64_t lock_key(AccountNo a) {  // uint32 → int4, as the SQL function takes it
  return a >= 0x80000000u ? static_cast<int64_t>(a) - (int64_t{1} << 32) : a;
}

}  // namespace

std::string this_process_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

AccountLeases::AccountLeases(LeaseOptions opts, PgStore& store)
    : opts_(std::move(opts)), store_(store) {}

AccountLeases::~AccountLeases() = default;  // closing the connection releases every lock

Result<std::unique_ptr<AccountLeases>> AccountLeases::open(LeaseOptions opts, PgStore& store) {
  std::unique_ptr<AccountLeases> l(new AccountLeases(std::move(opts), store));
  try {
    // Keepalives on both ends: a node cut off from the database loses its
    // locks in ~11 s (5 s idle + 3 probes 2 s apart), not after TCP's hours.
    l->conn_ = pg::Conn::connect(l->opts_.conninfo,
                                 {{"keepalives", "1"},
                                  {"keepalives_idle", "5"},
                                  {"keepalives_interval", "2"},
                                  {"keepalives_count", "3"},
                                  {"application_name", "s2proxy-leases " + l->opts_.node}});
    l->conn_->run(
        "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; "
        "SET tcp_keepalives_count = 3");
    // The schema that holds s2_accounts (as unqualified names resolve).
    Rows s = l->conn_->exec(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = 's2_accounts'::regclass");
    l->lock_class_ = lock_class_for(s.bytes(0, 0));
  } catch (const pg::Failure& f) {
    return pg::to_error(f);
  }
  store.enable_fencing();
  return l;
}

Result<Claim> AccountLeases::claim(AccountNo a) {
  if (auto it = owned_.find(a); it != owned_.end()) return Claim{true, it->second, {}, {}};
  try {
    Rows got = conn_->exec("SELECT pg_try_advisory_lock($1::int4, $2::int4)",
                           Params().i64(lock_class_).i64(lock_key(a)));
    if (got.i64(0, 0) != 0) {
      Rows e = conn_->exec(
          "UPDATE s2_accounts SET owner_epoch = owner_epoch + 1, owner_node = $2, owner_addr = $3 "
          "WHERE account = $1 RETURNING owner_epoch",
          Params().i64(a).bytes(opts_.node).bytes(opts_.address));
      if (e.empty()) {  // the account was forgotten meanwhile
        conn_->exec("SELECT pg_advisory_unlock($1::int4, $2::int4)",
                    Params().i64(lock_class_).i64(lock_key(a)));
        return Claim{};
      }
      const int64_t epoch = e.i64(0, 0);
      owned_[a] = epoch;
      store_.set_fence(a, epoch);
      return Claim{true, epoch, opts_.node, opts_.address};
    }
    Rows o = conn_->exec("SELECT owner_node, owner_addr FROM s2_accounts WHERE account = $1",
                         Params().i64(a));
    Claim c;
    if (!o.empty()) {
      c.node = o.bytes(0, 0);
      c.address = o.bytes(0, 1);
    }
    return c;
  } catch (const pg::Failure& f) {
    return pg::to_error(f);
  }
}

Result<std::vector<UnownedAccount>> AccountLeases::unowned(int64_t now_ms, int64_t settle_ms,
                                                           size_t max) {
  try {
    Rows r = conn_->exec(
        "SELECT a.account, a.bare_jid FROM s2_accounts a WHERE a.created_ms <= $1 "
        "AND EXISTS (SELECT 1 FROM s2_credentials c WHERE c.account = a.account) "
        "AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.classid = $3::oid AND l.objsubid = 2 AND l.objid = a.account::oid AND l.granted) "
        "ORDER BY a.account LIMIT $2",
        // pg_locks shows the int4 keys as unsigned oids
        Params().i64(now_ms - settle_ms).u64(max).i64(lock_class_ & 0xffffffff));
    std::vector<UnownedAccount> out;
    for (int i = 0; i < r.size(); ++i)
      out.push_back(UnownedAccount{static_cast<AccountNo>(r.u64(i, 0)), r.bytes(i, 1)});
    return out;
  } catch (const pg::Failure& f) {
    return pg::to_error(f);
  }
}

bool AccountLeases::alive() {
  try {
    conn_->exec("SELECT 1");
    return true;
  } catch (const pg::Failure&) {
    owned_.clear();
    store_.clear_fences();
    return false;
  }
}

}  // namespace s2::store
