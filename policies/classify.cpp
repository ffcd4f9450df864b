// classify(): see classify.h for the order of the rules and why.
#include "policies/classify.h"

namespace s2::policy {
namespace {

MessageClass classify_presence(const MessageFeatures& f) {
  switch (f.presence) {
    case PresenceType::Subscribe:
    case PresenceType::Subscribed:
    case PresenceType::Unsubscribe:
    case PresenceType::Unsubscribed:
      return MessageClass::Subscription;
    case PresenceType::Available:
    case PresenceType::Unavailable:
    case PresenceType::Probe:
    case PresenceType::Error:
      break;
  }
  return MessageClass::Presence;
}

MessageClass classify_message(const MessageFeatures& f) {
  switch (f.type) {
    case MessageType::Error:
      return MessageClass::Error;
    case MessageType::Groupchat:
      return MessageClass::Groupchat;
    case MessageType::Headline:
      return MessageClass::Headline;
    case MessageType::Chat:
    case MessageType::Normal:
      break;
  }
  const bool content = f.has_body || f.has_subject;
  if (f.retraction) return MessageClass::Retraction;
  if (f.correction) return MessageClass::Correction;
  if (f.muc_invite) return MessageClass::MucInvite;
  if (f.call != CallSignal::None) return MessageClass::Call;
  if (f.muc_user_x && f.type == MessageType::Chat &&
      (content || f.encryption != Encryption::None)) {
    return MessageClass::MucPrivate;
  }
  if (f.encryption != Encryption::None) return MessageClass::Encrypted;
  if (content) {
    return f.type == MessageType::Chat ? MessageClass::ChatBody : MessageClass::NormalBody;
  }
  if (f.receipt) return MessageClass::Receipt;
  if (f.marker_displayed) return MessageClass::Marker;
  if (f.chat_state) return MessageClass::ChatState;
  return MessageClass::Other;
}

}  // namespace

MessageClass classify(const MessageFeatures& f) {
  switch (f.kind) {
    case StanzaKind::Iq:
      return MessageClass::Iq;
    case StanzaKind::Presence:
      return classify_presence(f);
    case StanzaKind::Message:
      break;
  }
  return classify_message(f);
}

std::string_view to_string(MessageClass c) {
  switch (c) {
    case MessageClass::ChatBody:
      return "chat_body";
    case MessageClass::NormalBody:
      return "normal_body";
    case MessageClass::Encrypted:
      return "encrypted";
    case MessageClass::Groupchat:
      return "groupchat";
    case MessageClass::MucPrivate:
      return "muc_private";
    case MessageClass::MucInvite:
      return "muc_invite";
    case MessageClass::Headline:
      return "headline";
    case MessageClass::ChatState:
      return "chat_state";
    case MessageClass::Receipt:
      return "receipt";
    case MessageClass::Marker:
      return "marker";
    case MessageClass::Correction:
      return "correction";
    case MessageClass::Retraction:
      return "retraction";
    case MessageClass::Call:
      return "call";
    case MessageClass::Error:
      return "error";
    case MessageClass::Presence:
      return "presence";
    case MessageClass::Subscription:
      return "subscription";
    case MessageClass::Iq:
      return "iq";
    case MessageClass::Other:
      return "other";
  }
  return "unknown";
}

}  // namespace s2::policy
