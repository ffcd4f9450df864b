// SASL2 (XEP-0388) with inline Bind2 (XEP-0386) and inline Stream
// Management (XEP-0198 resumption and enable) on a ClientSession: one
// <authenticate> in, one <success> out — a usable session in one round trip
// after TLS.
//
// Order inside one <authenticate> (XEP-0198 inline resume, XEP-0386):
//   1. authenticate (PLAIN: verified by logging in upstream);
//   2. <resume/> if present: on success answer <resumed/> inside <success>,
//      ignore <bind>, send no features; on failure put <failed/> inside
//      <success> and go on;
//   3. <bind/> if present: bind upstream with a resource derived from the
//      tag and the user-agent id, then enable SM / Carbons / CSI inline;
//   4. <success> carries the full JID, and <stream:features> follow at once
//      (no stream restart after SASL2).
// The client waits for <success> until the upstream session is bound: the
// device is then fully usable and no stanza can be dropped between
// <success> and the upstream session (docs/architecture.md, "1-RTT").
#include "common/crypto/encoding.h"
#include "common/jid/jid.h"
#include "common/session2/bind2.h"
#include "common/session2/sm.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "proxy/client_session.h"
#include "proxy/proxy_context.h"
#include "proxy/xmpp_ns.h"

namespace s2 {
namespace {
Metric& m_sasl2(const std::string& result) {
  return counter("s2proxy_client_sasl2_total", "SASL2 outcomes", "result=\"" + result + "\"");
}
}  // namespace

session2::AuthenticationFeature ClientSession::sasl2_offer() const {
  session2::AuthenticationFeature f;
  f.mechanisms = {"PLAIN"};
  f.bind2 = true;
  f.bind2_inline = {std::string(ns::kCarbons), std::string(ns::kCsi), std::string(ns::kSm)};
  f.sm = true;
  return f;
}

void ClientSession::sasl2_failure(const std::string& condition, const std::string& text) {
  m_sasl2(condition).inc();
  conn_->send(session2::build_failure(condition, text));
  // XEP-0388 §2.5: after a failure the client may try again on this stream.
  sasl2_.reset();
  sasl2_extra_.clear();
  state_ = State::WaitAuth;
}

void ClientSession::handle_sasl2(const Stanza& s) {
  const std::string name = s.name();
  if (!secure_) {
    conn_->send(session2::build_failure("encryption-required", "use TLS before authenticating"));
    return;
  }
  if (name == "abort" && state_ == State::WaitAuth) {
    sasl2_failure("aborted", "authentication aborted by the client");
    return;
  }
  if (name != "authenticate") {
    stream_error("policy-violation", "unexpected SASL2 element <" + name + "/>");
    return;
  }
  if (state_ != State::WaitAuth) {
    // XEP-0388: <authenticate> after success (or during one) is a stream error.
    stream_error("policy-violation", "authentication is not allowed now");
    return;
  }
  const auto offer = sasl2_offer();
  auto req = session2::parse_authenticate(s, &offer);
  if (!req) {
    sasl2_failure(req.error().condition, req.error().text);
    return;
  }
  if (req->mechanism != "PLAIN") {
    sasl2_failure("invalid-mechanism", "offered: PLAIN");
    return;
  }
  if (!req->initial_response) {
    sasl2_failure("malformed-request", "PLAIN needs an <initial-response>");
    return;
  }
  sasl2_ = std::move(req.value());
  sasl2_extra_.clear();
  std::string cond, text;
  bool ok = start_plain_login(*sasl2_->initial_response, &cond, &text);
  crypto::secure_wipe(*sasl2_->initial_response);
  sasl2_->initial_response.reset();
  if (!ok) sasl2_failure(cond, text);
}

void ClientSession::continue_sasl2() {
  auto& req = *sasl2_;
  if (req.resume) {
    std::vector<Stanza> resend;
    Stanza answer;
    if (try_resume(*req.resume, &resend, &answer)) {
      session2::Success ok;
      ok.authorization_identifier = full_jid_;
      ok.extra.push_back(answer);
      conn_->send(session2::build_success(ok));
      m_sasl2("resumed").inc();
      for (auto& r : resend) conn_->send(r);
      sasl2_.reset();
      return;  // XEP-0198: no stream features after a successful resume
    }
    sasl2_extra_.push_back(answer);  // <failed/>, then go on with the bind
  }
  if (!req.bind) {
    session2::Success ok;
    ok.authorization_identifier = account_;
    ok.extra = std::move(sasl2_extra_);
    conn_->send(session2::build_success(ok));
    m_sasl2("success").inc();
    sasl2_.reset();
    state_ = State::WaitBind;
    conn_->send("<stream:features>" + post_auth_features() + "</stream:features>");
    return;
  }
  const std::string tag = req.bind->tag.value_or("");
  // Same (tag, user-agent id) ⇒ same resource, across restarts; the id
  // itself never appears in the resource (XEP-0386 §3).
  const std::string secret = ctx_.resource_secret + "\n" + account_;
  const std::string resource =
      req.user_agent ? session2::derive_resource(tag, req.user_agent->id, secret)
                     : session2::random_resource(tag);
  state_ = State::Binding;
  device_->bind(resource);
}

void ClientSession::finish_sasl2_bound(const std::string& full_jid) {
  auto req = std::move(*sasl2_);
  sasl2_.reset();
  state_ = State::Bound;
  session2::Bound bound;
  if (req.bind->sm_enable) bound.sm = device_->enable_sm(*req.bind->sm_enable);
  if (req.bind->carbons) device_->enable_carbons_inline();
  if (req.bind->csi) {
    auto csi = Stanza::element(*req.bind->csi == session2::CsiState::Inactive ? "inactive" : "active",
                               ns::kCsi);
    device_->csi_from_client(csi);
  }
  session2::Success ok;
  ok.authorization_identifier = full_jid;
  ok.extra = std::move(sasl2_extra_);
  ok.extra.push_back(session2::build_bound(bound));
  conn_->send(session2::build_success(ok));
  m_sasl2("success").inc();
  S2_LOG(LogLevel::Info, "client.bound",
         {{"session", id_}, {"jid", full_jid}, {"via", "bind2"},
          {"sm", req.bind->sm_enable ? "inline" : "no"}});
  conn_->send("<stream:features>" + post_auth_features() + "</stream:features>");
}

}  // namespace s2
