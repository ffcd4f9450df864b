// JIDs (RFC 7622): parsing, normalisation and comparison.
//
// Every address the proxy routes by, stores as a key (ARCHITECTURE.md §5: the
// `accounts` db is keyed by bare JID, `by_peer` by peer bare JID) or compares
// (§4: stanza-id `by` = the account) goes through parse_jid() first, so two
// spellings of one address ("Alice@Example.COM." and "alice@example.com")
// become one key.
//
// Each part is prepared as the servers behind us prepare it: RFC 3920's
// stringprep profiles (RFC 6122 keeps them for XMPP), implemented by libidn,
// the same profiles Prosody 0.12 (util.encodings) and ejabberd 23
// (p1_stringprep) apply:
//  * localpart: Nodeprep (Unicode case folding, NFKC, the RFC 3454 prohibited
//    tables incl. spaces and controls, the bidi rule, and " & ' / : < > @).
//  * domainpart: one trailing dot stripped, then Nameprep; the result must
//    then be a host name (labels of 1..63 bytes: letters, digits, '-' not
//    first or last, '_', or non-ASCII code points other than spaces and
//    controls; a last label of digits only is an IPv4 dotted quad) or an
//    "[IPv6]" literal (inet_pton). That last check is ours: nameprep alone
//    accepts "a b" or "x:5222".
//  * resourcepart: Resourceprep (NFKC, no case folding, ASCII space allowed).
// Unassigned code points (Unicode 3.2) are allowed, as Prosody allows them.
// Each part must be 1..1023 bytes before and after preparation (Prosody's
// limits; a part that prepares to nothing is rejected) and the whole input
// valid UTF-8 (no overlong forms, no surrogates) without NUL bytes.
// tests/unit/jid/prosody_crosscheck.py runs the table in
// tests/unit/jid/prep_table.tsv and 20000 random strings through Prosody's
// own util.encodings: where both accept, the results are equal byte for
// byte, so two spellings of one account are one key here as on the server.
// Where they differ we are stricter (empty parts, non-host domains) or the
// input holds code points unassigned in Unicode 3.2 (Debian's ICU-built
// Prosody applies today's bidi classes to them, ejabberd rejects them): the
// server refuses such a JID itself, so no account is merged or split.
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

// Parses and normalises `s`; nullopt when the rules above forbid it. Never
// throws on any input.
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
