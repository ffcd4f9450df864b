// Several s2proxy nodes on one PostgreSQL store (issue 14 items 2–4): which
// accounts this node serves, and taking over the accounts of a node that is
// gone.
//
// * An account is served where its lease is (common/store/pg_leases.h). A node
//   claims it when it starts the account's anchor (at start, after a first
//   login, in the sweep) and when a device of it authenticates here.
// * A device that authenticates on a node that does not own its account gets
//   the RFC 6120 `see-other-host` stream error naming the owner's advertised
//   address (--advertise), after SASL (so FAST tokens and the vault are
//   shared, and the second login is one cheap FAST or SCRAM exchange).
// * Every 2 s the sweep asks which accounts nobody holds (a node died: its
//   database session ended and PostgreSQL released its locks) and claims
//   them; each one's anchor then catches up from the committed cursor, so a
//   takeover loses nothing the old owner committed, and the old owner can no
//   longer commit (its epoch is stale: fencing).
// * The lease connection lost means every lock lost: the node exits (status
//   75) after logging why; its devices reconnect, to whichever node serves
//   them now, and the supervisor restarts it. A node that kept serving without
//   its locks could not commit anything anyway.
#pragma once

#include <memory>
#include <string>

#include "common/net/connection.h"
#include "common/store/pg_leases.h"

namespace s2 {

class ProxyContext;

class Cluster {
 public:
  Cluster(ProxyContext& ctx, uv_loop_t* loop, std::unique_ptr<store::AccountLeases> leases);
  void start();  // the sweep
  void stop();

  // May this node serve the account? Claims it when nobody does. False: the
  // owner's advertised address ("" when it advertised none) and name.
  bool serve_here(const std::string& bare_jid, std::string* owner_address = nullptr,
                  std::string* owner_node = nullptr);
  // The same for an account whose number is known (a hub that just learned
  // it claims the account before it writes anything for it).
  bool serve_here(const std::string& bare_jid, store::AccountNo a,
                  std::string* owner_address = nullptr, std::string* owner_node = nullptr);
  size_t owned() const { return leases_->owned(); }
  // This node holds the account's lease now (no claim is made).
  bool owns(store::AccountNo a) const { return leases_->holds(a); }

 private:
  void sweep();

  ProxyContext& ctx_;
  std::unique_ptr<store::AccountLeases> leases_;
  Timer timer_;
};

}  // namespace s2
