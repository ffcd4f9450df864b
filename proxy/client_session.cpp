// See client_session.h.
#include "proxy/client_session.h"

#include <atomic>

#include "common/crypto/encoding.h"
#include "common/crypto/sasl_plain.h"
#include "common/jid/jid.h"
#include "common/session2/errors.h"
#include "common/session2/sm.h"
#include "common/util/clock.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "proxy/account_hub.h"
#include "proxy/cluster.h"
#include "proxy/metrics_catalogue.h"
#include "proxy/proxy_context.h"
#include "proxy/xmpp_ns.h"

namespace s2 {
namespace {
std::atomic<uint64_t> g_session_seq{1};

std::string random_id() { return crypto::hex_encode(crypto::random_bytes(9)); }

Metric& m_sessions() {
  static Metric& m = gauge("s2proxy_client_sessions", "client connections open");
  return m;
}
Metric& m_read_paused() {
  static Metric& m = counter("s2proxy_client_read_paused_total",
                             "times a client's reading paused for --client-read-rate");
  return m;
}
Metric& m_flood_closed() {
  static Metric& m = counter("s2proxy_client_flood_closed_total",
                             "client streams ended with policy-violation for going over "
                             "--client-stanza-rate");
  return m;
}
Metric& m_stream_errors(const std::string& cond) {
  return counter("s2proxy_client_stream_errors_total", "stream errors sent to clients",
                 "condition=\"" + cond + "\"");
}
Metric& m_auth(const std::string& result) {
  return counter("s2proxy_client_auth_total", "client SASL outcomes", "result=\"" + result + "\"");
}
Metric& m_stanzas(const char* dir) {
  return counter("s2proxy_stanzas_relayed_total", "stanzas relayed",
                 std::string("direction=\"") + dir + "\"");
}

bool is_stanza(const std::string& name) {
  return name == "message" || name == "presence" || name == "iq";
}

Metric& m_refused(const std::string& reason) {
  return counter("s2proxy_connections_refused_total", "client connections refused at accept",
                 "reason=\"" + reason + "\"");
}
Metric& m_unauthenticated() {
  static Metric& m =
      gauge("s2proxy_client_unauthenticated", "client connections not yet authenticated");
  return m;
}

// One `client.refused` line per reason per second at most (a flood must not
// become a log flood); `suppressed` says how many were not logged since.
void log_refused(const std::string& reason, const std::string& peer, const std::string& via) {
  m_refused(reason).inc();
  struct Seen {
    int64_t last_ms = -1000000;
    uint64_t suppressed = 0;
  };
  static std::unordered_map<std::string, Seen> seen;
  Seen& e = seen[reason];
  const int64_t now = unix_ms();
  if (now - e.last_ms < 1000) {
    ++e.suppressed;
    return;
  }
  if (via.empty()) {
    S2_LOG(LogLevel::Warn, "client.refused",
           {{"reason", reason}, {"peer", peer}, {"suppressed", e.suppressed}});
  } else {
    S2_LOG(LogLevel::Warn, "client.refused",
           {{"reason", reason}, {"peer", peer}, {"via", via}, {"suppressed", e.suppressed}});
  }
  e.last_ms = now;
  e.suppressed = 0;
}
}  // namespace

void ClientSession::accept(ProxyContext& ctx, uv_stream_t* server, bool direct_tls) {
  Connection::Options opts = ctx.client_conn;
  opts.proxy_protocol = ctx.config.proxy_protocol_on(direct_tls);
  // Over --max-clients, or (behind a balancer) over the unauthenticated cap
  // before the header even names the client: accept and close at once
  // (libuv stops accepting while a connection is left pending).
  const char* refuse = nullptr;
  if (ctx.max_clients != 0 && ctx.sessions.size() >= ctx.max_clients) {
    refuse = "max_clients";
  } else if (opts.proxy_protocol && ctx.config.max_unauthenticated != 0 &&
             ctx.preauth.total() >= ctx.config.max_unauthenticated) {
    refuse = "unauthenticated_total";
  }
  if (refuse) {
    if (auto* c = Connection::accept(server, nullptr, opts)) {
      log_refused(refuse, c->peer(), "");
      c->detach();
    }
    return;
  }
  auto* s = new ClientSession(ctx, direct_tls);
  s->proxy_protocol_ = opts.proxy_protocol;
  s->conn_ = Connection::accept(server, s, opts);
  if (!s->conn_) {
    delete s;
    return;
  }
  s->peer_ = s->conn_->peer();
  if (s->proxy_protocol_ && !ctx.proxy_from.empty() &&
      !proxyproto::in_networks(ctx.proxy_from, s->peer_)) {
    log_refused("proxy_source", s->peer_, "");
    s->conn_->detach();
    s->conn_ = nullptr;
    delete s;
    return;
  }
  if (!s->proxy_protocol_ && !s->admit_preauth()) {
    s->conn_->detach();
    s->conn_ = nullptr;
    delete s;
    return;
  }
  s->auth_timer_.start(static_cast<uint64_t>(ctx.config.auth_timeout * 1000), [s] {
    if (s->authenticated_) return;
    S2_LOG(LogLevel::Info, "client.timeout", {{"session", s->id_}, {"phase", "auth"}});
    if (s->state_ == State::TlsHandshake || s->state_ == State::WaitProxyHeader) {
      s->state_ = State::Closing;
      s->conn_->close();  // no XML can be sent inside an unfinished handshake
      return;
    }
    s->stream_error("connection-timeout", "not authenticated in time");
  });
  if (s->proxy_protocol_) {
    // The header is due at once; the TLS handshake timeout bounds the wait.
    s->state_ = State::WaitProxyHeader;
    s->start_tls_timer();
    return;
  }
  s->log_accepted();
  if (direct_tls) {
    s->state_ = State::TlsHandshake;
    s->conn_->start_tls(ctx.server_tls.get(), TlsSession::Role::Server);
    s->start_tls_timer();
  }
}

void ClientSession::log_accepted() {
  const char* tls = direct_tls_ ? "direct" : "starttls";
  if (conn_->via().empty()) {
    S2_LOG(LogLevel::Info, "client.accepted", {{"session", id_}, {"peer", peer_}, {"tls", tls}});
  } else {
    S2_LOG(LogLevel::Info, "client.accepted",
           {{"session", id_}, {"peer", peer_}, {"via", conn_->via()}, {"tls", tls}});
  }
}

bool ClientSession::admit_preauth() {
  const std::string key = policy::throttle_key_for_peer(peer_);
  switch (ctx_.preauth.admit(key)) {
    case policy::PreauthBudget::Verdict::Ok:
      preauth_counted_ = true;
      preauth_key_ = key;
      m_unauthenticated().inc();
      return true;
    case policy::PreauthBudget::Verdict::PerAddressFull:
      log_refused("unauthenticated_per_address", peer_, conn_ ? conn_->via() : "");
      return false;
    case policy::PreauthBudget::Verdict::TotalFull:
      log_refused("unauthenticated_total", peer_, conn_ ? conn_->via() : "");
      return false;
  }
  return false;
}

void ClientSession::leave_preauth() {
  if (!preauth_counted_) return;
  preauth_counted_ = false;
  ctx_.preauth.release(preauth_key_);
  m_unauthenticated().dec();
}

// The balancer's header named the client: it is admitted (or refused) as if
// it had connected itself.
void ClientSession::on_conn_proxy_header(const proxyproto::Header& h) {
  if (state_ != State::WaitProxyHeader) return;
  tls_timer_.stop();
  peer_ = conn_->peer();
  S2_LOG(LogLevel::Debug, "client.proxy_header",
         {{"session", id_},
          {"peer", peer_},
          {"via", conn_->via()},
          {"version", h.version},
          {"address", h.has_address ? "client" : "local"}});
  if (!admit_preauth()) {
    state_ = State::Closing;
    conn_->close();
    return;
  }
  log_accepted();
  if (direct_tls_) {
    state_ = State::TlsHandshake;
    conn_->start_tls(ctx_.server_tls.get(), TlsSession::Role::Server);
    start_tls_timer();
  } else {
    state_ = State::WaitStream;
  }
}

// No XML can be sent inside an unfinished handshake: on timeout the
// connection is just closed.
void ClientSession::start_tls_timer() {
  tls_timer_.start(static_cast<uint64_t>(ctx_.config.tls_handshake_timeout * 1000), [this] {
    S2_LOG(LogLevel::Info, "client.timeout", {{"session", id_}, {"phase", "tls"}});
    state_ = State::Closing;
    conn_->close();
  });
}

ClientSession::ClientSession(ProxyContext& ctx, bool direct_tls)
    : ctx_(ctx),
      id_("c" + std::to_string(g_session_seq++)),
      direct_tls_(direct_tls),
      tls_timer_(ctx.loop),
      auth_timer_(ctx.loop),
      input_rate_(
          policy::InputRateConfig{ctx.config.client_read_rate, ctx.config.client_read_burst,
                                  ctx.config.client_stanza_rate, ctx.config.client_stanza_window},
          static_cast<int64_t>(uv_now(ctx.loop))),
      rate_timer_(ctx.loop) {
  seq_ = std::strtoull(id_.c_str() + 1, nullptr, 10);
  ctx_.sessions.insert(this);
  m_sessions().inc();
}

ClientSession::~ClientSession() {
  if (login_queued_) {
    ctx_.login_gate.cancel(login_key_, seq_);
    ctx_.login_waiters.erase(seq_);
    login_queue_gauge().dec();
  }
  end_login_attempt();
  leave_preauth();
  if (prewarm_counted_) --ctx_.prewarmed;
  if (prewarm_) prewarm_->close();
  ctx_.sessions.erase(this);
  m_sessions().dec();
  if (device_) device_->detach(this);
}

namespace {
// Events of a pre-connected upstream session before a Device adopts it: a
// failure only makes it unusable (the Device then connects anew).
class PrewarmListener : public UpstreamSession::Listener {
 public:
  void on_upstream_authenticated() override {}
  void on_upstream_login_failed(const UpstreamFailure&) override {}
  void on_upstream_bound(const std::string&) override {}
  void on_upstream_bind_failed(const std::string&, const std::string&) override {}
  void on_upstream_stanza(Stanza) override {}
  void on_upstream_closed(const std::string&, const std::string&) override {}
};
PrewarmListener g_prewarm_listener;
}  // namespace

// A secured stream whose header names an account the vault knows will most
// likely log in with FAST or SCRAM, verified locally: connect its upstream
// session now, so the login answers after one SASL exchange upstream instead
// of TCP + TLS + SASL. Only for known accounts, so unauthenticated strangers
// cannot make the proxy open upstream connections.
void ClientSession::maybe_preconnect() {
  if (!secure_ || authenticated_ || prewarm_ || stream_from_.empty() || !vault_known_) return;
  // The stream 'from' is not verified yet: bound the upstream connections a
  // stranger who knows an account name could make us open.
  std::string why;
  if (ctx_.prewarmed >= kMaxPrewarmed || throttled(stream_from_, &why)) return;
  prewarm_ = std::make_unique<UpstreamSession>(ctx_.loop, ctx_.upstream, &g_prewarm_listener, id_);
  ++ctx_.prewarmed;
  prewarm_counted_ = true;
  prewarm_->preconnect();
}

// The device leaves this connection for good (ended, or replaced by a resumed one).
void ClientSession::drop_device() {
  if (!device_) return;
  Device* d = device_;
  device_ = nullptr;
  d->end();
}

void ClientSession::on_conn_tls_ready() {
  tls_timer_.stop();
  secure_ = true;
  state_ = State::WaitStream;
  header_sent_ = false;
  S2_LOG(LogLevel::Debug, "client.tls", {{"session", id_}});
}

void ClientSession::send_header() {
  if (header_sent_) return;
  header_sent_ = true;
  conn_->send(
      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
      "xmlns:stream='http://etherx.jabber.org/streams' id='" +
      random_id() + "' from='" + xml_escape(ctx_.config.domain) + "' version='1.0' xml:lang='en'>");
}

void ClientSession::on_conn_stream_open(const StreamHeader& h) {
  if (state_ != State::WaitStream) {
    stream_error("not-well-formed", "unexpected stream header");
    return;
  }
  send_header();
  const std::string to = h.attr("to");
  auto to_jid = parse_jid(to);
  if (to.empty() || !to_jid || !to_jid->local.empty() || !to_jid->resource.empty() ||
      to_jid->domain != ctx_.config.domain) {
    stream_error("host-unknown",
                 to.empty() ? "the stream header has no 'to'" : "this server does not serve " + to);
    return;
  }
  if (!authenticated_) {
    // SCRAM is offered when the account is known to the vault (by the stream
    // 'from'), or — for clients that send no 'from', like slixmpp — when the
    // operator allows it; such clients fall back to PLAIN if SCRAM fails.
    if (auto from = bare_jid(h.attr("from"))) {
      stream_from_ = *from;
      vault_known_ = ctx_.vault->known(stream_from_);
    } else {
      vault_known_ = ctx_.config.scram_without_from;
    }
  }
  const std::string version = h.attr("version");
  if (version.empty() || version[0] < '1') {
    stream_error("unsupported-version", "XMPP 1.0 streams only");
    return;
  }
  send_features();
  maybe_preconnect();
}

std::string ClientSession::post_auth_features() const {
  std::string f;
  if (state_ != State::Bound) {
    f += "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
         "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>";
  }
  if (!device_ || !device_->sm_enabled()) f += "<sm xmlns='urn:xmpp:sm:3'/>";
  // XEP-0352: CSI is the proxy's (Device's CsiQueue), whatever the upstream offers.
  f += "<csi xmlns='urn:xmpp:csi:0'/>";
  return f;
}

void ClientSession::send_features() {
  std::string f = "<stream:features>";
  if (!secure_) {
    f += "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>";
    state_ = State::WaitStartTls;
  } else if (!authenticated_) {
    f += "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>";
    for (const auto& m : offered_mechanisms()) f += "<mechanism>" + m + "</mechanism>";
    f += "</mechanisms>";
    f += session2::build_authentication_feature(sasl2_offer()).to_string();
    state_ = State::WaitAuth;
  } else {
    f += post_auth_features();
    state_ = State::WaitBind;
  }
  f += "</stream:features>";
  conn_->send(f);
}

void ClientSession::on_conn_bytes_read(size_t n) {
  const int64_t pause = input_rate_.on_bytes(n, static_cast<int64_t>(uv_now(ctx_.loop)));
  if (pause <= 0 || !conn_) return;
  // Over --client-read-rate: stop reading until the bucket has refilled. TCP
  // pushes back on the client; what was read is still handled.
  conn_->set_reading(false, Connection::kPauseRate);
  m_read_paused().inc();
  rate_timer_.start(static_cast<uint64_t>(pause), [this] {
    if (conn_) conn_->set_reading(true, Connection::kPauseRate);
  });
}

void ClientSession::on_conn_stanza(Stanza s) {
  if (state_ == State::Closing) return;
  if (gate_login(s)) return;  // waits for a login slot of its address
  if (input_rate_.on_stanza(static_cast<int64_t>(uv_now(ctx_.loop)))) {
    m_flood_closed().inc();
    S2_LOG(LogLevel::Warn, "client.flood",
           {{"peer", conn_ ? conn_->peer() : std::string()},
            {"account", account_},
            {"max_stanzas_per_s", static_cast<int64_t>(ctx_.config.client_stanza_rate)},
            {"window_s", static_cast<int64_t>(ctx_.config.client_stanza_window)}});
    stream_error("policy-violation",
                 "too many stanzas: more than " + std::to_string(ctx_.config.client_stanza_rate) +
                     " per second over " + std::to_string(ctx_.config.client_stanza_window) + " s");
    return;
  }
  const std::string name = s.name();
  const std::string xmlns = s.xmlns();

  if (state_ == State::Bound && !device_) {
    stream_error("reset", "the session has ended");
    return;
  }
  if (state_ == State::Bound && is_stanza(name) && xmlns.empty()) {
    // The upstream stamps 'from' itself; a client-chosen one is never trusted.
    s.remove_attr("from");
    m_stanzas("to_upstream").inc();
    device_->from_client(std::move(s));
    return;
  }
  if (xmlns == ns::kTls && name == "starttls") {
    if (state_ != State::WaitStartTls) {
      stream_error("policy-violation", "STARTTLS is not allowed now");
      return;
    }
    conn_->send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    state_ = State::TlsHandshake;
    conn_->start_tls(ctx_.server_tls.get(), TlsSession::Role::Server);
    start_tls_timer();
    return;
  }
  if (name == "error" && xmlns == ns::kStreams) {
    // The client ends the stream with an error (RFC 6120 §4.9): close ours.
    S2_LOG(LogLevel::Info, "client.sent_stream_error", {{"session", id_}});
    drop_device();
    close_stream();
    return;
  }
  if (xmlns == ns::kSasl || xmlns == ns::kSasl2) {
    if (xmlns == ns::kSasl)
      handle_sasl1(s);
    else
      handle_sasl2(s);
    login_refused_ = false;
    // A slot is held only while a login runs: upstream (Authenticating) or
    // a SCRAM exchange waiting for the client. Whatever else the element led
    // to (an early failure, an abort) frees it.
    if (login_in_flight_ && state_ != State::Authenticating && !scram_) end_login_attempt();
    return;
  }
  if (xmlns == ns::kSm && authenticated_) {
    handle_sm(s);
    return;
  }
  if ((state_ == State::WaitBind || state_ == State::Binding) && name == "iq" && xmlns.empty()) {
    handle_iq_before_bound(s);
    return;
  }
  if (state_ == State::WaitStartTls) {
    // RFC 6120 §5.3.1: with TLS mandatory, nothing but STARTTLS may come first.
    stream_error("policy-violation", "STARTTLS is required before anything else");
    return;
  }
  if (!authenticated_) {
    stream_error("not-authorized", "authenticate first");
    return;
  }
  if (state_ == State::Bound && xmlns == ns::kCsi && (name == "active" || name == "inactive")) {
    device_->csi_from_client(s);
    return;
  }
  if (state_ == State::Bound) {
    stream_error("unsupported-stanza-type", "<" + name + "/> is not supported here");
    return;
  }
  stream_error("not-authorized", "bind a resource first");
}

void ClientSession::handle_sasl1(const Stanza& s) {
  const std::string name = s.name();
  if (name == "abort" && state_ == State::WaitAuth) {
    scram_.reset();
    sasl1_failure("aborted", "authentication aborted by the client");
    return;
  }
  if (name == "response" && state_ == State::WaitAuth && scram_ && !sasl2_) {
    auto data = crypto::sasl_base64_decode(s.text_content());
    std::string cond = "malformed-request", text = "the response is not valid base64";
    if (!data || !finish_scram(*data, &cond, &text)) auth_failure(cond, text);
    return;
  }
  if (name != "auth") {
    stream_error("policy-violation", "unexpected SASL element <" + name + "/>");
    return;
  }
  if (!secure_) {
    // TLS is mandatory; say so in SASL terms and let the client STARTTLS.
    m_auth("encryption-required").inc();
    conn_->send(
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required/>"
        "<text>use STARTTLS before authenticating</text></failure>");
    return;
  }
  if (state_ != State::WaitAuth || scram_) {
    stream_error("policy-violation", "authentication is not allowed now");
    return;
  }
  sasl2_.reset();
  auto decoded = crypto::sasl_base64_decode(s.text_content());
  if (!decoded) {
    sasl1_failure("malformed-request", "the initial response is not valid base64");
    return;
  }
  const std::string mech = s.attr_or("mechanism");
  std::string cond, text;
  bool ok = false;
  if (mech == "PLAIN") {
    ok = start_plain_login(*decoded, &cond, &text);
  } else {
    std::string challenge;
    ok = start_scram(mech, *decoded, &challenge, &cond, &text);
    if (ok)
      conn_->send("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" +
                  crypto::sasl_base64_encode(challenge) + "</challenge>");
  }
  crypto::secure_wipe(*decoded);
  if (!ok) auth_failure(cond, text);
}

void ClientSession::sasl1_failure(const std::string& condition, const std::string& text) {
  m_auth(condition).inc();
  conn_->send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><" + condition + "/><text>" +
              xml_escape(text) + "</text></failure>");
  state_ = State::WaitAuth;
}

