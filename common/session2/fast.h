// FAST (XEP-0484, urn:xmpp:fast:0): the inline feature, the client's requests and the
// token the server issues.
//
// §3.1: the server lists its token mechanisms in <fast/> inside the SASL2 <inline/>
// (tls-0rtt only when 0-RTT data is accepted; s2proxy never does, PROTOCOLS.md §1).
// §3.2: <request-token mechanism/> asks for a token after a successful authentication;
// the mechanism must be one the server listed. §3.4/§3.6: <fast count invalidate/> marks an
// authentication made with a token; count is a positive integer that must grow when
// used against replay, invalidate='true' revokes the token on success (xmpp.js sends a
// bare <fast/>). §3.3: the token comes back in <success/> as <token token expiry/>,
// expiry in the XEP-0082 DateTime profile. Errors are SASL conditions
// ("malformed-request"), since these elements only occur inside <authenticate/>.
// Token secrets are opaque here: generating, storing and verifying them is the
// crypto module's job.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/session2/result.h"
#include "common/xml/stanza.h"

namespace s2::session2 {

inline constexpr std::string_view kNsFast = "urn:xmpp:fast:0";

struct FastRequestToken {
  std::string mechanism;
};
struct FastAuth {
  std::optional<uint64_t> count;
  bool invalidate = false;
};

// <fast xmlns='urn:xmpp:fast:0'><mechanism>…</mechanism>…</fast>
Stanza build_fast_feature(const std::vector<std::string>& mechanisms, bool tls_0rtt = false);

// Errors ("malformed-request"): wrong element, missing mechanism, bad count/invalidate.
Result<FastRequestToken> parse_fast_request_token(const Stanza& el);
Result<FastAuth> parse_fast(const Stanza& el);

// <token xmlns='urn:xmpp:fast:0' token='…' expiry='YYYY-MM-DDThh:mm:ssZ'/>
Stanza build_fast_token(std::string_view token, int64_t expiry_unix_seconds);

}  // namespace s2::session2
