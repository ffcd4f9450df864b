// XML namespaces the daemon speaks (PROTOCOLS.md table). One place, so a
// typo cannot make a feature silently fail to match.
#pragma once

namespace s2::ns {
inline constexpr const char* kClient = "jabber:client";
inline constexpr const char* kStreams = "http://etherx.jabber.org/streams";
inline constexpr const char* kStreamErrors = "urn:ietf:params:xml:ns:xmpp-streams";
inline constexpr const char* kStanzaErrors = "urn:ietf:params:xml:ns:xmpp-stanzas";
inline constexpr const char* kTls = "urn:ietf:params:xml:ns:xmpp-tls";
inline constexpr const char* kSasl = "urn:ietf:params:xml:ns:xmpp-sasl";
inline constexpr const char* kBind = "urn:ietf:params:xml:ns:xmpp-bind";
inline constexpr const char* kSession = "urn:ietf:params:xml:ns:xmpp-session";
inline constexpr const char* kSm = "urn:xmpp:sm:3";
inline constexpr const char* kSasl2 = "urn:xmpp:sasl:2";
inline constexpr const char* kBind2 = "urn:xmpp:bind:0";
inline constexpr const char* kFast = "urn:xmpp:fast:0";
inline constexpr const char* kCarbons = "urn:xmpp:carbons:2";
inline constexpr const char* kCsi = "urn:xmpp:csi:0";
inline constexpr const char* kPing = "urn:xmpp:ping";
// Message payloads and metadata (proxy/stanza_facts.h reads them).
inline constexpr const char* kServer = "jabber:server";
inline constexpr const char* kChatStates = "http://jabber.org/protocol/chatstates";  // XEP-0085
inline constexpr const char* kReceipts = "urn:xmpp:receipts";                        // XEP-0184
inline constexpr const char* kMarkers = "urn:xmpp:chat-markers:0";                   // XEP-0333
inline constexpr const char* kCorrect = "urn:xmpp:message-correct:0";                // XEP-0308
inline constexpr const char* kRetract = "urn:xmpp:message-retract:1";                // XEP-0424
inline constexpr const char* kRetract0 = "urn:xmpp:message-retract:0";  // XEP-0424 < 0.4
inline constexpr const char* kFasten = "urn:xmpp:fasten:0";      // XEP-0422 (wraps retract:0)
inline constexpr const char* kFallback = "urn:xmpp:fallback:0";  // XEP-0428
inline constexpr const char* kHints = "urn:xmpp:hints";          // XEP-0334
inline constexpr const char* kSid = "urn:xmpp:sid:0";            // XEP-0359
inline constexpr const char* kDelay = "urn:xmpp:delay";          // XEP-0203
inline constexpr const char* kLegacyDelay = "jabber:x:delay";    // XEP-0091 (obsolete)
inline constexpr const char* kEme = "urn:xmpp:eme:0";            // XEP-0380
inline constexpr const char* kOmemoLegacy = "eu.siacs.conversations.axolotl";  // XEP-0384 0.3
inline constexpr const char* kOmemo1 = "urn:xmpp:omemo:1";                     // XEP-0384 0.4–0.7
inline constexpr const char* kOmemo2 = "urn:xmpp:omemo:2";                     // XEP-0384 ≥ 0.8
inline constexpr const char* kOx = "urn:xmpp:openpgp:0";                       // XEP-0373/0374
inline constexpr const char* kOtr = "urn:xmpp:otr:0";            // XEP-0364 (EME name)
inline constexpr const char* kLegacyPgp = "jabber:x:encrypted";  // XEP-0027 (obsolete)
inline constexpr const char* kMucUser = "http://jabber.org/protocol/muc#user";  // XEP-0045
inline constexpr const char* kConference = "jabber:x:conference";               // XEP-0249
inline constexpr const char* kJmi = "urn:xmpp:jingle-message:0";                // XEP-0353
inline constexpr const char* kJmi1 = "urn:xmpp:jingle-message:1";
inline constexpr const char* kForward = "urn:xmpp:forward:0";                  // XEP-0297
inline constexpr const char* kAddress = "http://jabber.org/protocol/address";  // XEP-0033
inline constexpr const char* kNick = "http://jabber.org/protocol/nick";        // XEP-0172
}  // namespace s2::ns
