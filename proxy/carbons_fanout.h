// Fan-out of the account's history to its devices, and Carbons (XEP-0280)
// as the proxy serves them: device links never enable Carbons upstream; the
// anchor hears every copy once and this file decides what each device gets
// of one message — the message itself (addressed to it, to the bare JID, an
// error), a <sent/> or <received/> carbon (Carbons enabled), or nothing (a
// legacy device without Carbons keeps the legacy contract: it is in MAM).
// Every copy of an archived message carries <stanza-id by=account>.
#pragma once

#include <string>
#include <vector>

#include "common/store/store.h"
#include "common/xml/stanza.h"
#include "policies/route.h"

namespace s2 {

class ProxyContext;
class Device;

class CarbonsFanout {
 public:
  CarbonsFanout(ProxyContext& ctx, const std::string& account, const std::vector<Device*>& devices);

  // What device `d` gets for one message of the account's history (null:
  // nothing). `outgoing`: the account sent it.
  Stanza copy_for(Device* d, const Stanza& inner, bool outgoing, store::ArchiveId id) const;
  // Delivers an archived (or ephemeral, id 0) message to the devices `fanout`
  // names, except `except` and `except2`.
  void fan_out(const Stanza& inner, bool outgoing, store::ArchiveId id, policy::Fanout fanout,
               Device* only, Device* except, Device* except2) const;
  // <iq type=set><enable|disable xmlns=urn:xmpp:carbons:2/></iq> from a
  // device: answered here. False when `iq` is not one.
  static bool handle_iq(Device* d, const Stanza& iq);

 private:
  ProxyContext& ctx_;
  const std::string& account_;
  const std::vector<Device*>& devices_;
};

}  // namespace s2