void ClientSession::on_device_authenticated() {
  if (state_ != State::Authenticating) return;
  // Several nodes (cluster.h): the account may be served by another node.
  // Credentials are verified first, so only the account's owner learns where.
  std::string owner_addr, owner_node;
  if (ctx_.cluster && !ctx_.cluster->serve_here(account_, &owner_addr, &owner_node)) {
    redirect_to_owner(owner_addr, owner_node);
    return;
  }
  authenticated_ = true;
  auth_timer_.stop();
  m_auth("success").inc();
  S2_LOG(LogLevel::Info, "client.authenticated",
         {{"session", id_}, {"account", account_}, {"sasl", sasl2_ ? "2" : "1"}});
  record_auth_success();
  if (!pending_password_.empty()) {
    // First (or renewed) password login: keep what later logins need.
    ctx_.vault->put(account_, pending_password_.view(), device_->upstream()->learned_secret(),
                    [&ctx = ctx_, account = account_](bool ok) {
                      S2_LOG(ok ? LogLevel::Debug : LogLevel::Warn, "vault.stored",
                             {{"account", account}, {"ok", ok ? "true" : "false"}});
                      // The account is known now: its anchor keeps history coming.
                      if (ok && !ctx.shutting_down) AccountHub::of(ctx, account).start_anchor();
                    });
    pending_password_.wipe();
  }
  if (sasl2_) {
    continue_sasl2();
    return;
  }
  conn_->send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" +
              (success_data_.empty() ? std::string() : crypto::sasl_base64_encode(success_data_)) +
              "</success>");
  success_data_.clear();
  // RFC 6120 §6.4.6: both sides restart the stream after SASL success.
  conn_->reset_stream(true);
  header_sent_ = false;
  state_ = State::WaitStream;
}

