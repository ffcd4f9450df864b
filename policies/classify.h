// Traffic classes: what kind of thing a stanza is, before we decide where it goes.
//
// PROTOCOLS.md §10 lists the traffic classes the legacy world already distinguishes, each with the
// behaviour Carbons, MAM, CSI and push give it; routing (route.h) and urgency (urgency.h) are
// functions of the class, so classify() is the single place that decides "a body-less chat with a
// <composing/> is a chat state" or "an OMEMO message is encrypted even with a fallback body".
//
// A stanza can carry several payloads; the first matching rule wins, in this order:
//   presence/iq by kind; message type error, groupchat, headline (the type attribute dominates:
//   RFC 6121 §5.2.2 gives those types their own delivery rules); then the payloads that change
//   history — retraction (XEP-0424, even with its fallback body), correction (XEP-0308) — then MUC
//   invitations (XEP-0045 §7.8, XEP-0249), Jingle Message Initiation (XEP-0353), MUC private
//   messages (chat + muc#user x, XEP-0045 §7.5), end-to-end encrypted payloads, plain bodies, and
//   only then the body-less IM payloads: receipt (XEP-0184), displayed marker (XEP-0333), chat
//   state (XEP-0085). A body always beats a body-less payload riding along (a chat state or a
//   receipt request next to a body is still a ChatBody): a human-visible message is never demoted.
#pragma once

#include <string_view>

#include "policies/message_features.h"

namespace s2::policy {

enum class MessageClass : unsigned char {
  ChatBody,    // type chat with a body or subject
  NormalBody,  // type normal with a body or subject
  Encrypted,   // OMEMO / OX / OTR / EME payload (with or without a fallback body)
  Groupchat,   // any type=groupchat message (from or to a room)
  MucPrivate,  // MUC private message: type chat + muc#user <x> + content
  MucInvite,   // mediated (muc#user <invite>) or direct (XEP-0249) invitation
  Headline,    // type headline (RFC 6121 §5.2.2: never stored, never replied to)
  ChatState,   // only a XEP-0085 chat state
  Receipt,     // XEP-0184 <received/>
  Marker,      // XEP-0333 <displayed/>
  Correction,  // XEP-0308 <replace/>
  Retraction,  // XEP-0424 <retract/>
  Call,        // XEP-0353 Jingle Message Initiation (propose/retract/accept/proceed/reject/finish)
  Error,       // message of type error
  Presence,    // presence: available, unavailable, probe, error
  Subscription,  // presence subscribe / subscribed / unsubscribe / unsubscribed (RFC 6121 §3)
  Iq,            // any iq
  Other,         // a body-less message carrying nothing we recognise (unknown payload or empty)
};

MessageClass classify(const MessageFeatures& f);

// Stable lower-case name, for metrics labels ("stanzas by class", ARCHITECTURE.md §8) and logs.
std::string_view to_string(MessageClass c);

}  // namespace s2::policy
