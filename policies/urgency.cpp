// urgency(): see urgency.h for the levels and where each rule comes from.
#include "policies/urgency.h"

namespace s2::policy {
namespace {

// Content under a chat's XEP-0492 setting: urgent always, on mention, or never.
Urgency by_setting(MucNotify setting, const MessageFeatures& f) {
  switch (setting) {
    case MucNotify::Always:
      return Urgency::Urgent;
    case MucNotify::OnMention:
      return f.mentions_user ? Urgency::Urgent : Urgency::Silent;
    case MucNotify::Never:
      break;
  }
  return Urgency::Silent;
}

Urgency groupchat_urgency(const MessageFeatures& f, const NotifyPrefs& prefs) {
  const bool content = f.has_body || f.encryption != Encryption::None;
  if (!content) return f.has_subject ? Urgency::Normal : Urgency::Silent;
  return by_setting(prefs.groupchat, f);
}

Urgency class_urgency(MessageClass c, const MessageFeatures& f, const NotifyPrefs& prefs) {
  switch (c) {
    case MessageClass::Iq:
      return Urgency::Immediate;
    case MessageClass::ChatBody:
    case MessageClass::NormalBody:
    case MessageClass::Encrypted:
      return by_setting(prefs.direct, f);  // a 1:1 chat's content
    case MessageClass::MucPrivate:
    case MessageClass::MucInvite:
      return Urgency::Urgent;
    case MessageClass::Subscription:
      // A request needs the user; the answers only update the roster view.
      return f.presence == PresenceType::Subscribe ? Urgency::Urgent : Urgency::Normal;
    case MessageClass::Call:
      return f.call == CallSignal::Propose ? Urgency::Urgent : Urgency::Normal;
    case MessageClass::Groupchat:
      return groupchat_urgency(f, prefs);
    case MessageClass::Correction:
    case MessageClass::Error:
      return Urgency::Normal;
    case MessageClass::Headline:
    case MessageClass::ChatState:
    case MessageClass::Receipt:
    case MessageClass::Marker:
    case MessageClass::Retraction:
    case MessageClass::Presence:
    case MessageClass::Other:
      return Urgency::Silent;
  }
  return Urgency::Silent;
}

bool sent_by_account(const MessageFeatures& f, Direction dir) {
  return dir == Direction::FromDevice || f.forwarded == Forwarded::Sent || f.muc_own_reflection;
}

}  // namespace

Urgency urgency(MessageClass c, const MessageFeatures& f, Direction dir, const NotifyPrefs& prefs) {
  const Urgency u = class_urgency(c, f, prefs);
  if (u == Urgency::Urgent && sent_by_account(f, dir)) return Urgency::Normal;
  return u;
}

std::string_view to_string(Urgency u) {
  switch (u) {
    case Urgency::Immediate:
      return "immediate";
    case Urgency::Urgent:
      return "urgent";
    case Urgency::Normal:
      return "normal";
    case Urgency::Silent:
      return "silent";
  }
  return "unknown";
}

}  // namespace s2::policy