void ClientSession::on_device_login_failed(const UpstreamFailure& f) {
  device_ = nullptr;  // the device ended itself
  if (state_ != State::Authenticating) {
    stream_error("reset", "the upstream session ended: " + f.text);
    return;
  }
  const std::string cond = f.rejected ? f.condition : "temporary-auth-failure";
  std::string text = f.rejected
                         ? "the server rejected these credentials"
                         : "the server cannot be reached to check credentials; try again later";
  if (f.rejected && via_vault_) {
    // The stored secret no longer works (password changed upstream): forget
    // it and every FAST token; the next login must use the new password.
    ctx_.vault->invalidate(account_, [](bool) {});
    if (auto* hub = AccountHub::find(ctx_, account_)) hub->stop_anchor();
    vault_known_ = false;
    text = "your password has changed; log in with the new password";
  }
  success_data_.clear();
  auth_failure(cond, text);
}

void ClientSession::handle_iq_before_bound(const Stanza& iq) {
  const std::string type = iq.attr_or("type");
  if (auto b = iq.child("bind", ns::kBind); b && type == "set") {
    if (state_ != State::WaitBind || !device_) {
      stanza_error(iq, "cancel", "not-allowed", "a resource is already being bound");
      return;
    }
    pending_bind_id_ = iq.attr_or("id");
    state_ = State::Binding;
    device_->bind(b.child("resource").text_content());
    return;
  }
  if (iq.child("session", ns::kSession) && type == "set") {
    // RFC 6121 legacy session establishment: a no-op that must be answered.
    auto r = Stanza::element("iq");
    r.set_attr("type", "result").set_attr("id", iq.attr_or("id"));
    conn_->send(r);
    return;
  }
  stanza_error(iq, "cancel", "not-allowed", "bind a resource first");
}

