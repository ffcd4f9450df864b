// Account ownership across s2proxy nodes sharing one PostgreSQL store
// (issue 14 item 2).
//
// An account's hub, anchor and mirror writes live on exactly one node at a
// time. Ownership is a session-level advisory lock per account, held on this
// object's own connection: PostgreSQL releases every lock of a node whose
// session ends, whether the node exited, was killed (the kernel closes its
// socket) or was cut off (TCP keepalives on both ends, a few seconds).
//
// Taking a lock bumps the account's owner_epoch and records the node's name and
// client address. The epoch is the fencing token: PgStore checks it, under a
// row lock, in every transaction that writes for the account, so a node that
// lost its lock can never commit for the account again, even while it has not
// noticed yet; the new owner's epoch bump waits for such a transaction to end.
//
// All calls block on the database (one round trip each); the daemon makes them
// on its loop, as it does store reads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/store/pg_store.h"
#include "common/store/store.h"

namespace s2::store {

namespace pg {
class Conn;
}

// "host:pid": how a lease holder without an advertised address names itself
// (a node without --advertise, an operator command holding a lease).
std::string this_process_name();

struct LeaseOptions {
  std::string conninfo;
  std::string node;     // this node's name (logs, s2_accounts.owner_node)
  std::string address;  // where clients of this node connect (--advertise); may be empty
};

struct Claim {
  bool owned = false;   // this node holds the lock now
  int64_t epoch = 0;    // when owned: the fencing token
  std::string node;     // when not: the owner's name and address, as it recorded them
  std::string address;  // ("" when it advertised none, or no lock holder recorded one)
};

struct UnownedAccount {
  AccountNo account = 0;
  std::string bare_jid;
};

class AccountLeases {
 public:
  // Connects (with TCP keepalives) and tells `store` to fence every write.
  static Result<std::unique_ptr<AccountLeases>> open(LeaseOptions opts, PgStore& store);
  ~AccountLeases();
  AccountLeases(const AccountLeases&) = delete;
  AccountLeases& operator=(const AccountLeases&) = delete;

  // Takes the account's lock if nobody holds it (or returns this node's
  // epoch if it does already); otherwise says who owns it.
  Result<Claim> claim(AccountNo a);
  // Accounts nobody holds a lock on that have credentials (an anchor needs
  // them), created more than `settle_ms` ago (a node that creates an account
  // claims it right after: others leave it to it).
  Result<std::vector<UnownedAccount>> unowned(int64_t now_ms, int64_t settle_ms, size_t max);
  // One round trip on the lease connection: false when it is gone, and with it
  // every lock (the node must stop serving its accounts).
  bool alive();
  size_t owned() const { return owned_.size(); }
  bool holds(AccountNo a) const { return owned_.count(a) != 0; }

 private:
  AccountLeases(LeaseOptions opts, PgStore& store);

  LeaseOptions opts_;
  PgStore& store_;
  std::unique_ptr<pg::Conn> conn_;
  int64_t lock_class_ = 0;  // first key of every account lock (pg_leases.cpp)
  std::unordered_map<AccountNo, int64_t> owned_;
};

}  // namespace s2::store
