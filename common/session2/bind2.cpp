// XEP-0386 elements and resource derivation (see bind2.h).
#include "common/session2/bind2.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>

#include "common/session2/codec.h"
#include "common/session2/detail.h"

namespace s2::session2 {

using detail::err;
using detail::ns_of;

namespace {

constexpr std::string_view kMalformed = "malformed-request";
constexpr size_t kMinIdBytesToScrub = 8;

// Next UTF-8 code point starting at s[*i]; advances *i. Returns -1 for an invalid or
// overlong sequence (one byte is skipped then).
int32_t next_code_point(std::string_view s, size_t* i) {
  const auto b0 = static_cast<uint8_t>(s[*i]);
  size_t len = 0;
  int32_t cp = 0;
  int32_t min = 0;
  if (b0 < 0x80) {
    ++*i;
    return b0;
  } else if ((b0 & 0xe0) == 0xc0) {
    len = 2, cp = b0 & 0x1f, min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3, cp = b0 & 0x0f, min = 0x800;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    ++*i;
    return -1;
  }
  if (*i + len > s.size()) {
    ++*i;
    return -1;
  }
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<uint8_t>(s[*i + k]);
    if ((b & 0xc0) != 0x80) {
      ++*i;
      return -1;
    }
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    ++*i;
    return -1;
  }
  *i += len;
  return cp;
}

std::string base32_40bits(const unsigned char* bytes) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  uint64_t v = 0;
  for (int k = 0; k < 5; ++k) v = (v << 8) | bytes[k];
  std::string out(8, 'a');
  for (int k = 7; k >= 0; --k) {
    out[static_cast<size_t>(k)] = kAlphabet[v & 31];
    v >>= 5;
  }
  return out;
}

// Drops control characters (C0, DEL, C1), '/' and invalid UTF-8; trims ASCII spaces.
std::string strip_tag(std::string_view tag) {
  std::string out;
  out.reserve(tag.size());
  for (size_t i = 0; i < tag.size();) {
    const size_t start = i;
    const int32_t cp = next_code_point(tag, &i);
    if (cp < 0) continue;
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == '/') continue;
    out.append(tag.substr(start, i - start));
  }
  const size_t first = out.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  out.erase(0, first);
  out.erase(out.find_last_not_of(' ') + 1);
  return out;
}

// Cuts a stripped tag to kMaxResourceTagBytes on a code point boundary; default if empty.
std::string cut_tag(std::string tag) {
  if (tag.size() > kMaxResourceTagBytes) {
    size_t cut = kMaxResourceTagBytes;
    while (cut > 0 && (static_cast<uint8_t>(tag[cut]) & 0xc0) == 0x80) --cut;
    tag.resize(cut);
    const size_t last = tag.find_last_not_of(' ');
    tag.resize(last == std::string::npos ? 0 : last + 1);
  }
  return tag.empty() ? std::string(kDefaultResourceTag) : tag;
}

// The id is looked for before cutting, so a cut cannot leave part of it behind.
std::string tag_for_resource(std::string_view tag, std::string_view user_agent_id) {
  std::string clean = strip_tag(tag);
  if (user_agent_id.size() >= kMinIdBytesToScrub &&
      clean.find(user_agent_id) != std::string::npos) {
    return std::string(kDefaultResourceTag);
  }
  return cut_tag(std::move(clean));
}

Stanza archive_ref(std::string_view name, const ArchiveRef& r) {
  Stanza el = Stanza::element(name);
  el.set_attr("id", r.id);
  el.set_attr("timestamp", xep0082_datetime(r.unix_seconds));
  return el;
}

}  // namespace

Stanza build_bind_feature(const std::vector<std::string>& inline_features) {
  Stanza bind = Stanza::element("bind", kNsBind2);
  if (!inline_features.empty()) {
    Stanza inl = Stanza::element("inline");
    for (const auto& var : inline_features) {
      Stanza f = Stanza::element("feature");
      f.set_attr("var", var);
      inl.add_child(f);
    }
    bind.add_child(inl);
  }
  return bind;
}

Result<BindRequest> parse_bind(const Stanza& el) {
  if (!detail::is_element(el, "bind", kNsBind2)) return err(kMalformed, "not a Bind2 <bind/>");
  BindRequest out;
  for (const Stanza& c : el.children()) {
    const std::string ns = ns_of(c, kNsBind2);
    const std::string name = c.name();
    if (ns == kNsBind2 && name == "tag") {
      if (out.tag) return err(kMalformed, "duplicate Bind2 <tag/>");
      std::string tag = c.text_content();
      if (tag.size() > kMaxTagBytes) return err(kMalformed, "Bind2 <tag/> too long");
      out.tag = std::move(tag);
    } else if (ns == kNsCarbons && name == "enable") {
      if (out.carbons) return err(kMalformed, "duplicate Carbons <enable/> in <bind/>");
      out.carbons = true;
    } else if (ns == kNsCsi && (name == "active" || name == "inactive")) {
      if (out.csi) return err(kMalformed, "more than one CSI state in <bind/>");
      out.csi = name == "active" ? CsiState::Active : CsiState::Inactive;
    } else if (ns == kNsSm && name == "enable") {
      if (out.sm_enable) return err(kMalformed, "duplicate SM <enable/> in <bind/>");
      auto e = parse_sm_enable(c);
      if (!e) return err(kMalformed, "SM <enable/> in <bind/>: " + e.error().text);
      out.sm_enable = *e;
    }
    // XEP-0386 §3.2: other inline requests are features we did not offer; ignore them.
  }
  return out;
}

std::string sanitize_resource_tag(std::string_view tag) { return cut_tag(strip_tag(tag)); }

std::string derive_resource(std::string_view tag, std::string_view user_agent_id,
                            std::string_view secret) {
  // Domain separation: the secret may serve other derivations too.
  std::string msg = "s2proxy bind2 resource\n";
  msg += user_agent_id;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac,
           &mac_len) == nullptr ||
      mac_len < 5) {
    throw std::runtime_error("HMAC-SHA-256 failed");  // OpenSSL broken: not a peer error
  }
  return tag_for_resource(tag, user_agent_id) + "." + base32_40bits(mac);
}

std::string random_resource(std::string_view tag) {
  unsigned char rnd[5];
  if (RAND_bytes(rnd, sizeof rnd) != 1) throw std::runtime_error("RAND_bytes failed");
  return sanitize_resource_tag(tag) + "." + base32_40bits(rnd);
}

Stanza build_bound(const Bound& b) {
  Stanza bound = Stanza::element("bound", kNsBind2);
  if (b.sm) bound.add_child(b.sm);
  if (b.mam) {
    Stanza meta = Stanza::element("metadata", kNsMam);
    if (b.mam->start) meta.add_child(archive_ref("start", *b.mam->start));
    if (b.mam->end) meta.add_child(archive_ref("end", *b.mam->end));
    bound.add_child(meta);
  }
  for (const Stanza& x : b.extra) bound.add_child(x);
  return bound;
}

}  // namespace s2::session2