void ClientSession::on_device_bound(const std::string& full_jid) {
  full_jid_ = full_jid;
  if (sasl2_) {
    finish_sasl2_bound(full_jid);
    return;
  }
  state_ = State::Bound;
  auto r = Stanza::element("iq");
  r.set_attr("type", "result").set_attr("id", pending_bind_id_);
  auto b = Stanza::element("bind", ns::kBind);
  auto j = Stanza::element("jid");
  j.add_text(full_jid);
  b.add_child(j);
  r.add_child(b);
  conn_->send(r);
  S2_LOG(LogLevel::Info, "client.bound", {{"session", id_}, {"jid", full_jid}});
}

void ClientSession::on_device_bind_failed(const std::string& condition, const std::string& text) {
  const std::string why = text.empty() ? "the server refused this resource" : text;
  if (sasl2_) {
    // Authentication succeeded but the session cannot be set up.
    sasl2_failure("temporary-auth-failure", "binding failed: " + condition + " " + why);
    drop_device();
    return;
  }
  state_ = State::WaitBind;
  auto iq = Stanza::element("iq");
  iq.set_attr("type", "set").set_attr("id", pending_bind_id_);
  stanza_error(iq, condition == "conflict" ? "cancel" : "modify", condition, why);
}

// XEP-0198 on this stream: enable after bind, resume instead of bind, and
// the <r/>/<a/> exchange.
void ClientSession::handle_sm(const Stanza& s) {
  auto parsed = session2::parse_sm(s);
  const std::string name = s.name();
  if (!parsed) {
    if (name == "enable" || name == "resume") {
      conn_->send(session2::build_sm_failed("bad-request"));
    } else {
      stream_error("undefined-condition", parsed.error().text);
    }
    return;
  }
  if (name == "enable") {
    if (state_ != State::Bound) {
      conn_->send(session2::build_sm_failed("unexpected-request"));
      return;
    }
    conn_->send(device_->enable_sm(std::get<session2::SmEnable>(*parsed)));
    return;
  }
  if (name == "resume") {
    if (state_ != State::WaitBind) {
      conn_->send(session2::build_sm_failed("unexpected-request"));
      return;
    }
    std::vector<Stanza> resend;
    Stanza answer;
    if (try_resume(std::get<session2::SmResume>(*parsed), &resend, &answer)) {
      std::string out = answer.to_string();  // one write, see sasl2_resume()
      for (auto& r : resend) out += r.to_string();
      conn_->send(out);
    } else {
      conn_->send(answer);
    }
    return;
  }
  if (!device_ || !device_->sm_enabled()) {
    stream_error("unsupported-stanza-type", "stream management is not enabled");
    return;
  }
  if (name == "r") {
    device_->sm_request();
  } else if (name == "a") {
    std::string err;
    if (!device_->sm_ack(std::get<session2::SmAck>(*parsed).h, &err)) {
      conn_->send(session2::build_handled_count_too_high(std::get<session2::SmAck>(*parsed).h,
                                                         device_->sm_sent_count()));
      stream_error("undefined-condition", err);
    }
  }
}

