// One session to the legacy server in the client role (RFC 6120 §4–§7),
// logged in as the user: connect, STARTTLS or direct TLS, SASL (SCRAM-SHA-256,
// SCRAM-SHA-1, PLAIN in that order of preference), bind with the device's
// resource, optional legacy session iq, XEP-0198 enable; then it relays
// stanzas both ways and keeps the upstream SM counters (answers <r/>, asks
// for acks).
//
// The device's credentials are verified by this login: SASL success upstream
// is what lets the proxy say <success/> to the device (ARCHITECTURE.md §6).
// The login is split in two steps because SASL1 clients authenticate before
// they name their resource: login() stops after SASL, bind() completes it.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "common/net/connection.h"
#include "proxy/credential_vault.h"

namespace s2 {

class KeyDeriver;
class UpstreamLoginGate;

struct UpstreamParams {
  std::string host;  // resolved on every connect
  int port = 0;
  std::string domain;
  enum class Tls { StartTls, Direct, Plain } tls = Tls::StartTls;
  SSL_CTX* ssl_ctx = nullptr;  // client context (verification policy inside)
  double timeout_s = 15;       // whole login, connect to bound
  Connection::Options conn;
  // SCRAM with a password: Hi() from this memo or on its thread pool, never
  // on the loop (nullptr: computed inline, for tests).
  KeyDeriver* kdf = nullptr;
  // Upstream logins in arrival order at a bounded pace (upstream_login_gate.h); nullptr: at once.
  UpstreamLoginGate* login_gate = nullptr;
  // Liveness (--upstream-ping-interval): a bound session that heard nothing
  // for this long sends a probe (SM <r/>, else an XEP-0199 ping); one more
  // silent interval and the connection is given up as dead, like a closed one
  // (a cut without FIN otherwise hangs for as long as TCP retransmits). 0: off.
  double ping_interval_s = 60;
};

struct UpstreamFailure {
  // True when the upstream answered the credentials with a SASL failure
  // (the device gets the same condition); false when it could not be reached
  // or misbehaved (the device gets temporary-auth-failure).
  bool rejected = false;
  std::string condition;  // SASL condition when rejected
  std::string text;
};

class UpstreamSession : public Connection::Handler {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void on_upstream_authenticated() = 0;
    virtual void on_upstream_login_failed(const UpstreamFailure& f) = 0;
    virtual void on_upstream_bound(const std::string& full_jid) = 0;
    virtual void on_upstream_bind_failed(const std::string& condition, const std::string& text) = 0;
    virtual void on_upstream_stanza(Stanza stanza) = 0;
    // The session ended after login; `stream_error` is the upstream's stream
    // error condition when it sent one ("" otherwise).
    virtual void on_upstream_closed(const std::string& stream_error, const std::string& text) = 0;
  };

  UpstreamSession(uv_loop_t* loop, const UpstreamParams& params, Listener* listener,
                  std::string log_id);
  ~UpstreamSession() override;

  // Connects, secures the stream and reads the SASL features ahead of
  // login(), so that login() is one SASL exchange away (session2 logins of
  // accounts the vault knows: the client's one round trip should not wait
  // for an upstream TCP + TLS setup). Failures are reported as login
  // failures; usable() tells whether login() may still be called.
  void preconnect();
  bool usable() const { return state_ != State::Closed; }
  void set_listener(Listener* l) { listener_ = l; }
  // Starts connect + TLS + SASL as `username` (node part) with a password or
  // a stored SCRAM SaltedPassword from the vault.
  void login(const std::string& username, const UpstreamSecret& secret);
  // After a password login: the secret the vault should keep (SaltedPassword
  // when SCRAM was used, else the password). Valid once authenticated.
  const UpstreamSecret& learned_secret() const { return learned_; }
  // After on_upstream_authenticated: binds `resource` ("" lets the server pick).
  void bind(const std::string& resource);
  void send(const Stanza& s);
  // Sends a stanza and calls `acked` once the upstream acknowledged it with
  // XEP-0198 (at once when the upstream has no SM: the TCP write is all we
  // can know). Never called when the session closes first: the caller keeps
  // the stanza (outbox) and resends it elsewhere.
  void send_tracked(const Stanza& s, std::function<void()> acked);
  // Number of tracked stanzas not acknowledged yet.
  size_t unacked_tracked() const { return tracked_.size(); }
  // Bytes written but not yet taken by the upstream's socket (flow control:
  // what feeds this session pauses above a high-water mark).
  size_t write_backlog() const { return conn_ ? conn_->write_queue_bytes() : 0; }
  // Top-level elements that are not stanzas (CSI): not counted by SM.
  void send_nonza(const Stanza& s);
  bool offers_csi() const { return offers_csi_; }
  // Sends </stream:stream> and closes; no more callbacks.
  void close();
  // Closes `s` now and frees it on the next loop turn: its own callback may be on the stack.
  static void retire(uv_loop_t* loop, std::unique_ptr<UpstreamSession> s);

