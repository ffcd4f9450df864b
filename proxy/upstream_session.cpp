// See upstream_session.h.
#include "proxy/upstream_session.h"

#include <optional>

#include "common/crypto/encoding.h"
#include "common/crypto/sasl_plain.h"
#include "common/crypto/scram.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "proxy/key_deriver.h"
#include "proxy/upstream_login_gate.h"
#include "proxy/xmpp_ns.h"

namespace s2 {

// A client-side SASL mechanism: PLAIN or SCRAM.
class UpstreamSession::Mechanism {
 public:
  virtual ~Mechanism() = default;
  virtual std::string name() const = 0;
  virtual std::string initial_response() = 0;
  // Returns the response to a challenge, or nullopt when the challenge is bad.
  virtual std::optional<std::string> respond(const std::string& challenge) = 0;
  // Checks the additional data of <success/> (SCRAM server signature).
  virtual bool verify_success(const std::string& data) = 0;
  virtual bool learned(UpstreamSecret* out) const = 0;
  virtual bool stale_secret() const { return false; }
  // After respond() returned nullopt: true when the response only waits for
  // Hi(password, salt, iterations) (SCRAM with a password), which the caller
  // computes off the loop and hands to respond_salted().
  struct Derivation {
    crypto::HashAlg hash = crypto::HashAlg::Sha1;
    std::string salt;
    uint32_t iterations = 0;
  };
  virtual bool needs_derivation(Derivation*) const { return false; }
  virtual std::optional<std::string> respond_salted(std::string_view) { return std::nullopt; }
};

namespace {
using crypto::HashAlg;

class PlainMechanism : public UpstreamSession::Mechanism {
 public:
  PlainMechanism(std::string user, std::string pass)
      : user_(std::move(user)), pass_(std::move(pass)) {}
  ~PlainMechanism() override { crypto::secure_wipe(pass_); }
  std::string name() const override { return "PLAIN"; }
  std::string initial_response() override { return crypto::build_sasl_plain("", user_, pass_); }
  std::optional<std::string> respond(const std::string&) override { return std::nullopt; }
  bool verify_success(const std::string&) override { return true; }
  bool learned(UpstreamSecret* out) const override {
    out->kind = UpstreamSecret::Kind::Password;
    out->secret = pass_;
    return true;
  }

 private:
  std::string user_, pass_;
};

class ScramMechanism : public UpstreamSession::Mechanism {
 public:
  ScramMechanism(HashAlg hash, const std::string& user, const std::string& pass)
      : hash_(hash), client_(hash, user, pass) {}
  ScramMechanism(HashAlg hash, const std::string& user, const UpstreamSecret& stored)
      : hash_(hash),
        client_(crypto::ScramClient::with_salted_password(hash, user, stored.secret, stored.salt,
                                                          stored.iterations)) {}
  bool learned(UpstreamSecret* out) const override {
    out->kind = UpstreamSecret::Kind::ScramSalted;
    out->hash = hash_;
    out->salt = client_.salt();
    out->iterations = client_.iterations();
    out->secret = client_.salted_password();
    return true;
  }
  // A stored SaltedPassword whose salt no longer matches: the password was
  // changed upstream, so the vault entry is stale.
  bool stale_secret() const override { return client_.salt_changed(); }
  std::string name() const override { return crypto::scram_mechanism_name(hash_); }
  std::string initial_response() override { return client_.client_first().value_or(""); }
  std::optional<std::string> respond(const std::string& challenge) override {
    if (answered_) return std::nullopt;  // only one challenge in SCRAM
    answered_ = true;
    if (!client_.accept_server_first(challenge) || client_.needs_salted_password())
      return std::nullopt;
    return client_.client_final();
  }
  bool needs_derivation(Derivation* d) const override {
    if (!client_.needs_salted_password()) return false;
    d->hash = hash_;
    d->salt = client_.salt();
    d->iterations = client_.iterations();
    return true;
  }
  std::optional<std::string> respond_salted(std::string_view salted) override {
    return client_.client_final(salted);
  }
  bool verify_success(const std::string& data) override {
    return answered_ && client_.handle_server_final(data);
  }