// Resumption: the device this connection authenticated with (if any) is
// replaced by the hibernating one.
bool ClientSession::try_resume(const session2::SmResume& r, std::vector<Stanza>* resend,
                               Stanza* answer) {
  Device* d = Device::find_resumable(ctx_, r.previd, account_);
  std::string err;
  if (!d) {
    *answer = session2::build_sm_failed("item-not-found");
    return false;
  }
  if (!d->resume(this, r.h, resend, &err)) {
    *answer = session2::build_sm_failed("unexpected-request");
    return false;
  }
  if (device_ && device_ != d) drop_device();
  device_ = d;
  full_jid_ = d->full_jid();
  state_ = State::Bound;
  *answer = session2::build_sm_resumed(r.previd, d->sm_inbound_h());
  return true;
}

void ClientSession::device_write(const Stanza& s) {
  if (state_ == State::Closing || !conn_) return;
  m_stanzas("to_client").inc();
  if (hold_writes_) {
    // SASL2 <success> is still being prepared (token commit): nothing of
    // the session may overtake it.
    held_ += s.to_string();
    return;
  }
  conn_->send(s);
}

size_t ClientSession::device_write_backlog() const {
  return conn_ ? conn_->write_queue_bytes() + held_.size() : 0;
}

void ClientSession::device_set_reading(bool on) {
  if (conn_) conn_->set_reading(on);
}

