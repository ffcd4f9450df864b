// JID parsing; see jid.h for which rules are the server's and why.
//
// Split order follows RFC 7622 §3.1 exactly: the resourcepart is everything
// after the first '/', the localpart everything before the first '@' that
// precedes that '/'. So "a@b/c@d/e" is local "a", domain "b", resource "c@d/e".
// Each part is then prepared with libidn's stringprep profile for it
// (nodeprep, nameprep, resourceprep), as Prosody's util.encodings does, and
// the domain's result checked for host syntax.
#include "common/jid/jid.h"

#include <arpa/inet.h>
#include <stringprep.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace s2 {
namespace {

// Decodes the code point at s[i] (s is valid UTF-8) and advances i.
char32_t next_cp(std::string_view s, size_t& i) {
  auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    ++i;
    return b;
  }
  int n = b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : 1;
  char32_t cp = b & (0x3F >> n);
  for (int k = 0; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + 1 + k]) & 0x3F);
  i += n + 1;
  return cp;
}

bool is_control(char32_t c) { return c < 0x20 || (c >= 0x7F && c <= 0x9F); }

// Unicode general categories Zs, Zl, Zp.
bool is_space(char32_t c) {
  return c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum_lower(char c) { return (c >= 'a' && c <= 'z') || is_digit(c); }

// After lower-casing: 1..63 bytes, LDH + '_' or non-ASCII non-space code points.
bool valid_label(std::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  for (size_t i = 0; i < label.size();) {
    char32_t c = next_cp(label, i);
    if (c < 0x80) {
      auto a = static_cast<char>(c);
      if (!is_alnum_lower(a) && a != '-' && a != '_') return false;
    } else if (is_control(c) || is_space(c)) {
      return false;
    }
  }
  return true;
}

// Dotted quad, each octet 0..255 without leading zeros.
bool valid_ipv4(std::string_view s) {
  int octets = 0;
  size_t i = 0;
  while (true) {
    size_t start = i;
    unsigned v = 0;
    while (i < s.size() && is_digit(s[i]) && i - start < 3) v = v * 10 + (s[i++] - '0');
    size_t len = i - start;
    if (len == 0 || v > 255 || (len > 1 && s[start] == '0')) return false;
    if (++octets == 4) return i == s.size();
    if (i >= s.size() || s[i] != '.') return false;
    ++i;
  }
}

bool all_digits(std::string_view s) {
  for (char c : s)
    if (!is_digit(c)) return false;
  return !s.empty();
}

// One stringprep profile over `s`, with the checks and limits Prosody 0.12's
// util.encodings applies around the same call: input and output each at most
// 1023 bytes (its buffer is 1024 with the NUL), valid UTF-8, no NUL byte,
// unassigned code points allowed (the non-strict mode Prosody uses for JIDs).
// An empty result (e.g. only U+00AD, which maps to nothing) is rejected: a
// JID part is never empty (RFC 7622 §3.1).
std::optional<std::string> prep(std::string_view s, const Stringprep_profile* profile) {
  if (s.empty() || s.size() > kMaxJidPartBytes || !is_valid_utf8(s)) return std::nullopt;
  if (s.find('\0') != std::string_view::npos) return std::nullopt;
  std::array<char, kMaxJidPartBytes + 1> buf{};
  std::memcpy(buf.data(), s.data(), s.size());
  buf[s.size()] = '\0';
  if (stringprep(buf.data(), buf.size(), Stringprep_profile_flags{}, profile) != STRINGPREP_OK)
    return std::nullopt;
  size_t n = std::strlen(buf.data());
  if (n == 0) return std::nullopt;
  return std::string(buf.data(), n);
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    int n;
    char32_t min;
    if (b >= 0xC2 && b <= 0xDF) {
      n = 1, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 2, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 3, min = 0x10000;
    } else {
      return false;  // continuation byte, C0/C1 (overlong 2-byte), F5..FF
    }
    if (s.size() - i <= static_cast<size_t>(n)) return false;
    char32_t cp = b & (0x3F >> n);
    for (int k = 1; k <= n; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

std::optional<std::string> prep_localpart(std::string_view s) {
  // Nodeprep also prohibits the RFC 7622 §3.3.1 characters (" & ' / : < > @),
  // spaces and controls.
  return prep(s, stringprep_xmpp_nodeprep);
}

std::optional<std::string> prep_domainpart(std::string_view s) {
  // RFC 7622 §3.2 / Prosody's util.jid: one final dot is stripped first.
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  auto prepped = prep(s, stringprep_nameprep);
  if (!prepped) return std::nullopt;
  std::string_view out = *prepped;
  if (out.starts_with('[')) {  // RFC 3986 IP-literal, IPv6 only (no IPvFuture)
    if (out.size() < 4 || out.back() != ']') return std::nullopt;
    std::string inner(out.substr(1, out.size() - 2));
    in6_addr addr;
    if (inet_pton(AF_INET6, inner.c_str(), &addr) != 1) return std::nullopt;
    return prepped;
  }
  std::string_view rest = out;
  std::string_view last;
  while (true) {
    size_t dot = rest.find('.');
    last = rest.substr(0, dot);
    if (!valid_label(last)) return std::nullopt;
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  // RFC 3696 §2: a top-level label is never all-numeric, so such a domain
  // can only be an IPv4 address.
  if (all_digits(last) && !valid_ipv4(out)) return std::nullopt;
  return prepped;
}

std::optional<std::string> prep_resourcepart(std::string_view s) {
  return prep(s, stringprep_xmpp_resourceprep);
}

std::optional<Jid> make_jid(std::string_view local, std::string_view domain,
                            std::string_view resource) {
  Jid j;
  if (!local.empty()) {
    auto l = prep_localpart(local);
    if (!l) return std::nullopt;
    j.local = std::move(*l);
  }
  auto d = prep_domainpart(domain);
  if (!d) return std::nullopt;
  j.domain = std::move(*d);
  if (!resource.empty()) {
    auto r = prep_resourcepart(resource);
    if (!r) return std::nullopt;
    j.resource = std::move(*r);
  }
  return j;
}

std::optional<Jid> parse_jid(std::string_view s) {
  // Three parts of at most 1023 bytes, '@', '/' and one trailing dot: anything
  // longer is invalid whatever it contains; fail before scanning it.
  if (s.size() > 3 * kMaxJidPartBytes + 3) return std::nullopt;
  std::string_view head = s;
  std::string_view resource, local;
  if (size_t slash = s.find('/'); slash != std::string_view::npos) {
    resource = s.substr(slash + 1);
    head = s.substr(0, slash);
    if (resource.empty()) return std::nullopt;  // "a@b/" : empty resourcepart
  }
  if (size_t at = head.find('@'); at != std::string_view::npos) {
    local = head.substr(0, at);
    head = head.substr(at + 1);
    if (local.empty()) return std::nullopt;  // "@b" : empty localpart
  }
  return make_jid(local, head, resource);
}

std::string Jid::bare() const {
  if (local.empty()) return domain;
  std::string out;
  out.reserve(local.size() + 1 + domain.size());
  out.append(local).append(1, '@').append(domain);
  return out;
}

std::string Jid::full() const {
  std::string out = bare();
  if (!resource.empty()) out.append(1, '/').append(resource);
  return out;
}

std::optional<std::string> normalize_jid(std::string_view s) {
  auto j = parse_jid(s);
  if (!j) return std::nullopt;
  return j->full();
}

std::optional<std::string> bare_jid(std::string_view s) {
  auto j = parse_jid(s);
  if (!j) return std::nullopt;
  return j->bare();
}

bool jid_equal_bare(const Jid& a, const Jid& b) {
  return a.local == b.local && a.domain == b.domain;
}

bool jid_equal_bare(std::string_view a, std::string_view b) {
  auto ja = parse_jid(a), jb = parse_jid(b);
  return ja && jb && jid_equal_bare(*ja, *jb);
}

}  // namespace s2