  bool ready() const { return state_ == State::Ready; }
  // Unique per session in this process (outbox entries remember which
  // session carries them; a pointer could be reused).
  uint64_t serial() const { return serial_; }
  const std::string& full_jid() const { return full_jid_; }
  uint32_t stanzas_in() const { return h_in_; }
  uint32_t stanzas_acked() const { return h_acked_; }

  class Mechanism;  // client SASL mechanism (PLAIN, SCRAM)

 private:
  enum class State {
    Connecting,
    WaitFeatures,
    StartTls,
    Prepared,  // pre-connected: features read, waiting for login()
    Authenticating,
    WaitPostAuthFeatures,
    Authenticated,
    Binding,
    Session,
    Ready,
    Closed
  };

  // Connection::Handler
  void on_conn_connected() override;
  void on_conn_tls_ready() override;
  void on_conn_stream_open(const StreamHeader& header) override;
  void on_conn_stanza(Stanza stanza) override;
  void on_conn_stream_close() override;
  void on_conn_xml_error(const XmlError& error) override;
  void on_conn_closed(const std::string& reason) override;

  void open_stream();
  void on_features(const Stanza& features);
  void start_sasl(const Stanza& mechanisms);
  void on_sasl(const Stanza& s);
  void begin_login();
  void release_gate();
  void derive_then_respond();
  void send_sasl_response(const std::optional<std::string>& reply);
  void finish_login_step();
  void on_iq_result(const Stanza& iq);
  void handle_sm(const Stanza& s);
  void request_ack_soon();
  void fail_login(bool rejected, const std::string& condition, const std::string& text);
  void terminate(const std::string& stream_error, const std::string& text);

  uv_loop_t* loop_;
  uint64_t serial_;
  UpstreamParams params_;
  Listener* listener_;
  std::string log_id_;
  Connection* conn_ = nullptr;
  State state_ = State::Connecting;
  std::string username_;
  UpstreamSecret secret_;
  UpstreamSecret learned_;
  std::unique_ptr<Mechanism> mech_;
  bool tls_done_ = false;
  bool have_credentials_ = false;
  Stanza prepared_mechanisms_;
  bool offers_session_ = false;
  bool offers_sm_ = false;
  bool offers_csi_ = false;
  bool sm_enabled_ = false;
  bool sm_requested_ = false;  // <enable/> sent: the upstream counts from there
  struct Tracked {
    uint32_t h;  // h_out_ after this stanza
    std::function<void()> acked;
  };
  std::deque<Tracked> tracked_;
  void release_tracked();
  uint32_t h_in_ = 0;     // XEP-0198 §4: stanzas handled from upstream, mod 2^32
  uint32_t h_out_ = 0;    // stanzas sent upstream since enable
  uint32_t h_acked_ = 0;  // last h the upstream acknowledged
  std::string bind_resource_;
  std::string full_jid_;
  std::string stream_error_, stream_error_text_;
  Timer login_timer_;
  void request_ack();
  bool ack_requested_ = false;  // an <r/> is out, its <a/> not in yet
  uint64_t ack_requested_at_ = 0;
  static constexpr uint64_t kAckRetryMs = 5000;
  Timer live_timer_;  // see UpstreamParams::ping_interval_s
  // The upstream's <r/>, answered a little later (answer_ack_request_soon).
  void answer_ack_request_soon();
  void send_ack();  // <a h='h_in_'/>
  void say_goodbye();
  Timer ack_answer_timer_;         // runs while an answer is pending
  uint32_t h_at_ack_request_ = 0;  // h_in_ when the pending <r/> came
  static constexpr uint64_t kAckAnswerDelayMs = 100;
  static constexpr uint32_t kAckAnswerEvery = 128;
  uint64_t probes_ = 0;
  static constexpr const char* kLivenessIdPrefix = "s2-live-";
  bool heard_ = false;  // bytes arrived since the last liveness tick
  bool probe_outstanding_ = false;
  void on_conn_bytes_read(size_t n) override;
  void start_liveness();
  void liveness_tick();
  uint64_t gate_ticket_ = 0;  // upstream_login_gate.h: held from login() to authenticated
  bool deriving_ = false;     // SCRAM: waiting for Hi() from the thread pool
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace s2