void ClientSession::on_device_ended(const std::string& condition, const std::string& text) {
  device_ = nullptr;
  stream_error(condition, text);
}

void ClientSession::stanza_error(const Stanza& original, const std::string& type,
                                 const std::string& condition, const std::string& text) {
  auto e = session2::build_stanza_error(original, type, condition, text);
  if (e) conn_->send(e);
}

void ClientSession::redirect_to_owner(const std::string& address, const std::string& node) {
  counter("s2proxy_cluster_redirects_total", "devices sent to the node that serves their account")
      .inc();
  S2_LOG(LogLevel::Info, "cluster.redirect",
         {{"session", id_}, {"account", account_}, {"owner", node}, {"to", address}});
  pending_password_.wipe();
  if (address.empty()) {
    stream_error("undefined-condition", "this account is served by another s2proxy node (" + node +
                                            "), which advertises no address; try again later");
    return;
  }
  m_stream_errors("see-other-host").inc();
  send_header();
  conn_->send(session2::build_see_other_host(address, "this account is served by " + node) +
              "</stream:stream>");
  state_ = State::Closing;
  conn_->close();
}

void ClientSession::stream_error(const std::string& condition, const std::string& text) {
  if (state_ == State::Closing || !conn_) return;
  m_stream_errors(condition).inc();
  S2_LOG(LogLevel::Info, "client.stream_error",
         {{"session", id_}, {"condition", condition}, {"text", text}});
  send_header();  // RFC 6120 §4.9.1.1: open the stream before an error in it
  conn_->send(session2::build_stream_error(condition, text) + "</stream:stream>");
  state_ = State::Closing;
  conn_->close();
}

