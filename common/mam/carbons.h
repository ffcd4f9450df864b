// XEP-0280 Message Carbons wrapping (urn:xmpp:carbons:2) and the XEP-0297 forwarding
// envelope (urn:xmpp:forward:0, with an optional XEP-0203 delay) it shares with MAM.
//
// Inner stanzas: a forwarded <message/> must be in jabber:client or jabber:server
// (written out, since its parent is in another namespace). Parsers hand it back as a
// detached deep copy without the xmlns attribute, i.e. in the tree convention of a
// top-level stanza (common/xml/stanza.h), ready to be routed or wrapped again.
// Builders take such a stanza and write it with xmlns='jabber:client'.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/xml/stanza.h"

namespace s2::mam {

inline constexpr std::string_view kNsCarbons = "urn:xmpp:carbons:2";
inline constexpr std::string_view kNsForward = "urn:xmpp:forward:0";
inline constexpr std::string_view kNsDelay = "urn:xmpp:delay";
inline constexpr std::string_view kNsClient = "jabber:client";

// <forwarded xmlns='urn:xmpp:forward:0'>[<delay xmlns='urn:xmpp:delay' stamp/>]
// <message xmlns='jabber:client' …/></forwarded>; the message is deep-copied.
Stanza build_forwarded(const Stanza& inner, std::optional<int64_t> stamp_ms = std::nullopt);

struct Forwarded {
  std::optional<int64_t> stamp_ms;  // <delay stamp/>, when present and a valid datetime
  Stanza message;                   // detached copy, no xmlns attribute
};
// `fwd` must be <forwarded xmlns='urn:xmpp:forward:0'> holding exactly one <message/>
// in jabber:client or jabber:server; nullopt otherwise.
std::optional<Forwarded> parse_forwarded(const Stanza& fwd);

enum class CarbonKind { Received, Sent };

struct Carbon {
  CarbonKind kind;
  Stanza inner;  // detached copy, no xmlns attribute
};

// A <message/> with one <received/> or <sent/> child in urn:xmpp:carbons:2 that holds
// a valid <forwarded/> (parse_forwarded). nullopt for anything else, including a
// message carrying several such children (both kinds, or one kind twice). The caller
// checks that `from` is the account's bare JID (XEP-0280 §11).
std::optional<Carbon> unwrap_carbon(const Stanza& message);

// <message from=bare to=full type=inner's type (default 'chat')><sent|received
// xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message
// xmlns='jabber:client' …/></forwarded></…></message>
Stanza wrap_carbon(CarbonKind kind, std::string_view from_bare, std::string_view to_full,
                   const Stanza& inner);

}  // namespace s2::mam
