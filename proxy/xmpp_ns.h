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
}  // namespace s2::ns
