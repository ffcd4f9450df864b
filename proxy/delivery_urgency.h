// Urgency at delivery: what one stanza means to the device it is written to, read once in
// Device::deliver and used by the CSI queue (csi_queue.h) and the metrics.
//
// Every stanza a device gets — live, catch-up, carbon, reflection, error, an upstream iq — goes
// through delivery_facts(): the XML is read into policy facts (stanza_facts.h; for a Carbons copy
// the *inner* message, with `forwarded` set), the daemon-only facts are filled from what the device
// knows, and policies/ turn them into a class, an urgency (policy::urgency) and the CSI coalescing
// key (policy::csi_coalesce_key). What the device knows is passed in as a value (DeliveryView), so
// the function is pure and tested as a table (tests/unit/proxy/test_delivery_urgency.cpp).
//
// The daemon-only facts, deliberately simple:
// * direction: a message whose `from` is the account itself (bare or any resource — a sibling
//   device's message to this one, a reflection) counts as sent by the account (at most Normal),
//   as a Carbons <sent/> copy does (policies/urgency.h).
// * MUC (type groupchat, from a room): the account's nick in that room is the one the device last
//   joined with (presence to room/nick carrying a muc <x/>, remembered by the Device), else the
//   account's local part. `muc_own_reflection`: the message comes from room/<that nick>.
//   `mentions_user`: an XEP-0372 <reference type='mention'> whose uri is xmpp:<account> or
//   xmpp:<room>/<nick>, or the nick or the bare JID as a whole word of the body (ASCII case
//   folded; a word boundary is any byte that is not an ASCII letter or digit, '_', '-' or ≥ 0x80).
// * A MAM result (<message><result xmlns='urn:xmpp:mam:2'/>) answers the device's own query: it is
//   delivered like the iq it belongs to (Immediate), never held.
// * Coalescing key: presence per sender full JID; a chat state per conversation — the sender's
//   full JID, or for a Carbons <sent/> copy the peer it was sent to (each side's state is its own).
// * Notification preferences (XEP-0492, notification_settings.h): the setting of the stanza's
//   chat — the room for groupchat, the peer for a 1:1 message (the addressee of a <sent/> copy) —
//   from the account's settings map, else XEP-0492's defaults.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/xml/stanza.h"
#include "policies/classify.h"
#include "policies/notify_settings.h"
#include "policies/urgency.h"

namespace s2 {

// What the device knows that the XML does not say.
struct DeliveryView {
  std::string_view account;  // bare JID of the account
  // room bare JID (lower-cased) → the nick this device joined with; may be null.
  const std::map<std::string, std::string>* room_nicks = nullptr;
  // the account's XEP-0492 settings, chat bare JID (lower case) → setting; may be null.
  const policy::ChatNotifySettings* notify = nullptr;
};

struct DeliveryFacts {
  policy::MessageClass cls = policy::MessageClass::Other;
  policy::Urgency urgency = policy::Urgency::Silent;
  std::optional<std::string> coalesce_key;  // CSI: a held stanza with this key is superseded
};

DeliveryFacts delivery_facts(const Stanza& s, const DeliveryView& v);

// `word` occurs in `text` as a whole word (ASCII case folded). Empty `word`: false.
bool contains_word(std::string_view text, std::string_view word);

// XEP-0372 mention or word match of `nick` / `account` in a groupchat message's body.
bool mentions(const Stanza& message, std::string_view account, std::string_view room,
              std::string_view nick);

}  // namespace s2
