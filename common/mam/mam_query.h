// XEP-0313 MAM query, server role: a device's <query xmlns='urn:xmpp:mam:2'/> to the
// proxy (§4), with its XEP-0004 form (§4.1) and XEP-0059 RSM set (§4.2), and the form
// that answers form discovery (§5.1.1).
//
// Accepted form fields: FORM_TYPE (must be urn:xmpp:mam:2 when present), with, start,
// end, after-id, before-id (urn:xmpp:mam:2#extended) and ids (several <value/>s).
// Unknown fields are refused (§4.1: the server MUST return a bad-request error), as are
// duplicate fields, a second <value/> in a single-valued field and a form of a type
// other than 'submit'. Single values are trimmed of ASCII whitespace; a field with no
// <value/> or an empty one counts as absent. Unknown children of <query/> and of <set/>
// are ignored.
//
// Errors carry RFC 6120 §8.3.3 stanza conditions for the iq error: "bad-request" for
// malformed or contradictory requests, "policy-violation" for more ids than
// kMaxQueryIds. RSM <index/> is parsed and returned; the caller answers
// feature-not-implemented since the proxy does not page by index.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/session2/result.h"
#include "common/xml/stanza.h"

namespace s2::mam {

inline constexpr std::string_view kNsMam = "urn:xmpp:mam:2";
inline constexpr std::string_view kNsMamExtended = "urn:xmpp:mam:2#extended";
inline constexpr std::string_view kNsRsm = "http://jabber.org/protocol/rsm";
inline constexpr std::string_view kNsData = "jabber:x:data";

inline constexpr size_t kMaxRsmMax = 1000000;  // largest accepted <max/>
inline constexpr size_t kMaxQueryIds = 1000;   // values of the 'ids' field

// A parse error names the stanza error condition to answer with (RFC 6120
// stanza error element name, e.g. "bad-request") and a text for the peer and
// the log: the same Error/Result the session2 parsers use.
using MamParseError = session2::Error;
template <typename T>
using Result = session2::Result<T>;

struct MamRequest {
  std::string queryid;  // may be empty
  std::string with;     // as given (caller normalises), empty = none
  std::optional<int64_t> start_ms, end_ms;
  std::optional<std::string> after_id, before_id;  // extended form fields 'after-id'/'before-id'
  std::vector<std::string> ids;                    // form field 'ids' (multiple <value>)
  // RSM
  std::optional<size_t> max;              // <max>
  std::optional<std::string> rsm_after;   // <after>X</after>
  std::optional<std::string> rsm_before;  // <before>X</before>; empty string = <before/>
  std::optional<size_t>
      rsm_index;           // <index> (not supported: caller answers feature-not-implemented)
  bool flip_page = false;  // <flip-page/>
};

// `query` is the <query xmlns='urn:xmpp:mam:2'> element (child of an iq type=set).
// Besides the field rules above: start/end must be XEP-0082 datetimes (start > end is
// allowed and yields an empty result); <max/> is 0..kMaxRsmMax; <after/> and <index/>
// must not be empty; after-id together with RSM <after/>, or before-id together with a
// non-empty RSM <before/>, is bad-request; ids values must not be empty.
Result<MamRequest> parse_mam_query(const Stanza& query);

// <query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='form'> with FORM_TYPE
// (hidden) and the fields with, start, end, after-id, before-id, ids (text-multi): the
// result payload of a form discovery iq get.
Stanza build_mam_form_fields();

}  // namespace s2::mam