 private:
  HashAlg hash_;
  crypto::ScramClient client_;
  bool answered_ = false;
};

Metric& m_logins_ok() {
  static Metric& m =
      counter("s2proxy_upstream_logins_total", "upstream logins by result", "result=\"ok\"");
  return m;
}
Metric& m_logins_rejected() {
  static Metric& m =
      counter("s2proxy_upstream_logins_total", "upstream logins by result", "result=\"rejected\"");
  return m;
}
Metric& m_logins_unavailable() {
  static Metric& m = counter("s2proxy_upstream_logins_total", "upstream logins by result",
                             "result=\"unavailable\"");
  return m;
}
}  // namespace

namespace {
uint64_t next_serial() {
  static uint64_t n = 0;
  return ++n;
}
}  // namespace

UpstreamSession::UpstreamSession(uv_loop_t* loop, const UpstreamParams& params, Listener* listener,
                                 std::string log_id)
    : loop_(loop),
      serial_(next_serial()),
      params_(params),
      listener_(listener),
      log_id_(std::move(log_id)),
      login_timer_(loop),
      live_timer_(loop),
      ack_answer_timer_(loop) {}

UpstreamSession::~UpstreamSession() {
  release_gate();
  if (conn_) conn_->detach();
}

void UpstreamSession::release_gate() {
  if (gate_ticket_ && params_.login_gate) params_.login_gate->release(gate_ticket_);
  gate_ticket_ = 0;
}

void UpstreamSession::preconnect() {
  if (conn_ || state_ != State::Connecting) return;
  conn_ = Connection::connect_host(loop_, params_.host, params_.port, this, params_.conn);
}

void UpstreamSession::login(const std::string& username, const UpstreamSecret& secret) {
  username_ = username;
  secret_.kind = secret.kind;
  secret_.hash = secret.hash;
  secret_.salt = secret.salt;
  secret_.iterations = secret.iterations;
  secret_.secret = secret.secret;
  have_credentials_ = true;
  if (params_.login_gate) {
    // In arrival order, at the upstream's pace; the login's own timeout starts when admitted.
    gate_ticket_ = params_.login_gate->admit([this] { begin_login(); });
    return;
  }
  begin_login();
}

void UpstreamSession::begin_login() {
  if (state_ == State::Closed) return;
  login_timer_.start(static_cast<uint64_t>(params_.timeout_s * 1000), [this] {
    fail_login(false, "temporary-auth-failure", "upstream login timed out");
  });
  if (state_ == State::Prepared) {
    start_sasl(prepared_mechanisms_);  // connection, TLS and features are done already
  } else if (!conn_) {
    state_ = State::Connecting;
    conn_ = Connection::connect_host(loop_, params_.host, params_.port, this, params_.conn);
  }
  // else: a preconnect is under way; SASL starts when the features arrive.
}

void UpstreamSession::on_conn_connected() {
  S2_LOG(LogLevel::Debug, "upstream.connected", {{"session", log_id_}, {"peer", conn_->peer()}});
  if (params_.tls == UpstreamParams::Tls::Direct) {
    conn_->start_tls(params_.ssl_ctx, TlsSession::Role::Client, params_.domain);
  } else {
    state_ = State::WaitFeatures;
    open_stream();
  }
}

void UpstreamSession::on_conn_tls_ready() {
  tls_done_ = true;
  state_ = State::WaitFeatures;
  open_stream();
}

void UpstreamSession::open_stream() {
  conn_->send(
      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
      "xmlns:stream='http://etherx.jabber.org/streams' to='" +
      xml_escape(params_.domain) + "' version='1.0' xml:lang='en'>");
}

void UpstreamSession::on_conn_stream_open(const StreamHeader&) {}

void UpstreamSession::on_conn_stanza(Stanza s) {
  if (s.is("features", ns::kStreams)) {
    on_features(s);
    return;
  }
  if (s.is("error", ns::kStreams)) {
    std::string cond, text;
    for (auto& c : s.children()) {
      if (c.xmlns() != ns::kStreamErrors) continue;
      if (c.name() == "text")
        text = c.text_content();
      else
        cond = c.name();
    }
    S2_LOG(LogLevel::Info, "upstream.stream_error",
           {{"session", log_id_}, {"condition", cond}, {"text", text}});
    if (state_ == State::Ready || state_ == State::Binding || state_ == State::Session ||
        state_ == State::Authenticated) {
      terminate(cond, text);
    } else {
      fail_login(false, "temporary-auth-failure", "upstream stream error: " + cond);
    }
    return;
  }
  if (s.xmlns() == ns::kTls) {
    if (state_ == State::StartTls && s.name() == "proceed") {
      conn_->start_tls(params_.ssl_ctx, TlsSession::Role::Client, params_.domain);
    } else {
      fail_login(false, "temporary-auth-failure", "upstream refused STARTTLS");
    }
    return;
  }
  if (s.xmlns() == ns::kSasl) {
    on_sasl(s);
    return;
  }
  if (s.xmlns() == ns::kSm) {
    handle_sm(s);
    return;
  }
  const std::string name = s.name();
  if (name != "message" && name != "presence" && name != "iq") return;  // unknown nonza
  if (ack_answer_timer_.active() && h_in_ - h_at_ack_request_ >= kAckAnswerEvery) {
    ack_answer_timer_.stop();
    send_ack();
  }
  if (sm_enabled_) ++h_in_;
  if (state_ == State::Binding || state_ == State::Session) {
    if (name == "iq" && (s.attr_or("id") == "s2-bind" || s.attr_or("id") == "s2-session")) {
      on_iq_result(s);
      return;
    }
  }
  if (state_ != State::Ready) return;  // nothing else may arrive before bind
  // The answer to our liveness probe (XEP-0199) is ours, not the device's.
  if (name == "iq" && s.attr_or("id").rfind(kLivenessIdPrefix, 0) == 0 &&
      (s.attr_or("type") == "result" || s.attr_or("type") == "error"))
    return;
  listener_->on_upstream_stanza(std::move(s));
}

void UpstreamSession::on_conn_bytes_read(size_t) { heard_ = true; }

void UpstreamSession::start_liveness() {
  if (params_.ping_interval_s <= 0 || live_timer_.active()) return;
  const auto ms = static_cast<uint64_t>(params_.ping_interval_s * 1000);
  heard_ = false;
  probe_outstanding_ = false;
  live_timer_.start(
      ms, [this] { liveness_tick(); }, ms);
  live_timer_.unref();
}

void UpstreamSession::liveness_tick() {
  if (state_ != State::Ready || !conn_) {
    live_timer_.stop();
    return;
  }
  if (heard_) {
    heard_ = false;
    probe_outstanding_ = false;
    return;
  }
  if (probe_outstanding_) {
    S2_LOG(LogLevel::Warn, "upstream.silent",
           {{"session", log_id_}, {"seconds", static_cast<int64_t>(2 * params_.ping_interval_s)}});
    live_timer_.stop();
    terminate("connection-timeout", "the upstream stopped answering");
    return;
  }
  probe_outstanding_ = true;
  if (sm_enabled_) {
    conn_->send("<r xmlns='urn:xmpp:sm:3'/>");
  } else {
    conn_->send("<iq type='get' id='" + std::string(kLivenessIdPrefix) + std::to_string(++probes_) +
                "'><ping xmlns='urn:xmpp:ping'/></iq>");
  }
}

void UpstreamSession::on_features(const Stanza& f) {
  if (state_ == State::WaitFeatures) {
    auto starttls = f.child("starttls", ns::kTls);
    if (!tls_done_ && params_.tls == UpstreamParams::Tls::StartTls) {
      if (!starttls) {
        fail_login(false, "temporary-auth-failure", "upstream does not offer STARTTLS");
        return;
      }
      state_ = State::StartTls;
      conn_->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      return;
    }
    auto mechs = f.child("mechanisms", ns::kSasl);
    if (!mechs) {
      fail_login(false, "temporary-auth-failure", "upstream offers no SASL mechanisms");
      return;
    }
    if (!have_credentials_) {
      // Pre-connected: wait here for login(), one SASL exchange away.
      state_ = State::Prepared;
      prepared_mechanisms_ = mechs;
      return;
    }
    start_sasl(mechs);
    return;
  }
  if (state_ == State::WaitPostAuthFeatures) {
    offers_sm_ = static_cast<bool>(f.child("sm", ns::kSm));
    offers_csi_ = static_cast<bool>(f.child("csi", ns::kCsi));
    auto session = f.child("session", ns::kSession);
    offers_session_ = session && !session.child("optional");
    if (!f.child("bind", ns::kBind)) {
      fail_login(false, "temporary-auth-failure", "upstream offers no resource binding");
      return;
    }
    state_ = State::Authenticated;
    login_timer_.stop();
    release_gate();  // the upstream's expensive part is done
    m_logins_ok().inc();
    S2_LOG(LogLevel::Info, "upstream.authenticated",
           {{"session", log_id_}, {"mechanism", mech_ ? mech_->name() : "?"}});
    mech_->learned(&learned_);
    mech_.reset();
    // A password upstream accepted over SCRAM: the next login with it needs
    // no PBKDF2 (key_deriver.h).
    if (params_.kdf && secret_.kind == UpstreamSecret::Kind::Password &&
        learned_.kind == UpstreamSecret::Kind::ScramSalted)
      params_.kdf->remember(learned_.hash, secret_.secret, learned_.salt, learned_.iterations,
                            learned_.secret);
    crypto::secure_wipe(secret_.secret);
    listener_->on_upstream_authenticated();
  }
}

void UpstreamSession::start_sasl(const Stanza& mechanisms) {
  bool has256 = false, has1 = false, plain = false;
  for (auto& m : mechanisms.children()) {
    const std::string v = m.text_content();
    if (v == "SCRAM-SHA-256") has256 = true;
    if (v == "SCRAM-SHA-1") has1 = true;
    if (v == "PLAIN") plain = true;
  }
  bool secure = tls_done_ || params_.tls == UpstreamParams::Tls::Plain;
  const bool stored = secret_.kind == UpstreamSecret::Kind::ScramSalted;
  if (stored) {
    // A SaltedPassword only works with the SCRAM variant it was made for.
    bool offered = secret_.hash == HashAlg::Sha256 ? has256 : has1;
    if (offered) mech_ = std::make_unique<ScramMechanism>(secret_.hash, username_, secret_);
  } else if (has256) {
    mech_ = std::make_unique<ScramMechanism>(HashAlg::Sha256, username_, secret_.secret);
  } else if (has1) {
    mech_ = std::make_unique<ScramMechanism>(HashAlg::Sha1, username_, secret_.secret);
  } else if (plain && secure) {
    mech_ = std::make_unique<PlainMechanism>(username_, secret_.secret);
  }
  if (!mech_) {
    fail_login(false, "temporary-auth-failure", "no usable upstream SASL mechanism");
    return;
  }
  state_ = State::Authenticating;
  std::string initial = mech_->initial_response();
  conn_->send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + mech_->name() + "'>" +
              (initial.empty() ? std::string("=") : crypto::base64_encode(initial)) + "</auth>");
  OPENSSL_cleanse(initial.data(), initial.size());
}

