// Authentication shared by SASL1 (RFC 6120 §6) and SASL2 (XEP-0388) on a
// ClientSession: which mechanisms to offer, PLAIN verified upstream, SCRAM
// verified locally against the credential vault, throttling, and the
// upstream login with the vault's secret (ARCHITECTURE.md §6).
//
// Mechanisms: PLAIN always (over TLS); SCRAM-SHA-256 and SCRAM-SHA-1 only
// when the stream header's `from` names an account the vault knows — a
// SCRAM exchange never yields the password the proxy needs upstream, so an
// unknown account must log in with PLAIN once.
//
// Logging and lockout: every failed attempt is one `client.auth_failed` line
// with the peer address (what fail2ban matches, deploy/README.md); only
// attempts that tested a credential count toward the login backoff. A SCRAM
// attempt for an account the vault does not know yet fails before any proof
// is checked (a client tries SCRAM first, then falls back to PLAIN), so it is
// logged as `client.scram_unknown_account` and not counted.
#include <chrono>

#include "common/crypto/sasl_plain.h"
#include "common/jid/jid.h"
#include "common/util/clock.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "proxy/client_session.h"
#include "proxy/metrics_catalogue.h"
#include "proxy/proxy_context.h"
#include "proxy/xmpp_ns.h"

namespace s2 {
namespace {
std::string peer_ip(const std::string& peer) { return policy::throttle_key_for_peer(peer); }
Metric& m_throttled() {
  static Metric& m = counter("s2proxy_login_throttled_total",
                             "logins refused by backoff or a full per-address login queue");
  return m;
}
Metric& m_queued() {
  static Metric& m = counter("s2proxy_login_queued_total",
                             "logins that waited for a slot of their source address");
  return m;
}
}  // namespace

Metric& login_queue_gauge() {
  static Metric& m =
      gauge("s2proxy_login_queue", "logins waiting for a slot of their source address");
  return m;
}

std::vector<std::string> ClientSession::offered_mechanisms() const {
  if (vault_known_) return {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"};
  return {"PLAIN"};
}

std::optional<std::string> ClientSession::account_for(const std::string& authcid) const {
  std::string account = authcid;
  if (account.find('@') == std::string::npos) account += "@" + ctx_.config.domain;
  auto jid = parse_jid(account);
  if (!jid || jid->local.empty() || !jid->resource.empty() || jid->domain != ctx_.config.domain)
    return std::nullopt;
  return jid->bare();
}

bool ClientSession::throttled(const std::string& account, std::string* text) const {
  // Attempts still in flight count too (failures are only recorded when the
  // upstream answers, so parallel guesses would otherwise all get through):
  // gate_login() let at most --login-concurrency-per-address run and queued
  // the rest; only a full queue gets here.
  if (login_refused_) {
    m_throttled().inc();
    *text = "too many logins in progress from your address; try again shortly";
    return true;
  }
  const int64_t now = unix_ms();
  int64_t wait = std::max(ctx_.throttle_ip.wait_ms(peer_ip(peer_), now),
                          ctx_.throttle_account.wait_ms(account, now));
  if (wait <= 0) return false;
  m_throttled().inc();
  *text = "too many failed logins; try again in " + std::to_string((wait + 999) / 1000) + " s";
  return true;
}

// Called by each mechanism's start.
void note_login_start(ProxyContext& ctx, const ClientSession* s, const std::string& mechanism) {
  ctx.login_starts[s] = {mechanism, std::chrono::steady_clock::now()};
}

// A SASL <auth> (RFC 6120) or <authenticate> (XEP-0388) starts a login: it
// takes a slot of its source address, or waits for one in arrival order
// (true: the stanza was kept, nothing else to do now). A full queue lets the
// stanza through with login_refused_ set, so the mechanism answers
// temporary-auth-failure in its own protocol.
bool ClientSession::gate_login(Stanza& s) {
  if (queued_auth_) {
    // Clients wait for the SASL answer; whatever comes meanwhile keeps its
    // order behind the waiting login (bounded).
    if (queued_after_.size() >= 16) {
      stream_error("policy-violation", "too many stanzas while waiting to authenticate");
      return true;
    }
    queued_after_.push_back(std::move(s));
    return true;
  }
  if (login_in_flight_ || state_ != State::WaitAuth || !secure_ || scram_) return false;
  const std::string xmlns = s.xmlns(), name = s.name();
  if (!((xmlns == ns::kSasl && name == "auth") || (xmlns == ns::kSasl2 && name == "authenticate")))
    return false;
  login_key_ = peer_ip(peer_);
  switch (ctx_.login_gate.arrive(login_key_, seq_)) {
    case policy::LoginGate::Verdict::Go:
      login_in_flight_ = true;
      return false;
    case policy::LoginGate::Verdict::Refused:
      login_refused_ = true;
      return false;
    case policy::LoginGate::Verdict::Queued:
      break;
  }
  login_queued_ = true;
  ctx_.login_waiters[seq_] = this;
  m_queued().inc();
  login_queue_gauge().inc();
  S2_LOG(LogLevel::Debug, "client.login_queued",
         {{"session", id_}, {"peer", peer_}, {"waiting", ctx_.login_gate.queued(login_key_)}});
  queued_auth_ = std::move(s);
  conn_->set_reading(false);  // nothing more is needed from this client until its turn
  return true;
}

// end_login_attempt() of another session handed its slot to `ticket`.
void ClientSession::grant_login_slot(ProxyContext& ctx, uint64_t ticket) {
  auto it = ctx.login_waiters.find(ticket);
  if (it == ctx.login_waiters.end()) return;
  ClientSession* s = it->second;
  ctx.login_waiters.erase(it);
  s->login_queued_ = false;
  s->login_in_flight_ = true;  // the slot is this session's from now on
  login_queue_gauge().dec();
  // Not on the releasing session's stack (it may be in its destructor).
  defer(ctx.loop, [s, alive = std::weak_ptr<bool>(s->alive_)] {
    if (!alive.expired()) s->resume_queued_login();
  });
}

void ClientSession::resume_queued_login() {
  if (!queued_auth_ || state_ == State::Closing || !conn_) {
    end_login_attempt();
    return;
  }
  Stanza auth = std::move(*queued_auth_);
  queued_auth_.reset();
  std::vector<Stanza> after = std::move(queued_after_);
  queued_after_.clear();
  conn_->set_reading(true);
  on_conn_stanza(std::move(auth));
  for (auto& st : after) {
    if (state_ == State::Closing || !conn_) break;
    on_conn_stanza(std::move(st));
  }
}

void ClientSession::end_login_attempt() {
  ctx_.login_starts.erase(this);
  if (!login_in_flight_) return;
  login_in_flight_ = false;
  if (auto next = ctx_.login_gate.release(login_key_)) grant_login_slot(ctx_, *next);
}

void ClientSession::record_auth_success() {
  if (auto it = ctx_.login_starts.find(this); it != ctx_.login_starts.end()) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - it->second.at;
    login_duration(it->second.mechanism).observe(took.count());
  }
  end_login_attempt();
  leave_preauth();
  ctx_.throttle_account.record_success(account_);
  // A success from an address clears it too; guessing other accounts from it
  // still meets their own per-account backoff.
  ctx_.throttle_ip.record_success(peer_ip(peer_));
}

void ClientSession::record_auth_failure() {
  end_login_attempt();
  const int64_t now = unix_ms();
  ctx_.throttle_ip.record_failure(peer_ip(peer_), now);
  if (!account_.empty()) ctx_.throttle_account.record_failure(account_, now);
  ctx_.throttle_ip.prune(now);
  ctx_.throttle_account.prune(now);
}

void ClientSession::auth_failure(const std::string& condition, const std::string& text) {
  std::string mechanism = sasl2_ ? sasl2_->mechanism : "";
  if (auto it = ctx_.login_starts.find(this); it != ctx_.login_starts.end())
    mechanism = it->second.mechanism;
  const bool no_credential_checked = scram_ && scram_->awaiting_verifier();
  if (no_credential_checked && condition == "not-authorized") {
    S2_LOG(LogLevel::Info, "client.scram_unknown_account",
           {{"session", id_},
            {"peer", peer_},
            {"account", account_},
            {"mechanism", mechanism},
            {"sasl", sasl2_ ? "2" : "1"}});
    end_login_attempt();
  } else {
    S2_LOG(LogLevel::Info, "client.auth_failed",
           {{"session", id_},
            {"peer", peer_},
            {"account", account_},
            {"mechanism", mechanism},
            {"sasl", sasl2_ ? "2" : "1"},
            {"condition", condition}});
    if (condition == "not-authorized" || condition == "credentials-expired") {
      record_auth_failure();
    } else {
      end_login_attempt();
    }
  }
  scram_.reset();
  pending_password_.wipe();
  if (sasl2_) {
    sasl2_failure(condition, text);
  } else {
    sasl1_failure(condition, text);
  }
}

bool ClientSession::start_plain_login(const std::string& message, std::string* condition,
                                      std::string* text) {
  crypto::SaslError err;
  auto creds = crypto::parse_sasl_plain(message, &err);
  if (!creds) {
    *condition = "malformed-request";
    *text = "not a SASL PLAIN message";
    return false;
  }
  auto account = account_for(creds->authcid);
  if (!account) {
    *condition = "not-authorized";
    *text = "unknown account";
    return false;
  }
  // Never pass an authzid upstream: the proxy logs in as the account itself.
  if (!creds->authzid.empty() && creds->authzid != *account) {
    *condition = "invalid-authzid";
    *text = "the authorization identity must be your own account";
    return false;
  }
  if (throttled(*account, text)) {
    *condition = "temporary-auth-failure";
    return false;
  }
  account_ = *account;
  state_ = State::Authenticating;
  via_vault_ = false;
  note_login_start(ctx_, this, "PLAIN");
  pending_password_ = crypto::SecretString(creds->password.str());
  device_ = Device::create(ctx_, this, id_, std::move(prewarm_));
  UpstreamSecret secret;
  secret.kind = UpstreamSecret::Kind::Password;
  secret.secret = creds->password.str();
  device_->login(account_, secret);
  return true;
}

bool ClientSession::start_scram(const std::string& mechanism, const std::string& client_first,
                                std::string* challenge, std::string* condition, std::string* text) {
  auto hash = crypto::scram_hash_for_mechanism(mechanism);
  if (!hash || !vault_known_) {
    *condition = "invalid-mechanism";
    *text = "offered: " + std::string(vault_known_ ? "SCRAM-SHA-256, SCRAM-SHA-1, " : "") + "PLAIN";
    return false;
  }
  scram_ = std::make_unique<crypto::ScramServer>(*hash);
  note_login_start(ctx_, this, mechanism);
  if (auto e = scram_->handle_client_first(client_first)) {
    *condition = e->condition;
    *text = e->text;
    return false;
  }
  auto account = account_for(scram_->username());
  if (account && throttled(*account, text)) {
    *condition = "temporary-auth-failure";
    return false;
  }
  if (!scram_->authzid().empty() && (!account || scram_->authzid() != *account)) {
    *condition = "invalid-authzid";
    *text = "the authorization identity must be your own account";
    return false;
  }
  std::optional<VaultEntry> entry;
  if (account) entry = ctx_.vault->get(*account);
  if (!entry) {
    // SCRAM cannot yield the password the proxy needs upstream: an account
    // the vault does not know must log in with PLAIN once.
    *condition = "not-authorized";
    *text = "no stored credentials for this account yet; log in with PLAIN once";
    account_ = account.value_or("");
    return false;
  }
  const crypto::ScramVerifier& v = *hash == crypto::HashAlg::Sha256 ? entry->sha256 : entry->sha1;
  account_ = account.value_or("");
  auto first = scram_->server_first(v);
  if (!first) {
    *condition = "temporary-auth-failure";
    *text = "SCRAM failed";
    return false;
  }
  *challenge = *first;
  return true;
}

bool ClientSession::finish_scram(const std::string& client_final, std::string* condition,
                                 std::string* text) {
  if (!scram_) {
    *condition = "malformed-request";
    *text = "no SCRAM exchange in progress";
    return false;
  }
  if (!account_.empty() && throttled(account_, text)) {  // it may have changed meanwhile
    *condition = "temporary-auth-failure";
    scram_.reset();
    return false;
  }
  if (auto e = scram_->handle_client_final(client_final)) {
    *condition = e->condition;
    *text = e->condition == "not-authorized" ? "wrong credentials" : e->text;
    scram_.reset();
    return false;
  }
  success_data_ = scram_->server_final();
  scram_.reset();
  return login_with_vault(condition, text);
}

// The client proved who it is without a password (SCRAM, FAST): log in
// upstream with the vault's secret.
bool ClientSession::login_with_vault(std::string* condition, std::string* text) {
  if (sasl2_ && sasl2_->resume && sasl2_resume()) return true;
  auto entry = ctx_.vault->get(account_);
  if (!entry) {
    *condition = "not-authorized";
    *text = "no stored credentials; log in with your password (PLAIN) once";
    return false;
  }
  state_ = State::Authenticating;
  via_vault_ = true;
  device_ = Device::create(ctx_, this, id_, std::move(prewarm_));
  // A returning session2 device whose link the anchor kept (docs/architecture.md §26): verified
  // here, so no upstream login at all; it takes the link back at bind.
  if (auto resource = sasl2_bind_resource();
      resource && device_->login_kept(account_, *resource, entry->upstream))
    return true;
  device_->login(account_, entry->upstream);
  return true;
}

}  // namespace s2
