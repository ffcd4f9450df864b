// Bind 2 (XEP-0386, urn:xmpp:bind:0): the inline feature, the client's <bind/> request,
// the server-chosen resource and the <bound/> answer.
//
// §3.1: the feature sits in the SASL2 <inline/> and lists, in its own <inline/>, the
// features that may be enabled inline (Carbons, CSI, SM here). §3.2: <bind/> inside
// <authenticate/> carries an optional <tag/> and inline requests: <enable/> of Carbons
// (XEP-0280), <active/>/<inactive/> of CSI (XEP-0352) and <enable/> of SM (XEP-0198);
// other children are ignored. Errors are SASL conditions ("malformed-request"): a bad
// <bind/> fails the whole <authenticate/>.
//
// §3.2.1 resource identifiers: the server chooses the resource, keeps the client's tag
// as a prefix and SHOULD keep it stable per (tag, <user-agent id>), but MUST NOT
// expose the user-agent id. derive_resource() therefore returns
// "<sanitised tag>.<8 base32 chars of HMAC-SHA-256(secret, user-agent id)>": stable
// for a device, unlinkable to its id without the secret, and free of '/' (PROTOCOLS.md
// §1 "tag.suffix"). The XEP's own "tag/suffix" form is avoided because a '/' in the
// resource confuses clients that split full JIDs at the last slash.
//
// Privacy: the same user-agent id on two accounts gives the same suffix, which lets a
// contact of both accounts link them. Callers should pass a per-account secret, e.g.
// HMAC(server secret, bare JID), not the server secret itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/session2/result.h"
#include "common/session2/sm.h"
#include "common/xml/stanza.h"

namespace s2::session2 {

inline constexpr std::string_view kNsBind2 = "urn:xmpp:bind:0";
inline constexpr std::string_view kNsCarbons = "urn:xmpp:carbons:2";
inline constexpr std::string_view kNsCsi = "urn:xmpp:csi:0";
inline constexpr std::string_view kNsMam = "urn:xmpp:mam:2";

// A <tag/> longer than a whole resourcepart (RFC 7622 §3.4) is rejected outright;
// shorter ones are cut to kMaxResourceTagBytes when the resource is derived.
inline constexpr size_t kMaxTagBytes = 1023;
inline constexpr size_t kMaxResourceTagBytes = 64;
inline constexpr std::string_view kDefaultResourceTag = "s2";

enum class CsiState { Active, Inactive };

struct BindRequest {
  std::optional<std::string> tag;  // text of <tag/>, as sent
  bool carbons = false;            // <enable xmlns='urn:xmpp:carbons:2'/>
  std::optional<CsiState> csi;     // <active/> or <inactive/> in urn:xmpp:csi:0
  std::optional<SmEnable> sm_enable;
};

// <bind xmlns='urn:xmpp:bind:0'><inline><feature var='…'/>…</inline></bind>
// (no <inline/> when the list is empty).
Stanza build_bind_feature(const std::vector<std::string>& inline_features);

// Errors ("malformed-request"): wrong element, duplicate <tag/>, tag over kMaxTagBytes,
// duplicate inline requests, both <active/> and <inactive/>, a bad SM <enable/>.
Result<BindRequest> parse_bind(const Stanza& el);

// The tag as it goes into a resource: control characters (C0, DEL, C1) and '/'
// removed, invalid UTF-8 dropped, surrounding spaces trimmed, cut to
// kMaxResourceTagBytes on a character boundary; kDefaultResourceTag when nothing is
// left.
std::string sanitize_resource_tag(std::string_view tag);

// "<sanitised tag>.<suffix>", suffix = 8 base32 characters (40 bits) of
// HMAC-SHA-256(secret, user_agent_id). If the tag itself contains the user-agent id
// (ids of 8 bytes or more), the default tag is used instead, so the id never appears.
// Precondition: user_agent_id is non-empty (without one, use random_resource());
// secret is at least 16 random bytes.
std::string derive_resource(std::string_view tag, std::string_view user_agent_id,
                            std::string_view secret);
// "<sanitised tag>.<8 random base32 characters>" for clients without a user-agent id.
std::string random_resource(std::string_view tag);

struct ArchiveRef {  // one end of the archive, XEP-0313 <metadata/>
  std::string id;
  int64_t unix_seconds = 0;
};
struct MamMetadata {  // both empty: the archive is empty
  std::optional<ArchiveRef> start;
  std::optional<ArchiveRef> end;
};
struct Bound {
  Stanza sm;  // XEP-0198 <enabled/> or <failed/> (build with sm.h), omitted when empty
  std::optional<MamMetadata> mam;
  std::vector<Stanza> extra;  // any other inline answers, appended as given
};

// <bound xmlns='urn:xmpp:bind:0'>[<enabled|failed xmlns='urn:xmpp:sm:3'/>]
// [<metadata xmlns='urn:xmpp:mam:2'><start id timestamp/><end id timestamp/></metadata>]
// [extra…]</bound>
Stanza build_bound(const Bound& b);

}  // namespace s2::session2
