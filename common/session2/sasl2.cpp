// XEP-0388 elements (see sasl2.h).
#include "common/session2/sasl2.h"

#include <algorithm>
#include <iterator>

#include "common/session2/codec.h"
#include "common/session2/detail.h"

namespace s2::session2 {

using detail::err;
using detail::ns_of;

namespace {

constexpr std::string_view kMalformed = "malformed-request";
constexpr std::string_view kInvalidMechanism = "invalid-mechanism";

constexpr std::string_view kSaslConditions[] = {
    "aborted",
    "account-disabled",
    "credentials-expired",
    "encryption-required",
    "incorrect-encoding",
    "invalid-authzid",
    "invalid-mechanism",
    "malformed-request",
    "mechanism-too-weak",
    "not-authorized",
    "temporary-auth-failure",
};

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

Result<std::string> limited_text(const Stanza& el, std::string_view what) {
  std::string t = el.text_content();
  if (t.size() > kMaxUserAgentTextBytes) {
    return err(kMalformed, "<user-agent/> " + std::string(what) + " too long");
  }
  return t;
}

Result<UserAgent> parse_user_agent(const Stanza& el) {
  UserAgent ua;
  auto id = el.attr("id");
  if (!id || id->empty()) return err(kMalformed, "<user-agent/> without id");
  if (id->size() > kMaxUserAgentIdBytes) return err(kMalformed, "<user-agent/> id too long");
  ua.id = std::move(*id);
  for (const Stanza& c : el.children()) {
    if (ns_of(c, kNsSasl2) != kNsSasl2) continue;
    const std::string name = c.name();
    std::optional<std::string>* slot = name == "software" ? &ua.software
                                       : name == "device" ? &ua.device
                                                          : nullptr;
    if (!slot) continue;
    if (*slot) return err(kMalformed, "duplicate <" + name + "/> in <user-agent/>");
    auto t = limited_text(c, name);
    if (!t) return t.error();
    *slot = std::move(*t);
  }
  return ua;
}

// The SM and FAST parsers name conditions of their own; inside <authenticate/> every
// syntax error is a SASL malformed-request.
Error as_malformed(const Error& e, std::string_view where) {
  return err(kMalformed, std::string(where) + ": " + e.text);
}

template <typename T>
bool set_once(std::optional<T>* slot, Result<T> r, std::string_view what, Error* error) {
  if (*slot) {
    *error = err(kMalformed, "duplicate " + std::string(what) + " in <authenticate/>");
    return false;
  }
  if (!r) {
    *error = as_malformed(r.error(), what);
    return false;
  }
  *slot = std::move(*r);
  return true;
}

// Children of <authenticate/>, each at most once. Returns false with *error set.
bool parse_children(const Stanza& el, Authenticate* a, Error* error) {
  for (const Stanza& c : el.children()) {
    const std::string ns = ns_of(c, kNsSasl2);
    const std::string name = c.name();
    bool ok = true;
    if (ns == kNsSasl2 && name == "initial-response") {
      auto raw = base64_decode(c.text_content());
      if (!raw) {
        *error = err(kMalformed, "<initial-response/> is not valid base64");
        return false;
      }
      ok = set_once(&a->initial_response, Result<std::string>(std::move(*raw)),
                    "<initial-response/>", error);
    } else if (ns == kNsSasl2 && name == "user-agent") {
      if (a->user_agent) {
        *error = err(kMalformed, "duplicate <user-agent/> in <authenticate/>");
        return false;
      }
      auto ua = parse_user_agent(c);
      if (!ua) {
        *error = ua.error();
        return false;
      }
      a->user_agent = std::move(*ua);
    } else if (ns == kNsBind2 && name == "bind") {
      ok = set_once(&a->bind, parse_bind(c), "Bind2 <bind/>", error);
    } else if (ns == kNsSm && name == "resume") {
      ok = set_once(&a->resume, parse_sm_resume(c), "SM <resume/>", error);
    } else if (ns == kNsFast && name == "request-token") {
      ok = set_once(&a->request_token, parse_fast_request_token(c), "FAST <request-token/>", error);
    } else if (ns == kNsFast && name == "fast") {
      ok = set_once(&a->fast, parse_fast(c), "FAST <fast/>", error);
    }
    if (!ok) return false;
  }
  return true;
}

// Checks against what this stream offered (XEP-0388 §2.3, XEP-0484 §3.2).
std::optional<Error> check_offer(const Authenticate& a, const AuthenticationFeature& f) {
  const bool is_fast_mech = contains(f.fast_mechanisms, a.mechanism);
  if (!contains(f.mechanisms, a.mechanism) && !is_fast_mech) {
    return err(kInvalidMechanism, "mechanism " + a.mechanism + " is not offered");
  }
  if (a.upgrade) return err(kInvalidMechanism, "no upgrade is offered");
  if (a.request_token && !contains(f.fast_mechanisms, a.request_token->mechanism)) {
    return err(kMalformed, "FAST mechanism " + a.request_token->mechanism + " is not offered");
  }
  if (a.fast && !is_fast_mech) {
    return err(kMalformed, "FAST <fast/> with a mechanism that is not a FAST mechanism");
  }
  return std::nullopt;
}

}  // namespace

bool is_sasl_condition(std::string_view c) {
  return std::find(std::begin(kSaslConditions), std::end(kSaslConditions), c) !=
         std::end(kSaslConditions);
}

bool is_valid_mechanism_name(std::string_view name) {
  if (name.empty() || name.size() > 20) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

Stanza build_authentication_feature(const AuthenticationFeature& f) {
  Stanza auth = Stanza::element("authentication", kNsSasl2);
  for (const auto& m : f.mechanisms) auth.add_child(detail::text_element("mechanism", m));
  if (f.bind2 || !f.fast_mechanisms.empty() || f.sm) {
    Stanza inl = Stanza::element("inline");
    if (f.bind2) inl.add_child(build_bind_feature(f.bind2_inline));
    if (!f.fast_mechanisms.empty()) inl.add_child(build_fast_feature(f.fast_mechanisms));
    if (f.sm) inl.add_child(Stanza::element("sm", kNsSm));
    auth.add_child(inl);
  }
  return auth;
}

Result<Authenticate> parse_authenticate(const Stanza& el, const AuthenticationFeature* offered) {
  if (!detail::is_element(el, "authenticate", kNsSasl2)) {
    return err(kMalformed, "not a SASL2 <authenticate/>");
  }
  Authenticate a;
  auto mech = el.attr("mechanism");
  if (!mech || mech->empty()) return err(kMalformed, "<authenticate/> without mechanism");
  if (!is_valid_mechanism_name(*mech)) return err(kInvalidMechanism, "invalid mechanism name");
  a.mechanism = std::move(*mech);
  a.upgrade = el.attr("upgrade");

  Error error;
  if (!parse_children(el, &a, &error)) return error;
  // XEP-0484 §4.1: FAST needs the <user-agent id/> the tokens are bound to.
  if ((a.fast || a.request_token) && !a.user_agent) {
    return err(kMalformed, "FAST requires a <user-agent/> with an id");
  }
  if (offered) {
    if (auto e = check_offer(a, *offered)) return *e;
  }
  return a;
}

Result<std::string> parse_response(const Stanza& el) {
  if (!detail::is_element(el, "response", kNsSasl2)) {
    return err(kMalformed, "not a SASL2 <response/>");
  }
  auto raw = base64_decode(el.text_content());
  if (!raw) return err(kMalformed, "<response/> is not valid base64");
  return std::move(*raw);
}

Result<Abort> parse_abort(const Stanza& el) {
  if (!detail::is_element(el, "abort", kNsSasl2)) return err(kMalformed, "not a SASL2 <abort/>");
  Abort a;
  for (const Stanza& c : el.children()) {
    if (ns_of(c, kNsSasl2) == kNsSasl2 && c.name() == "text") {
      a.text = c.text_content();
      break;
    }
  }
  return a;
}

Sasl2Element classify_sasl2(const Stanza& el) {
  if (!el || el.xmlns() != kNsSasl2) return Sasl2Element::Other;
  const std::string name = el.name();
  if (name == "authenticate") return Sasl2Element::Authenticate;
  if (name == "response") return Sasl2Element::Response;
  if (name == "abort") return Sasl2Element::Abort;
  return Sasl2Element::Other;
}

Stanza build_challenge(std::string_view raw) {
  Stanza el = Stanza::element("challenge", kNsSasl2);
  if (!raw.empty()) el.add_text(base64_encode(raw));
  return el;
}

Stanza build_success(const Success& s) {
  Stanza el = Stanza::element("success", kNsSasl2);
  if (s.additional_data) {
    el.add_child(detail::text_element("additional-data", base64_encode(*s.additional_data)));
  }
  el.add_child(detail::text_element("authorization-identifier", s.authorization_identifier));
  for (const Stanza& x : s.extra) el.add_child(x);
  return el;
}

Stanza build_failure(std::string_view condition, std::string_view text) {
  Stanza el = Stanza::element("failure", kNsSasl2);
  el.add_child(Stanza::element(
      is_sasl_condition(condition) ? condition : std::string_view("not-authorized"), kNsSasl));
  if (!text.empty()) el.add_child(detail::text_element("text", text));
  return el;
}

}  // namespace s2::session2
