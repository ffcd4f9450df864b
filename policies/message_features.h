// What a stanza contains, as plain facts — the only input the routing policies ever see.
//
// The daemon parses the XML (common/xml) and fills one MessageFeatures per stanza; the policies in
// this directory never see XML, sockets, the mirror or a clock. Keeping the facts raw ("has a
// <body>", "has a chat state element") rather than pre-judged ("is important") is deliberate: every
// judgement lives in policies/ and is a row in a table test (STYLE.md "Pure policies, tested as
// tables"; ARCHITECTURE.md §2). Fields the XML cannot answer alone — `mentions_user`,
// `refers_to_archived`, `muc_own_reflection`, `iq_for_proxy` — are computed by the daemon from its
// own state and documented where they are declared.
//
// For a copy — a carbon (XEP-0280), or a result of the anchor's MAM catch-up (ARCHITECTURE.md §5)
// — the daemon fills the features of the *forwarded* message and sets `forwarded`; a carbon's
// wrapper is checked by carbons.h first, a MAM result's by the MAM client (queryid, from).
#pragma once

#include <cstdint>

namespace s2::policy {

enum class StanzaKind : std::uint8_t { Message, Presence, Iq };

// RFC 6121 §5.2.2; a missing or unknown type attribute is Normal.
enum class MessageType : std::uint8_t { Normal, Chat, Groupchat, Headline, Error };

// RFC 6121 §4.7.1 / §3; no type attribute is Available.
enum class PresenceType : std::uint8_t {
  Available,
  Unavailable,
  Subscribe,
  Subscribed,
  Unsubscribe,
  Unsubscribed,
  Probe,
  Error,
};

// RFC 6120 §8.2.3.
enum class IqType : std::uint8_t { Get, Set, Result, Error };

// End-to-end encrypted payload (PROTOCOLS.md §10 "OMEMO/OX/OTR").
enum class Encryption : std::uint8_t {
  None,
  Omemo,  // XEP-0384 <encrypted xmlns='eu.siacs.conversations.axolotl' or 'urn:xmpp:omemo:2'>
  Ox,     // XEP-0373 <openpgp xmlns='urn:xmpp:openpgp:0'>
  Otr,    // XEP-0364: "?OTR" body, or EME namespace urn:xmpp:otr:0
  Eme,    // XEP-0380 <encryption xmlns='urn:xmpp:eme:0'> naming another scheme
};

// How the message reached us: directly, or as a copy (the features describe the inner message).
enum class Forwarded : std::uint8_t {
  None,
  Received,  // a copy of a message the account received: XEP-0280 <received>, or a MAM result
  Sent,      // a copy of a message the account sent: XEP-0280 <sent>, or a MAM result from us
};

// XEP-0353 Jingle Message Initiation element, if any.
enum class CallSignal : std::uint8_t { None, Propose, Retract, Accept, Proceed, Reject, Finish };

// XEP-0334 message processing hints (urn:xmpp:hints).
struct Hints {
  bool store = false;               // <store/>
  bool no_store = false;            // <no-store/>
  bool no_permanent_store = false;  // <no-permanent-store/>
  bool no_copy = false;             // <no-copy/>
};

struct MessageFeatures {
  StanzaKind kind = StanzaKind::Message;
  MessageType type = MessageType::Normal;           // messages only
  PresenceType presence = PresenceType::Available;  // presence only
  IqType iq = IqType::Get;                          // iq only

  // Content.
  bool has_body = false;     // a non-empty <body> (a fallback body counts: it is what legacy sees)
  bool has_subject = false;  // <subject> (RFC 6121 §5.2.4; in MUC: a room subject change)
  Encryption encryption = Encryption::None;

  // IM payloads (PROTOCOLS.md §6, §10).
  bool chat_state = false;        // any XEP-0085 element (active/composing/paused/inactive/gone)
  bool receipt_request = false;   // XEP-0184 <request/>
  bool receipt = false;           // XEP-0184 <received id=…/>
  bool marker_displayed = false;  // XEP-0333 <displayed id=…/>
  bool correction = false;        // XEP-0308 <replace id=…/>
  bool retraction = false;        // XEP-0424 <retract/>
  CallSignal call = CallSignal::None;  // XEP-0353
  bool other_payload = false;          // a child element none of the above names, that is not mere
                                       // routing metadata (thread, hints, sid, delay, addresses)

  Hints hints;
  bool carbons_private = false;  // XEP-0280 <private xmlns='urn:xmpp:carbons:2'/>

  // MUC (XEP-0045, XEP-0249).
  bool muc_user_x = false;  // <x xmlns='http://jabber.org/protocol/muc#user'> (marks a MUC PM)
  bool muc_invite = false;  // mediated <x muc#user><invite/> or direct XEP-0249 jabber:x:conference
  // Computed by the daemon for groupchat: the body names the account's nick in that room or its
  // bare JID (XEP-0372 reference or plain text match).
  bool mentions_user = false;
  // Computed by the daemon for groupchat: the room reflects a message this account's occupant
  // sent (matched by origin-id or by the occupant nick).
  bool muc_own_reflection = false;

  Forwarded forwarded = Forwarded::None;

  // Computed by the daemon from the mirror's by_ref index (ARCHITECTURE.md §4): the id this
  // stanza refers to (an error's own id, a receipt's/marker's/correction's target) resolves to an
  // archived message. Consulted for message errors, which are persistent only when linked.
  bool refers_to_archived = false;

  // Computed by the daemon for an iq: the proxy answers it itself. From a device: MAM (served
  // from the mirror), Carbons and Push enable/disable, bind/session (ARCHITECTURE.md §7). From
  // upstream: a server ping (XEP-0199) to a device link or the anchor — the link must stay alive
  // even while its device hibernates, so it never waits for the device.
  bool iq_for_proxy = false;
};

}  // namespace s2::policy