void UpstreamSession::on_sasl(const Stanza& s) {
  if (state_ != State::Authenticating || !mech_) {
    fail_login(false, "temporary-auth-failure", "unexpected SASL element from upstream");
    return;
  }
  const std::string name = s.name();
  if (name == "challenge") {
    auto decoded = crypto::sasl_base64_decode(s.text_content());
    std::optional<std::string> reply;
    // A second challenge while Hi() is still being computed is as bad as
    // one after the response (SCRAM has a single challenge).
    if (decoded && !deriving_) reply = mech_->respond(*decoded);
    Mechanism::Derivation d;
    if (!reply && !deriving_ && mech_->needs_derivation(&d)) {
      derive_then_respond();
      return;
    }
    send_sasl_response(reply);
    return;
  }
  if (name == "success") {
    auto data = crypto::sasl_base64_decode(s.text_content());
    if (!data || !mech_->verify_success(*data)) {
      // The upstream could not prove it knows the password: not the server we trust.
      fail_login(false, "temporary-auth-failure", "upstream SASL success failed verification");
      return;
    }
    state_ = State::WaitPostAuthFeatures;
    conn_->reset_stream(true);
    open_stream();
    return;
  }
  if (name == "failure") {
    std::string cond = "not-authorized", text;
    for (auto& c : s.children()) {
      if (c.name() == "text")
        text = c.text_content();
      else
        cond = c.name();
    }
    // Only conditions about the credentials mean the device's login is wrong;
    // anything else is the upstream's trouble.
    bool rejected = cond == "not-authorized" || cond == "account-disabled" ||
                    cond == "credentials-expired" || cond == "invalid-authzid";
    fail_login(rejected, rejected ? cond : "temporary-auth-failure",
               text.empty() ? "upstream rejected the credentials" : text);
  }
}

