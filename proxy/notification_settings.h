// XEP-0492 Chat Notification Settings, read by the proxy for the account.
//
// Clients store a chat's setting (always / on-mention / never) in the chat's XEP-0402 bookmark in
// the account's PEP on the upstream (policies/notify_settings.h has the format and the rules).
// The proxy reads them through the anchor — at every anchor login, and again shortly after a
// device publishes or retracts a bookmark or a bookmarks notification passes one of the account's
// links — and keeps the resolved map that urgency (push, CSI) reads: one lookup per stanza, no
// request on the stanza's way. What the proxy reads is never written back: the clients own it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/net/connection.h"
#include "common/xml/stanza.h"
#include "policies/notify_settings.h"

namespace s2 {

class Anchor;
class ProxyContext;

class NotificationSettings {
 public:
  NotificationSettings(ProxyContext& ctx, const std::string& account,
                       std::function<Anchor*()> anchor);

  // The anchor logged in: read the settings (again).
  void anchor_ready();
  // A device's iq or a message on one of the account's links: when it changes the bookmarks
  // (a publish or retract on urn:xmpp:bookmarks:1, or a PEP notification of that node), read
  // them again shortly (the change may still be on its way through another session).
  void observe(const Stanza& s);

  const policy::ChatNotifySettings& settings() const { return settings_; }
  policy::NotifyPrefs for_chat(std::string_view chat_bare) const;

  // The settings in a pubsub <items/> answer for urn:xmpp:bookmarks:1, resolved for the proxy's
  // identity (client/phone); chats keyed by lower-cased JID. Chats without a setting are absent.
  static policy::ChatNotifySettings parse_items(const Stanza& iq_result);
  // Whether `s` changes (iq set) or announces a change of (message event) the bookmarks node.
  static bool touches_bookmarks(const Stanza& s);

 private:
  void fetch();

  const std::string& account_;
  std::function<Anchor*()> anchor_;
  policy::ChatNotifySettings settings_;
  Timer refetch_;
  bool in_flight_ = false;
  bool again_ = false;  // a change was seen while a read was in flight
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace s2
