// See receipts_once.h.
#include "proxy/receipts_once.h"

#include "common/util/metrics.h"
#include "policies/receipts.h"
#include "proxy/proxy_context.h"

namespace s2 {
namespace {
Metric& m_absorbed(const char* what) {
  return counter("s2proxy_receipts_absorbed_total",
                 "receipts and markers a device sent that another device had already sent",
                 std::string("kind=\"") + what + "\"");
}
}  // namespace

ReceiptsOnce::ReceiptsOnce(ProxyContext& ctx, const std::string& account)
    : ctx_(ctx), account_(account) {}

ReceiptsOnce::Verdict ReceiptsOnce::device_answer(policy::MessageClass cls,
                                                  const std::string& peer_bare,
                                                  const std::string& ref_id) {
  Verdict v;
  if (account_no_ == 0 || ref_id.empty()) return v;
  // What the device answers is a message the peer sent.
  auto ref = ctx_.store->resolve_ref(account_no_, peer_bare, store::RefKind::kReceivedId, ref_id);
  std::optional<store::ArchiveId> id;
  if (ref.ok() && ref.value()) id = *ref.value();
  if (cls == policy::MessageClass::Marker) {
    std::optional<uint64_t> last;
    if (auto it = last_marker_.find(peer_bare); it != last_marker_.end()) last = it->second;
    auto mv = policy::decide_device_marker(id, last);
    if (mv.action == policy::ReceiptAction::Drop) {
      m_absorbed("displayed").inc();
      v.send = false;
      return v;
    }
    if (mv.last_sent) last_marker_[peer_bare] = *mv.last_sent;
    if (id) v.mark = store::op::SetMessageFlags{account_no_, *id, store::msgflag::kDisplayed, 0};
    return v;
  }
  std::optional<policy::ReceiptOriginal> original;
  if (id) {
    auto m = ctx_.store->get_message(account_no_, *id);
    if (m.ok() && m.value()) {
      const uint32_t flags = m.value()->record.flags;
      policy::ReceiptOriginal o;
      o.incoming = m.value()->record.direction == store::Direction::kIncoming;
      o.state = (flags & store::msgflag::kReceiptSent) || sending_.count(*id)
                    ? policy::ReceiptState::Sent
                : (flags & store::msgflag::kReceiptRequested) ? policy::ReceiptState::Requested
                                                              : policy::ReceiptState::NotRequested;
      original = o;
    }
  }
  auto rv = policy::decide_device_receipt(original);
  if (rv.action == policy::ReceiptAction::Drop) {
    m_absorbed("receipt").inc();
    v.send = false;
    return v;
  }
  if (id && original) {
    sending_.insert(*id);
    v.mark = store::op::SetMessageFlags{account_no_, *id, store::msgflag::kReceiptSent, 0};
  }
  return v;
}

void ReceiptsOnce::committed(const Verdict& v) {
  if (v.mark) sending_.erase(v.mark->archive_id);
}

std::optional<store::op::SetMessageFlags> ReceiptsOnce::peer_receipt(
    const std::string& peer_bare, const std::string& ref_id) const {
  if (account_no_ == 0 || ref_id.empty()) return std::nullopt;
  auto ref = ctx_.store->resolve_ref(account_no_, peer_bare, store::RefKind::kSentId, ref_id);
  if (!ref.ok() || !ref.value()) return std::nullopt;
  return store::op::SetMessageFlags{account_no_, *ref.value(), store::msgflag::kReceiptReceived, 0};
}

}  // namespace s2
