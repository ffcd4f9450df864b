// Receipts (XEP-0184) and displayed markers (XEP-0333) once per account, not
// once per device (policies/receipts.h decides; this file keeps the state).
// The receipt state of every archived message is in its mirror flags:
// kReceiptRequested when it arrived with <request/>, kReceiptSent once a
// device's receipt went upstream, kReceiptReceived when the peer's receipt
// for a message the account sent arrived. The first device that answers a
// request sends the one receipt; the same receipt from another device — or
// from a device that syncs later and answers what was answered — is
// absorbed: not archived, not sent, only reflected to the other devices so
// their UI updates. A request that arrived while every device was offline is
// answered by the first device that syncs it. Displayed markers are
// cumulative: one goes upstream only when it points past the last one sent
// in that conversation (by archive order; remembered per process).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "common/store/store.h"
#include "policies/classify.h"

namespace s2 {

class ProxyContext;

class ReceiptsOnce {
 public:
  ReceiptsOnce(ProxyContext& ctx, const std::string& account);
  void set_account_no(store::AccountNo a) { account_no_ = a; }

  struct Verdict {
    bool send = true;  // false: absorbed (reflect to the other devices only)
    // Written with the device's receipt, in the same batch.
    std::optional<store::op::SetMessageFlags> mark;
  };
  // A device's receipt or marker (class Receipt / Marker) for `ref_id`, sent
  // to `peer_bare`.
  Verdict device_answer(policy::MessageClass cls, const std::string& peer_bare,
                        const std::string& ref_id);
  // The batch with `mark` committed (or failed): the pending claim ends.
  void committed(const Verdict& v);
  // The peer's receipt for a message the account sent: its flag, or nullopt.
  std::optional<store::op::SetMessageFlags> peer_receipt(const std::string& peer_bare,
                                                         const std::string& ref_id) const;

 private:
  ProxyContext& ctx_;
  const std::string& account_;
  store::AccountNo account_no_ = 0;
  // Receipts sent upstream whose flag is not committed yet (a second device
  // answering in between must still be absorbed).
  std::unordered_set<store::ArchiveId> sending_;
  std::unordered_map<std::string, store::ArchiveId> last_marker_;  // by peer
};

}  // namespace s2
