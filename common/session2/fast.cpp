// XEP-0484 elements (see fast.h).
#include "common/session2/fast.h"

#include "common/session2/codec.h"
#include "common/session2/detail.h"

namespace s2::session2 {

using detail::err;

namespace {
constexpr std::string_view kMalformed = "malformed-request";
// RFC 4422 §3.1 caps mechanism names at 20 characters.
constexpr size_t kMaxMechanismBytes = 20;
}  // namespace

Stanza build_fast_feature(const std::vector<std::string>& mechanisms, bool tls_0rtt) {
  Stanza fast = Stanza::element("fast", kNsFast);
  if (tls_0rtt) fast.set_attr("tls-0rtt", "true");
  for (const auto& m : mechanisms) fast.add_child(detail::text_element("mechanism", m));
  return fast;
}

Result<FastRequestToken> parse_fast_request_token(const Stanza& el) {
  if (!detail::is_element(el, "request-token", kNsFast)) {
    return err(kMalformed, "not a FAST <request-token/>");
  }
  auto mech = el.attr("mechanism");
  if (!mech || mech->empty()) return err(kMalformed, "FAST <request-token/> without mechanism");
  if (mech->size() > kMaxMechanismBytes) {
    return err(kMalformed, "FAST <request-token/> mechanism name too long");
  }
  return FastRequestToken{std::move(*mech)};
}

Result<FastAuth> parse_fast(const Stanza& el) {
  if (!detail::is_element(el, "fast", kNsFast)) return err(kMalformed, "not a FAST <fast/>");
  FastAuth out;
  if (auto count = el.attr("count")) {
    out.count = parse_uint64(*count);
    if (!out.count) return err(kMalformed, "FAST count is not a non-negative integer");
  }
  if (auto inv = el.attr("invalidate")) {
    auto b = parse_xs_boolean(*inv);
    if (!b) return err(kMalformed, "FAST invalidate is not a boolean");
    out.invalidate = *b;
  }
  return out;
}

Stanza build_fast_token(std::string_view token, int64_t expiry_unix_seconds) {
  Stanza el = Stanza::element("token", kNsFast);
  el.set_attr("token", token);
  el.set_attr("expiry", xep0082_datetime(expiry_unix_seconds));
  return el;
}

}  // namespace s2::session2
