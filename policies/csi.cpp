// csi_decide() / csi_coalesce_key(): see csi.h.
#include "policies/csi.h"

namespace s2::policy {

CsiAction csi_decide(Urgency u, const CsiQueue& q, bool same_key_held) {
  const CsiAction now = q.held > 0 ? CsiAction::FlushThenDeliver : CsiAction::DeliverNow;
  if (!q.inactive || u != Urgency::Silent) return now;
  if (same_key_held) return CsiAction::Replace;               // queue does not grow
  if (q.held >= q.limit) return CsiAction::FlushThenDeliver;  // overflow: flush, never drop
  return CsiAction::Hold;
}

std::optional<std::string> csi_coalesce_key(MessageClass c, const MessageFeatures& f,
                                            std::string_view from) {
  std::string key;
  switch (c) {
    case MessageClass::Presence:
      if (f.presence != PresenceType::Available && f.presence != PresenceType::Unavailable) {
        return std::nullopt;
      }
      key = "presence\x1f";
      break;
    case MessageClass::ChatState:
      // Kept: what the sender asked to store, and anything riding along a chat state.
      if (f.hints.store || f.other_payload) return std::nullopt;
      key = "chatstate\x1f";
      break;
    default:
      return std::nullopt;
  }
  key.append(from);
  return key;
}

std::string_view to_string(CsiAction a) {
  switch (a) {
    case CsiAction::DeliverNow:
      return "deliver_now";
    case CsiAction::Hold:
      return "hold";
    case CsiAction::Replace:
      return "replace";
    case CsiAction::FlushThenDeliver:
      return "flush_then_deliver";
  }
  return "unknown";
}

}  // namespace s2::policy
