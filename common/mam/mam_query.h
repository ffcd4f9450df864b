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
#include <utility>
#include <variant>
#include <vector>

#include "common/xml/stanza.h"

namespace s2::mam {

inline constexpr std::string_view kNsMam = "urn:xmpp:mam:2";
inline constexpr std::string_view kNsMamExtended = "urn:xmpp:mam:2#extended";
inline constexpr std::string_view kNsRsm = "http://jabber.org/protocol/rsm";
inline constexpr std::string_view kNsData = "jabber:x:data";

inline constexpr size_t kMaxRsmMax = 1000000;  // largest accepted <max/>
inline constexpr size_t kMaxQueryIds = 1000;   // values of the 'ids' field

struct MamParseError {
  std::string condition;  // RFC 6120 stanza error element name, e.g. "bad-request"
  std::string text;       // human-readable, for the peer and the log
};

// Either a value or a MamParseError (std::expected is C++23; same shape as
// s2::session2::Result).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}              // NOLINT
  Result(MamParseError error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const MamParseError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, MamParseError> v_;
};

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
