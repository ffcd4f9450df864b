// Deduplication keys and stanza-id hygiene (ARCHITECTURE.md §4, PROTOCOLS.md §6/§7, XEP-0359).
//
// The same message reaches the hub several times — live, as a carbon, from MAM catch-up, from
// offline storage, as the echo of what a device sent — and must be archived once. dedup_key()
// picks the strongest identity the stanza has:
//   1. the upstream archive's <stanza-id>, but only one whose `by` is the account's bare JID and
//      only when the upstream is known to assign them (it advertises urn:xmpp:sid:0 / MAM): a
//      server that does not archive does not strip a stanza-id a remote sender forged, and a
//      forged id could make a real message look like a duplicate;
//   2. the sender's <origin-id>, scoped by the sender's bare JID — ids are chosen by clients, so
//      scoping stops one peer from colliding (by accident or on purpose) with another's messages;
//   3. otherwise a short-lived fingerprint of (from, to, type, id, content hash). A bare `id` alone
//      never identifies a message: it may be "1".
// Key strings are tagged ("sid:", "oid:", "fp:") and their fields separated by U+001F, which XML
// cannot carry, so no two inputs share a key by concatenation. The content hash is FNV-1a 64: not
// cryptographic, but every other field is in the key verbatim, so a collision can only merge two
// stanzas of the same sender with the same id, type and recipient.
//
// should_strip_stanza_id(): XEP-0359 makes the entity named in `by` the only one that may assign
// such an id, so a client-supplied <stanza-id> claiming the account, its domain or the proxy is
// spoofing and is removed before anything trusts it (PROTOCOLS.md §6); one without `by` is
// malformed (XEP-0359 requires it) and removed too.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace s2::policy {

struct StanzaIdRef {
  std::string_view id;
  std::string_view by;
};

struct DedupInput {
  std::span<const StanzaIdRef> stanza_ids;  // every <stanza-id xmlns='urn:xmpp:sid:0'> child
  std::string_view origin_id;               // <origin-id id=…>, empty if none
  std::string_view from;  // full JID as routed (for a device's stanza: the device's full JID)
  std::string_view to;
  std::string_view type;  // the type attribute as sent
  std::string_view id;    // the id attribute
  // The body text; for a body-less stanza, a canonical serialisation of its content children (a
  // receipt's meaning is in <received id=…>, which must reach the fingerprint).
  std::string_view content;
};

enum class DedupSource : std::uint8_t { UpstreamStanzaId, OriginId, Fingerprint };

struct DedupKey {
  DedupSource source;
  std::string key;  // tagged: "sid:…", "oid:…", "fp:…"
};

// `trust_upstream_ids`: the upstream assigns stanza-ids for the account (MAM enabled).
DedupKey dedup_key(const DedupInput& in, std::string_view account_bare, bool trust_upstream_ids);

// The identity of a message a device sent, as its client would send it again after a lost
// XEP-0198 ack (the same stanza, byte for byte in what matters: addressee, type, id, origin-id
// and content). Only ever compared among one device's own sends whose ack it may not have seen,
// never used to drop a message the device sent twice in one session (a reused `id` with the same
// text is a second message there). 16 hex digits.
std::string resend_key(std::string_view to, std::string_view type, std::string_view id,
                       std::string_view origin_id, std::string_view content);

bool should_strip_stanza_id(std::string_view by, std::string_view account_bare,
                            std::string_view domain, std::string_view proxy = {});

// JIDs arrive normalised from common/jid; these comparisons also fold ASCII case so that a
// non-normalised spoof ("ALICE@Example") cannot slip past the strip rule.
bool jid_equal(std::string_view a, std::string_view b);
std::string_view bare_of(std::string_view jid);

// FNV-1a 64-bit, exposed for tests and the hub's short-lived fingerprint table.
std::uint64_t fnv1a64(std::string_view data);

}  // namespace s2::policy
