// dedup_key() / should_strip_stanza_id(): see dedup.h.
#include "policies/dedup.h"

#include <array>

namespace s2::policy {
namespace {

constexpr char kSep = '\x1f';

char fold(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string folded(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = fold(c);
  return out;
}

std::string hex64(std::uint64_t v) {
  static constexpr std::array<char, 16> kDigits{'0', '1', '2', '3', '4', '5', '6', '7',
                                                '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kDigits[v & 0xf];
    v >>= 4;
  }
  return out;
}

}  // namespace

std::string_view bare_of(std::string_view jid) {
  const auto slash = jid.find('/');
  return slash == std::string_view::npos ? jid : jid.substr(0, slash);
}

bool jid_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (fold(a[i]) != fold(b[i])) return false;
  }
  return true;
}

std::uint64_t fnv1a64(std::string_view data) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : data) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

DedupKey dedup_key(const DedupInput& in, std::string_view account_bare, bool trust_upstream_ids) {
  if (trust_upstream_ids) {
    for (const auto& sid : in.stanza_ids) {
      if (!sid.id.empty() && jid_equal(sid.by, account_bare)) {
        return {DedupSource::UpstreamStanzaId, "sid:" + std::string(sid.id)};
      }
    }
  }
  if (!in.origin_id.empty()) {
    std::string key = "oid:" + folded(bare_of(in.from));
    key += kSep;
    key += in.origin_id;
    return {DedupSource::OriginId, std::move(key)};
  }
  std::string key = "fp:";
  for (const std::string_view field : {in.from, in.to, in.type, in.id}) {
    key += field;
    key += kSep;
  }
  key += hex64(fnv1a64(in.content));
  return {DedupSource::Fingerprint, std::move(key)};
}

std::string resend_key(std::string_view to, std::string_view type, std::string_view id,
                       std::string_view origin_id, std::string_view content) {
  std::string in;
  for (const std::string_view field : {to, type, id, origin_id}) {
    in += field;
    in += kSep;
  }
  in += content;
  return hex64(fnv1a64(in));
}

bool should_strip_stanza_id(std::string_view by, std::string_view account_bare,
                            std::string_view domain, std::string_view proxy) {
  if (by.empty()) return true;
  const std::string_view claimed = bare_of(by);  // a resource does not make a claim legitimate
  if (jid_equal(claimed, account_bare) || jid_equal(claimed, domain)) return true;
  return !proxy.empty() && jid_equal(claimed, bare_of(proxy));
}

}  // namespace s2::policy
