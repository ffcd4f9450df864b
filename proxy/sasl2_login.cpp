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
#include "common/crypto/ht.h"
#include "common/jid/jid.h"
#include "common/session2/bind2.h"
#include "common/session2/fast.h"
#include "common/session2/sm.h"
#include "common/store/archive_id.h"
#include "common/util/clock.h"
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
  f.mechanisms = offered_mechanisms();
  // FAST (XEP-0484) is offered always: a client without a token asks for one.
  f.fast_mechanisms = {"HT-SHA-256-NONE"};
  f.bind2 = true;
  f.bind2_inline = {std::string(ns::kCarbons), std::string(ns::kCsi), std::string(ns::kSm)};
  f.sm = true;
  return f;
}

void ClientSession::sasl2_failure(const std::string& condition, const std::string& text) {
  m_sasl2(condition).inc();
  scram_.reset();
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
  if (name == "response" && state_ == State::WaitAuth && scram_ && sasl2_) {
    auto data = session2::parse_response(s);
    std::string cond = "malformed-request", text = "bad <response>";
    if (!data) text = data.error().text;
    if (!data || !finish_scram(*data, &cond, &text)) auth_failure(cond, text);
    return;
  }
  if (name != "authenticate") {
    stream_error("policy-violation", "unexpected SASL2 element <" + name + "/>");
    return;
  }
  if (state_ != State::WaitAuth || scram_) {
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
  sasl2_ = std::move(req.value());
  sasl2_extra_.clear();
  const std::string mech = sasl2_->mechanism;
  std::string initial = sasl2_->initial_response.value_or("");
  sasl2_->initial_response.reset();
  std::string cond, text;
  bool ok = false;
  if (mech == "PLAIN") {
    ok = sasl2_ && !initial.empty() && start_plain_login(initial, &cond, &text);
    if (initial.empty()) cond = "malformed-request", text = "PLAIN needs an <initial-response>";
  } else if (mech == crypto::kHtSha256None) {
    ok = start_fast(initial, &cond, &text);
  } else {
    std::string challenge;
    ok = start_scram(mech, initial, &challenge, &cond, &text);
    if (ok) conn_->send(session2::build_challenge(challenge));
  }
  crypto::secure_wipe(initial);
  if (!ok) auth_failure(cond, text);
}

// XEP-0484: the initial response is authcid NUL HMAC(token, "Initiator");
// tokens are bound to the account and the user-agent id.
bool ClientSession::start_fast(const std::string& initial, std::string* condition,
                               std::string* text) {
  crypto::SaslError err;
  auto ht = crypto::parse_ht_initial_response(initial, &err);
  if (!ht) {
    *condition = "malformed-request";
    *text = err.text.empty() ? "not an HT initial response" : err.text;
    return false;
  }
  if (!sasl2_->user_agent) {
    *condition = "malformed-request";
    *text = "FAST needs a <user-agent id>";
    return false;
  }
  auto account = account_for(ht->authcid);
  if (!account) {
    *condition = "not-authorized";
    *text = "invalid token";
    return false;
  }
  if (throttled(*account, text)) {
    *condition = "temporary-auth-failure";
    return false;
  }
  account_ = *account;
  note_login_start(ctx_, this, crypto::kHtSha256None);
  std::optional<uint64_t> count;
  if (sasl2_->fast) count = sasl2_->fast->count;
  switch (ctx_.fast->verify(account_, sasl2_->user_agent->id, ht->hmac, count, unix_ms())) {
    case FastTokens::Verdict::Ok:
      break;
    case FastTokens::Verdict::Expired:
      *condition = "credentials-expired";
      *text = "the token has expired";
      return false;
    case FastTokens::Verdict::Replayed:
      *condition = "not-authorized";
      *text = "replayed token use (count not increasing)";
      return false;
    case FastTokens::Verdict::Invalid:
      *condition = "not-authorized";
      *text = "invalid token";
      return false;
  }
  success_data_ = crypto::ht_responder_hmac(ctx_.fast->last_token());
  if (sasl2_->fast && sasl2_->fast->invalidate)
    ctx_.fast->invalidate(account_, sasl2_->user_agent->id);
  return login_with_vault(condition, text);
}

// <success> may carry a new FAST token: it is issued (and committed) first.
void ClientSession::send_sasl2_success(session2::Success ok, bool then_features) {
  ok.additional_data = success_data_.empty() ? std::nullopt : std::optional(success_data_);
  success_data_.clear();
  auto send = [this, then_features](session2::Success ok) {
    std::string out = session2::build_success(ok).to_string();
    m_sasl2("success").inc();
    if (then_features) out += "<stream:features>" + post_auth_features() + "</stream:features>";
    out += held_;  // what the device received meanwhile, in order, after <success>
    held_.clear();
    hold_writes_ = false;
    conn_->send(out);
  };
  const auto& req = *sasl2_;
  if (!req.request_token || !req.user_agent) {
    send(std::move(ok));
    return;
  }
  ctx_.fast->issue(
      account_, req.user_agent->id, unix_ms(),
      [this, alive = std::weak_ptr<bool>(alive_), send,
       ok = std::move(ok)](std::optional<FastTokens::Issued> t) mutable {
        if (alive.expired() || state_ == State::Closing) return;
        if (t) ok.extra.push_back(session2::build_fast_token(t->token, t->expiry_ms / 1000));
        send(std::move(ok));
      });
}

// Inline resumption (XEP-0198 in SASL2). True when the device was resumed
// and <success> sent; otherwise <failed/> is queued for <success> and the
// <bind> of the same <authenticate> goes on. Called before the upstream login
// when the client was verified locally (FAST, SCRAM): a hibernating device
// still has its upstream session, so no new one is needed.
bool ClientSession::sasl2_resume() {
  auto resume = std::move(sasl2_->resume);
  sasl2_->resume.reset();
  std::vector<Stanza> resend;
  Stanza answer;
  if (!try_resume(*resume, &resend, &answer)) {
    sasl2_extra_.push_back(answer);
    return false;
  }
  authenticated_ = true;
  auth_timer_.stop();
  record_auth_success();
  session2::Success ok;
  ok.authorization_identifier = full_jid_;
  ok.additional_data = success_data_.empty() ? std::nullopt : std::optional(success_data_);
  success_data_.clear();
  ok.extra.push_back(answer);
  // One write: <success> and the retransmitted stanzas travel together, so
  // a client that acts on <resumed> cannot see half of them (xmpp.js).
  std::string out = session2::build_success(ok).to_string();
  for (auto& r : resend) out += r.to_string();
  conn_->send(out);
  m_sasl2("resumed").inc();
  S2_LOG(LogLevel::Info, "client.resumed",
         {{"session", id_}, {"jid", full_jid_}, {"resent", resend.size()}});
  sasl2_.reset();
  return true;  // XEP-0198: no stream features after a successful resume
}

// Same (tag, user-agent id) ⇒ same resource, across restarts; the id itself never appears in
// the resource (XEP-0386 §3). None without a Bind2 request or a user-agent id (then a random one).
std::optional<std::string> ClientSession::sasl2_bind_resource() const {
  if (!sasl2_ || !sasl2_->bind || !sasl2_->user_agent) return std::nullopt;
  const std::string secret = ctx_.resource_secret + "\n" + account_;
  return session2::derive_resource(sasl2_->bind->tag.value_or(""), sasl2_->user_agent->id, secret);
}

void ClientSession::continue_sasl2() {
  auto& req = *sasl2_;
  if (req.resume && sasl2_resume()) return;
  if (!req.bind) {
    session2::Success ok;
    ok.authorization_identifier = account_;
    ok.extra = std::move(sasl2_extra_);
    state_ = State::WaitBind;
    send_sasl2_success(std::move(ok), true);
    sasl2_.reset();
    return;
  }
  const std::string resource =
      sasl2_bind_resource().value_or(session2::random_resource(req.bind->tag.value_or("")));
  state_ = State::Binding;
  device_->bind(resource);
}

void ClientSession::finish_sasl2_bound(const std::string& full_jid) {
  const auto& req = *sasl2_;
  state_ = State::Bound;
  hold_writes_ = true;  // released by send_sasl2_success
  device_->set_profile(policy::Profile::Session2);
  session2::Bound bound;
  if (req.bind->sm_enable) bound.sm = device_->enable_sm(*req.bind->sm_enable);
  // XEP-0386 §4: the archive's ends, so the client knows where to sync from.
  if (auto acct = ctx_.store->find_account(account_); acct.ok() && acct.value()) {
    if (auto b = ctx_.store->bounds(acct.value()->account); b.ok()) {
      session2::MamMetadata md;
      if (b->last_id != 0) {
        md.start = session2::ArchiveRef{store::render_archive_id(b->first_id), b->first_ms / 1000};
        md.end = session2::ArchiveRef{store::render_archive_id(b->last_id), b->last_ms / 1000};
      }
      bound.mam = md;
    }
  }
  if (req.bind->carbons) device_->enable_carbons_inline();
  if (req.bind->csi) {
    // Served by the proxy (Device's CsiQueue), like the top-level element.
    auto csi = Stanza::element(
        *req.bind->csi == session2::CsiState::Inactive ? "inactive" : "active", ns::kCsi);
    device_->csi_from_client(csi);
  }
  session2::Success ok;
  ok.authorization_identifier = full_jid;
  ok.extra = std::move(sasl2_extra_);
  ok.extra.push_back(session2::build_bound(bound));
  S2_LOG(LogLevel::Info, "client.bound",
         {{"session", id_},
          {"jid", full_jid},
          {"via", "bind2"},
          {"sm", req.bind->sm_enable ? "inline" : "no"}});
  send_sasl2_success(std::move(ok), true);
  sasl2_.reset();
}

}  // namespace s2
