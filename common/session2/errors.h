// Stream errors (RFC 6120 §4.9) and stanza errors (RFC 6120 §8.3) as the proxy sends
// them on either side.
//
// A stream error is returned as serialised text because it is written once, right
// before </stream:stream>, on a stream whose header declared the "stream" prefix; the
// <text/> carries the streams namespace explicitly (§4.9.2: it is not inherited from
// the stream:error element, whose namespace is http://etherx.jabber.org/streams).
// An unknown condition becomes <undefined-condition/> rather than invalid XML
// semantics. A stanza error (§8.3.1) goes back to the sender: from/to swapped, same
// id, type='error', and <error type><condition/><text/></error> in the stanzas
// namespace. No error is generated for an error, nor for an <iq/> result (§8.3.1
// rule 2, §8.2.3): those builders return an empty Stanza.
#pragma once

#include <string>
#include <string_view>

#include "common/xml/stanza.h"

namespace s2::session2 {

inline constexpr std::string_view kNsStreams = "http://etherx.jabber.org/streams";
inline constexpr std::string_view kNsStreamErrors = "urn:ietf:params:xml:ns:xmpp-streams";
inline constexpr std::string_view kNsStanzaErrors = "urn:ietf:params:xml:ns:xmpp-stanzas";

// RFC 6120 §4.9.3 / §8.3.3 condition names.
bool is_stream_error_condition(std::string_view condition);
bool is_stanza_error_condition(std::string_view condition);
// "auth", "cancel", "continue", "modify", "wait" (§8.3.2).
bool is_stanza_error_type(std::string_view type);

// "<stream:error><condition xmlns='…xmpp-streams'/><text xmlns='…xmpp-streams'>text
// </text>[app]</stream:error>". `text` is omitted when empty, `app` (an
// application-specific condition such as XEP-0198's <handled-count-too-high/>) when
// null. The caller appends "</stream:stream>".
std::string build_stream_error(std::string_view condition, std::string_view text = {},
                               const Stanza& app = {});

// <see-other-host/> carries the new host (RFC 6120 §4.9.3.19: "host", "host:port" or
// "[IPv6]:port") as its content.
std::string build_see_other_host(std::string_view host, std::string_view text = {});

// The error reply to `original` (a message, presence or iq). `type` falls back to
// "cancel" and `condition` to "undefined-condition" when invalid. With
// `include_payload` the original's children are copied in front of <error/> (§8.3.1
// allows it; off by default to avoid echoing message bodies). Empty Stanza when no
// error may be sent (original is empty, of type error, or an iq result).
Stanza build_stanza_error(const Stanza& original, std::string_view type, std::string_view condition,
                          std::string_view text = {}, bool include_payload = false);

}  // namespace s2::session2
