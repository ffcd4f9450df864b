// XEP-0490 Message Displayed Synchronization, server-assisted by the proxy.
//
// Which chats were read lives in the account's private PEP node
// urn:xmpp:mds:displayed:0 on the upstream (item id = the chat's JID,
// payload <displayed><stanza-id by=account id=archive id/></displayed>), so
// every device and every client the upstream serves directly see one state.
// The proxy keeps that node current for devices that only send what they
// already send:
// * server assist (XEP-0490 §"Sending assisted displayed"): a device's
//   message carrying <displayed xmlns='urn:xmpp:mds:displayed:0'> has it
//   taken out before anything else sees it (archive, Carbons copies, the
//   upstream) and published as the item named by the message's 'to';
// * a XEP-0333 displayed marker to a 1:1 peer that receipts_once.h sends
//   upstream (it points past the last one) publishes the referenced
//   message's archive id — the id the devices saw — for that peer.
// The account's disco#info gains urn:xmpp:mds:server-assist:0.
// Publishing goes through the anchor with XEP-0490's publish-options
// (private: access model whitelist); while the anchor is down the latest
// state per chat waits and is published when it is ready again.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/store/store.h"
#include "common/xml/stanza.h"

namespace s2 {

class Anchor;
class ProxyContext;

class DisplayedSync {
 public:
  DisplayedSync(ProxyContext& ctx, const std::string& account, std::function<Anchor*()> anchor);

  // Takes a server-assist <displayed/> out of a device's message: the
  // payload to publish, or nullopt when there is none.
  static std::optional<Stanza> take_assist(Stanza& message);
  // Adds the server-assist feature to the account's disco#info result.
  static void advertise(Stanza& iq_result, const std::string& account);

  // Publishes `displayed` as the item `chat` (XEP-0490: opaque).
  void assisted(const std::string& chat, Stanza displayed);
  // A displayed marker to `peer_bare` went upstream for archive id `id`.
  void marker_sent(const std::string& peer_bare, store::ArchiveId id);
  // The anchor is ready: publish what waited.
  void anchor_ready();

 private:
  void pump();
  void done();
  void publish(const std::string& chat, const Stanza& displayed, int level);
  void configure();

  ProxyContext& ctx_;
  const std::string& account_;
  std::function<Anchor*()> anchor_;
  std::map<std::string, Stanza> waiting_;  // by chat, latest wins
  // The publish-options this server takes (displayed_sync.cpp): all of
  // XEP-0490's until an answer says otherwise.
  int level_ = 3;
  bool configured_ = false;
  bool in_flight_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace s2