void ClientSession::close_stream() {
  if (state_ == State::Closing) return;
  state_ = State::Closing;
  send_header();
  conn_->send("</stream:stream>");
  conn_->close();
}

void ClientSession::on_conn_stream_close() {
  S2_LOG(LogLevel::Info, "client.stream_closed", {{"session", id_}});
  // XEP-0198 §5: a cleanly closed stream is not resumable.
  drop_device();
  close_stream();
}

void ClientSession::on_conn_xml_error(const XmlError& e) { stream_error(e.condition, e.text); }

void ClientSession::on_conn_closed(const std::string& reason) {
  if (state_ == State::WaitProxyHeader && reason.rfind("PROXY protocol:", 0) == 0)
    log_refused("proxy_header", peer_, "");
  S2_LOG(LogLevel::Info, "client.closed", {{"session", id_}, {"reason", reason}});
  conn_ = nullptr;
  delete this;
}

void ClientSession::shutdown(const std::string& condition, const std::string& text) {
  if (!conn_) return;
  if (state_ == State::TlsHandshake || state_ == State::WaitProxyHeader) {
    state_ = State::Closing;
    conn_->close();
    return;
  }
  drop_device();
  if (condition.empty()) {
    close_stream();
  } else {
    stream_error(condition, text);
  }
}

}  // namespace s2
