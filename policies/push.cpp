// push_decide() / push_includes_body(): see push.h.
#include "policies/push.h"

namespace s2::policy {
namespace {

// Will the stanza still be there for a device that has no session at all?
bool survives_offline(Persistence p) {
  return p == Persistence::Persistent || p == Persistence::KeptUpstream;
}

}  // namespace

PushAction push_decide(Urgency u, Persistence p, const PushTarget& t) {
  if (u != Urgency::Urgent || !t.registered) return PushAction::Skip;
  switch (t.state) {
    case DeviceState::Connected:
      return PushAction::Skip;
    case DeviceState::Offline:
      if (!survives_offline(p)) return PushAction::Skip;
      break;
    case DeviceState::Hibernated:
      break;
  }
  if (t.unanswered && t.ms_since_last_push < t.coalesce_ms) return PushAction::Coalesce;
  return PushAction::Push;
}

bool push_body_opted_in(BodySetting account, bool daemon_default) {
  switch (account) {
    case BodySetting::On:
      return true;
    case BodySetting::Off:
      return false;
    case BodySetting::Default:
      break;
  }
  return daemon_default;
}

bool push_includes_body(MessageClass c, const MessageFeatures& f, bool account_opted_in) {
  if (!account_opted_in || !f.has_body || f.encryption != Encryption::None) return false;
  switch (c) {
    case MessageClass::ChatBody:
    case MessageClass::NormalBody:
    case MessageClass::Groupchat:
    case MessageClass::MucPrivate:
    case MessageClass::MucInvite:
      return true;
    default:
      return false;
  }
}

std::string_view to_string(PushAction a) {
  switch (a) {
    case PushAction::Skip:
      return "skip";
    case PushAction::Push:
      return "push";
    case PushAction::Coalesce:
      return "coalesce";
  }
  return "unknown";
}

}  // namespace s2::policy