// The response (or the failure) to upstream's SASL challenge.
void UpstreamSession::send_sasl_response(const std::optional<std::string>& reply) {
  if (!reply && mech_->stale_secret()) {
    conn_->send("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    fail_login(true, "not-authorized", "the stored credentials are out of date");
    return;
  }
  if (!reply) {
    conn_->send("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    fail_login(false, "temporary-auth-failure", "bad SASL challenge from upstream");
    return;
  }
  conn_->send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" +
              crypto::base64_encode(*reply) + "</response>");
}

// SCRAM with a password: SaltedPassword = Hi(password, salt, i) from the memo
// when this password was accepted with this salt before, else computed on
// the thread pool (the loop goes on meanwhile; the login timer still runs).
void UpstreamSession::derive_then_respond() {
  Mechanism::Derivation d;
  mech_->needs_derivation(&d);
  KeyDeriver* kdf = params_.kdf;
  if (kdf) {
    if (auto salted = kdf->lookup(d.hash, secret_.secret, d.salt, d.iterations)) {
      send_sasl_response(mech_->respond_salted(salted->view()));
      return;
    }
  } else {
    crypto::SecretString salted(
        crypto::scram_salted_password(d.hash, secret_.secret, d.salt, d.iterations));
    send_sasl_response(mech_->respond_salted(salted.view()));
    return;
  }
  deriving_ = true;
  kdf->derive(d.hash, secret_.secret, std::move(d.salt), d.iterations, alive_,
              [this](crypto::SecretString salted) {
                if (!deriving_) return;
                deriving_ = false;
                // The login may have failed meanwhile (timeout, upstream gone).
                if (state_ != State::Authenticating || !mech_ || !conn_) return;
                send_sasl_response(mech_->respond_salted(salted.view()));
              });
}

void UpstreamSession::bind(const std::string& resource) {
  if (state_ != State::Authenticated) return;
  state_ = State::Binding;
  bind_resource_ = resource;
  auto iq = Stanza::element("iq");
  iq.set_attr("type", "set").set_attr("id", "s2-bind");
  auto b = Stanza::element("bind", ns::kBind);
  if (!resource.empty()) {
    auto r = Stanza::element("resource");
    r.add_text(resource);
    b.add_child(r);
  }
  iq.add_child(b);
  conn_->send(iq);
}

void UpstreamSession::on_iq_result(const Stanza& iq) {
  const bool ok = iq.attr_or("type") == "result";
  if (state_ == State::Binding) {
    if (!ok) {
      std::string cond = "internal-server-error", text;
      if (auto e = iq.child("error")) {
        for (auto& c : e.children()) {
          if (c.name() == "text")
            text = c.text_content();
          else
            cond = c.name();
        }
      }
      state_ = State::Authenticated;  // the device may try another resource
      listener_->on_upstream_bind_failed(cond, text);
      return;
    }
    full_jid_ = iq.child("bind", ns::kBind).child("jid").text_content();
    if (offers_session_) {
      state_ = State::Session;
      conn_->send(
          "<iq type='set' id='s2-session'><session "
          "xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
      return;
    }
  } else if (state_ == State::Session && !ok) {
    terminate("internal-server-error", "upstream refused the legacy session");
    return;
  }
  if (offers_sm_) {
    // Upstream SM without resumption: the proxy's own acks tell it which
    // stanzas the upstream took responsibility for.
    conn_->send("<enable xmlns='urn:xmpp:sm:3'/>");
    // The upstream handles <enable/> before anything sent after it, so its
    // counts start here, not when <enabled/> comes back.
    sm_requested_ = true;
    h_out_ = 0;
    h_acked_ = 0;
  }
  state_ = State::Ready;
  start_liveness();
  S2_LOG(LogLevel::Info, "upstream.bound", {{"session", log_id_}, {"jid", full_jid_}});
  listener_->on_upstream_bound(full_jid_);
}

void UpstreamSession::handle_sm(const Stanza& s) {
  const std::string name = s.name();
  if (name == "enabled") {
    sm_enabled_ = true;
    h_in_ = 0;
    release_tracked();
  } else if (name == "r") {
    answer_ack_request_soon();
  } else if (name == "a") {
    try {
      h_acked_ = static_cast<uint32_t>(std::stoul(s.attr_or("h", "0")));
    } catch (...) {
      terminate("undefined-condition", "upstream sent a malformed SM ack");
      return;
    }
    ack_requested_ = false;
    release_tracked();
    request_ack_soon();  // what was sent while the <r/> was out
  } else if (name == "failed") {
    // No SM upstream: nothing will ever be acknowledged.
    sm_enabled_ = false;
    sm_requested_ = false;
    h_acked_ = h_out_;
    release_tracked();
  }
}

// Prosody asks again (<r/>) as soon as our <a/> leaves stanzas in its queue,
// so answering at once turns a burst toward us (an anchor's carbons) into an
// <r/>/<a/> ping-pong: two segments and two wakeups of the upstream every few
// stanzas (bench_relay: ~4 segments per 100 messages). Upstream SM here has no
// resumption, so the answer only lets the upstream drop its copies: it waits
// kAckAnswerDelayMs and then covers everything handled meanwhile, or goes once
// kAckAnswerEvery stanzas came since the <r/> (Prosody keeps at most 500, and
// closes a session that overflows). A stream we close gets a last <a/> first
// (say_goodbye), so nothing we took is left for the upstream to bounce.
// An answer is pending while ack_answer_timer_ runs.
void UpstreamSession::answer_ack_request_soon() {
  if (ack_answer_timer_.active() || !conn_) return;
  h_at_ack_request_ = h_in_;
  ack_answer_timer_.start(kAckAnswerDelayMs, [this] {
    if (conn_ && state_ != State::Closed) send_ack();
  });
}

void UpstreamSession::send_ack() {
  conn_->send("<a xmlns='urn:xmpp:sm:3' h='" + std::to_string(h_in_) + "'/>");
}

// Calls the ack callbacks of every tracked stanza the upstream's h covers
// (mod 2^32). Callbacks may send (and track) more stanzas.
void UpstreamSession::release_tracked() {
  while (!tracked_.empty()) {
    const bool covered = !sm_requested_ || static_cast<int32_t>(h_acked_ - tracked_.front().h) >= 0;
    if (!covered) break;
    auto cb = std::move(tracked_.front().acked);
    tracked_.pop_front();
    if (cb) cb();
  }
}

void UpstreamSession::send_tracked(const Stanza& s, std::function<void()> acked) {
  if (state_ != State::Ready || !conn_) return;
  send(s);
  if (!sm_requested_) {
    if (acked) acked();
    return;
  }
  tracked_.push_back({h_out_, std::move(acked)});
  request_ack_soon();
}

void UpstreamSession::send(const Stanza& s) {
  if (state_ != State::Ready || !conn_) return;
  conn_->send(s);
  if (sm_requested_) ++h_out_;
}

void UpstreamSession::send_nonza(const Stanza& s) {
  if (state_ == State::Ready && conn_) conn_->send(s);
}

// Ack requests only for what waits on an ack, and one at a time. Only tracked stanzas (the
// outbox's messages, the link drain) need the upstream's h; an iq or a presence does not, and
// an <r/> after each of them made Prosody answer an <a/> for every set-up step of every login.
// While one <r/> is unanswered, what is sent meanwhile waits for its <a/>, which then asks
// again if tracked stanzas remain uncovered: under a pipelined burst that is one <r/> per round
// trip instead of one per loop turn (each costs the upstream a Lua handler and us a segment).
// (Prosody's mod_csi_simple flushes its queue at an <r/>; links never send it CSI, so the
// timing of an <r/> does not matter to it.) An <r/> unanswered for kAckRetryMs does not hold
// back the next send's request; an idle session's liveness <r/> gets its <a/> in any case.
// The request is made just before the connection flushes what this loop turn sent, so it goes
// out in the same write as the stanzas it covers (from a 0 ms timer before, it took a write of
// its own in the next turn).
void UpstreamSession::request_ack_soon() {
  if (!conn_ || conn_->before_flush_pending()) return;
  conn_->before_next_flush([this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) request_ack();
  });
}

void UpstreamSession::request_ack() {
  if (!conn_ || !sm_requested_ || tracked_.empty()) return;
  if (static_cast<int32_t>(h_acked_ - tracked_.back().h) >= 0) return;  // all covered
  const uint64_t now = uv_now(loop_);
  if (ack_requested_ && now - ack_requested_at_ < kAckRetryMs) return;  // its <a/> asks again
  ack_requested_ = true;
  ack_requested_at_ = now;
  conn_->send("<r xmlns='urn:xmpp:sm:3'/>");
}

void UpstreamSession::on_conn_stream_close() {
  fail_login(false, "temporary-auth-failure", "upstream closed the stream");
}

void UpstreamSession::on_conn_xml_error(const XmlError& e) {
  S2_LOG(LogLevel::Warn, "upstream.xml_error",
         {{"session", log_id_}, {"condition", e.condition}, {"text", e.text}});
  fail_login(false, "temporary-auth-failure", "upstream sent malformed XML");
}

void UpstreamSession::on_conn_closed(const std::string& reason) {
  conn_ = nullptr;
  live_timer_.stop();
  ack_answer_timer_.stop();
  if (state_ == State::Closed) return;
  if (state_ == State::Ready || state_ == State::Authenticated || state_ == State::Binding ||
      state_ == State::Session) {
    state_ = State::Closed;
    listener_->on_upstream_closed(stream_error_, reason);
  } else {
    fail_login(false, "temporary-auth-failure", "upstream unreachable: " + reason);
  }
}

void UpstreamSession::fail_login(bool rejected, const std::string& condition,
                                 const std::string& text) {
  if (state_ == State::Closed) return;
  if (state_ == State::Authenticated || state_ == State::Binding || state_ == State::Session ||
      state_ == State::Ready) {
    // Past SASL there is no login left to fail: the session ends, and the
    // device is told so (stream error), whatever upstream did wrong.
    terminate("", text);
    return;
  }
  state_ = State::Closed;
  login_timer_.stop();
  release_gate();
  (rejected ? m_logins_rejected() : m_logins_unavailable()).inc();
  S2_LOG(LogLevel::Info, "upstream.login_failed",
         {{"session", log_id_}, {"condition", condition}, {"text", text}});
  if (conn_) {
    conn_->detach();
    conn_ = nullptr;
  }
  listener_->on_upstream_login_failed(UpstreamFailure{rejected, condition, text});
}

void UpstreamSession::terminate(const std::string& stream_error, const std::string& text) {
  if (state_ == State::Closed) return;
  state_ = State::Closed;
  live_timer_.stop();
  ack_answer_timer_.stop();
  release_gate();
  if (conn_) {
    say_goodbye();
    conn_->detach();
    conn_ = nullptr;
  }
  listener_->on_upstream_closed(stream_error, text);
}

void UpstreamSession::retire(uv_loop_t* loop, std::unique_ptr<UpstreamSession> s) {
  if (!s) return;
  s->close();
  defer(loop, [gone = std::shared_ptr<UpstreamSession>(std::move(s))] {});
}

void UpstreamSession::close() {
  release_gate();
  if (state_ == State::Closed) return;
  state_ = State::Closed;
  login_timer_.stop();
  live_timer_.stop();
  ack_answer_timer_.stop();
  if (conn_) {
    say_goodbye();
    conn_->detach();
    conn_ = nullptr;
  }
}

// Our last <a/> and the end of the stream. Prosody treats every stanza still
// unacknowledged when a session without resumption ends as undelivered: it
// bounces it to its sender or puts it in offline storage.
// (Its callers stop ack_answer_timer_ first.)
void UpstreamSession::say_goodbye() {
  if (sm_enabled_) send_ack();
  conn_->send("</stream:stream>");
}

}  // namespace s2
