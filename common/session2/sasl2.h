// SASL2 (XEP-0388, urn:xmpp:sasl:2): the <authentication/> stream feature, the
// client's <authenticate/>, <response/> and <abort/>, and the server's <challenge/>,
// <success/> and <failure/>.
//
// Data encoding (§2.2): the API deals in raw bytes; this module does the base64. An
// <initial-response/> that is empty or "=" is an empty response; an absent one is
// std::nullopt. <authenticate/> (§2.3) gathers everything one round trip needs
// (PROTOCOLS.md §1): the mechanism, the initial response, the <user-agent/>, and the
// inline requests of Bind2 (XEP-0386 §3.2), SM resumption (XEP-0198 §5 via XEP-0388
// inline features) and FAST (XEP-0484 §3.2/§3.4), parsed here into one struct so the
// session can act on them in the order the XEPs prescribe (resume first, then bind).
// Unknown children (<supported/>, other extensions) are ignored; a known child that
// appears twice, or is malformed, fails the whole request.
//
// Errors carry SASL conditions (RFC 6120 §6.5) for a SASL2 <failure/> (§2.6.2):
// "malformed-request" for bad syntax, "invalid-mechanism" for a mechanism name that is
// not RFC 4422 §3.1 syntax or, when the offered feature is passed in, was not offered
// (§2.3: "the server MUST fail the authentication"). A <user-agent/> must carry an id:
// the proxy keys the device, its resource and its FAST tokens on it (XEP-0386 §3.2.1,
// XEP-0484 §4.1), and FAST requests without a <user-agent/> are malformed.
// <continue/>/<next/> tasks (§2.6.3) are not supported: the proxy never asks for one
// and xmpp.js cannot answer one.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/session2/bind2.h"
#include "common/session2/fast.h"
#include "common/session2/result.h"
#include "common/session2/sm.h"
#include "common/xml/stanza.h"

namespace s2::session2 {

inline constexpr std::string_view kNsSasl2 = "urn:xmpp:sasl:2";
inline constexpr std::string_view kNsSasl = "urn:ietf:params:xml:ns:xmpp-sasl";  // conditions

inline constexpr size_t kMaxUserAgentIdBytes = 256;
inline constexpr size_t kMaxUserAgentTextBytes = 1024;  // <software/>, <device/>

// RFC 6120 §6.5 condition names (not-authorized, aborted, malformed-request, …).
bool is_sasl_condition(std::string_view condition);
// RFC 4422 §3.1: 1–20 characters of A–Z, 0–9, '-', '_'.
bool is_valid_mechanism_name(std::string_view name);

// What the server offers (PROTOCOLS.md §1). Kept by the session and passed back to
// parse_authenticate() to validate the client's choices.
struct AuthenticationFeature {
  std::vector<std::string> mechanisms;       // e.g. SCRAM-SHA-256, SCRAM-SHA-1, PLAIN
  bool bind2 = true;                         // inline <bind xmlns='urn:xmpp:bind:0'/>
  std::vector<std::string> bind2_inline;     // its <inline><feature var/>… list
  std::vector<std::string> fast_mechanisms;  // inline <fast/> when non-empty
  bool sm = true;                            // inline <sm xmlns='urn:xmpp:sm:3'/>
};

// <authentication xmlns='urn:xmpp:sasl:2'><mechanism/>…<inline>[bind][fast][sm]
// </inline></authentication> (no <inline/> when nothing is inline).
Stanza build_authentication_feature(const AuthenticationFeature& f);

struct UserAgent {
  std::string id;  // never empty
  std::optional<std::string> software;
  std::optional<std::string> device;
};

struct Authenticate {
  std::string mechanism;
  std::optional<std::string> upgrade;           // §2.3 upgrade attribute, as sent
  std::optional<std::string> initial_response;  // raw bytes (base64-decoded)
  std::optional<UserAgent> user_agent;
  std::optional<BindRequest> bind;                // XEP-0386
  std::optional<SmResume> resume;                 // XEP-0198 inline resumption
  std::optional<FastRequestToken> request_token;  // XEP-0484 §3.2
  std::optional<FastAuth> fast;                   // XEP-0484 §3.4: authenticating with a token
};

// `offered`: the feature sent on this stream; when given, the mechanism must be one of
// its mechanisms or FAST mechanisms, an upgrade attribute is refused (none is ever
// offered), a <request-token/> must name one of its FAST mechanisms and <fast/> must
// come with a FAST mechanism.
Result<Authenticate> parse_authenticate(const Stanza& el,
                                        const AuthenticationFeature* offered = nullptr);

// <response/> data (raw bytes). Unknown attributes are tolerated (xmpp.js adds
// 'mechanism'). Error "malformed-request" for another element or bad base64.
Result<std::string> parse_response(const Stanza& el);

struct Abort {
  std::optional<std::string> text;
};
Result<Abort> parse_abort(const Stanza& el);

enum class Sasl2Element { Authenticate, Response, Abort, Other };
Sasl2Element classify_sasl2(const Stanza& el);

// <challenge xmlns='urn:xmpp:sasl:2'>base64</challenge>
Stanza build_challenge(std::string_view raw);

struct Success {
  std::optional<std::string> additional_data;  // raw bytes; <additional-data/> omitted if absent
  std::string authorization_identifier;        // bare or (after Bind2) full JID
  std::vector<Stanza> extra;  // <bound/>, <resumed/>/<failed/>, <token/>, … in this order
};
Stanza build_success(const Success& s);

// <failure xmlns='urn:xmpp:sasl:2'><condition xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>
// [<text>…</text>]</failure>; an unknown condition becomes "not-authorized".
Stanza build_failure(std::string_view condition, std::string_view text = {});

}  // namespace s2::session2
