// JIDs (RFC 7622): parsing, normalisation and comparison.
//
// Every address the proxy routes by, stores as a key (ARCHITECTURE.md §5: the
// `accounts` db is keyed by bare JID, `by_peer` by peer bare JID) or compares
// (§4: stanza-id `by` = the account) goes through parse_jid() first, so two
// spellings of one address ("Alice@Example.COM." and "alice@example.com")
// become one key.
//
// PRECIS is approximated, not implemented (no Unicode tables are linked in):
//  * localpart (RFC 7622 §3.3, UsernameCaseMapped): ASCII letters are
//    lower-cased; non-ASCII code points are kept as they are (no Unicode case
//    mapping, no NFC). Rejected: the characters RFC 7622 §3.3.1 forbids
//    (" & ' / : < > @), spaces (U+0020 and the Unicode space separators),
//    control characters (C0, DEL, C1).
//  * domainpart (§3.2): ASCII lower-cased, one trailing dot stripped, every
//    label 1..63 bytes of letters, digits, '-' (not first or last) and '_'
//    (Prosody/ejabberd accept it: UTS-46 without STD3 rules), or non-ASCII
//    code points other than spaces/controls (U-labels are not checked against
//    IDNA2008 and not converted to A-labels). IP literals: a dotted-quad
//    IPv4 address (a domain whose last label is all digits must be one, RFC
//    3696 §2) or "[IPv6]" (RFC 3986 IP-literal, checked with inet_pton, kept
//    as written apart from lower-casing).
//  * resourcepart (§3.4, OpaqueString): kept byte for byte (case-sensitive,
//    may contain '/', '@', spaces); control characters rejected.
// Each part must be 1..1023 bytes after normalisation (§3.1) and the whole
// input valid UTF-8 (no overlong forms, no surrogates). Two clients that send
// the same non-ASCII localpart in different Unicode case therefore reach
// different accounts; that is the price of having no Unicode tables, and it
// errs on the side of "different" (never merges two accounts).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace s2 {

inline constexpr size_t kMaxJidPartBytes = 1023;  // RFC 7622 §3.1

struct Jid {
  std::string local;     // may be empty (domain JIDs)
  std::string domain;    // never empty in a parsed Jid
  std::string resource;  // empty for bare JIDs

  // "local@domain" or "domain".
  std::string bare() const;
  // bare() + "/resource" when there is a resource.
  std::string full() const;
  bool is_bare() const { return resource.empty(); }
  Jid to_bare() const { return Jid{local, domain, {}}; }

  // Parts are normalised, so member-wise equality is JID equality.
  bool operator==(const Jid&) const = default;
};

// Parses and normalises `s`; nullopt when RFC 7622 (as approximated above)
// forbids it. Never throws on any input.
std::optional<Jid> parse_jid(std::string_view s);

// Builds a Jid from separate parts, normalising and checking each one as
// parse_jid does. `local` and `resource` may be empty (absent).
std::optional<Jid> make_jid(std::string_view local, std::string_view domain,
                            std::string_view resource = {});

// Single-part preparation, for parts that arrive separately (SASL authcid,
// Bind2 <tag>, configuration). nullopt when invalid or empty.
std::optional<std::string> prep_localpart(std::string_view s);
std::optional<std::string> prep_domainpart(std::string_view s);
std::optional<std::string> prep_resourcepart(std::string_view s);

// Normalised full form of `s` (parse_jid(s)->full()), or nullopt.
std::optional<std::string> normalize_jid(std::string_view s);
// Normalised bare form of `s`, or nullopt.
std::optional<std::string> bare_jid(std::string_view s);

// True when both have the same bare JID (resources ignored).
bool jid_equal_bare(const Jid& a, const Jid& b);
// Same for strings; false when either does not parse.
bool jid_equal_bare(std::string_view a, std::string_view b);

// Strict UTF-8 check (RFC 3629): no overlong forms, no surrogates, <= U+10FFFF.
bool is_valid_utf8(std::string_view s);

}  // namespace s2
