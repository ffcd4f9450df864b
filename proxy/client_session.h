// One client TCP connection, the proxy in the server role (RFC 6120):
// stream header checks, STARTTLS (or direct TLS, XEP-0368), authentication
// (SASL1, or SASL2 with Bind2 and inline SM — sasl2_login.cpp), resource
// binding through the device's upstream session, the legacy session iq,
// Stream Management nonzas, and then the relay between the client and its
// Device.
//
// Everything a peer can get wrong ends in an XMPP error, never a crash:
// stream errors for XML and stream violations, SASL failures for credential
// problems, with a <text> saying what happened. Timers bound the time a peer
// may spend in TLS and before authenticating.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/crypto/encoding.h"
#include "common/crypto/scram.h"
#include "common/net/connection.h"
#include "common/session2/sasl2.h"
#include "policies/input_rate.h"
#include "proxy/device.h"

namespace s2 {

class ProxyContext;

class ClientSession : public Connection::Handler, public DeviceClient {
 public:
  // `direct_tls`: the listener is XEP-0368 direct TLS (TLS from the first byte).
  static void accept(ProxyContext& ctx, uv_stream_t* server, bool direct_tls);

  // Graceful end for daemon shutdown: closes the stream.
  void shutdown(const std::string& condition, const std::string& text);
  const std::string& id() const { return id_; }

 private:
  enum class State {
    WaitProxyHeader,  // a --proxy-protocol listener: the balancer's header comes first
    WaitStream,
    WaitStartTls,
    TlsHandshake,
    WaitAuth,
    Authenticating,
    WaitBind,
    Binding,
    Bound,
    Closing
  };

  ClientSession(ProxyContext& ctx, bool direct_tls);
  ~ClientSession() override;

  // Connection::Handler
  void on_conn_proxy_header(const proxyproto::Header& header) override;
  void on_conn_bytes_read(size_t n) override;
  void on_conn_tls_ready() override;
  void on_conn_stream_open(const StreamHeader& header) override;
  void on_conn_stanza(Stanza stanza) override;
  void on_conn_stream_close() override;
  void on_conn_xml_error(const XmlError& error) override;
  void on_conn_closed(const std::string& reason) override;

  // DeviceClient
  void on_device_authenticated() override;
  // The account is served by another node (cluster.h): see-other-host.
  void redirect_to_owner(const std::string& address, const std::string& node);
  void on_device_login_failed(const UpstreamFailure& f) override;
  void on_device_bound(const std::string& full_jid) override;
  void on_device_bind_failed(const std::string& condition, const std::string& text) override;
  void device_write(const Stanza& s) override;
  size_t device_write_backlog() const override;
  void device_set_reading(bool on) override;
  void on_device_ended(const std::string& condition, const std::string& text) override;

  // stream
  void start_tls_timer();
  void send_header();
  void send_features();
  std::string post_auth_features() const;
  void stream_error(const std::string& condition, const std::string& text);
  void close_stream();
  void stanza_error(const Stanza& original, const std::string& type, const std::string& condition,
                    const std::string& text);

  // SASL1 (RFC 6120 §6)
  void handle_sasl1(const Stanza& s);
  void sasl1_failure(const std::string& condition, const std::string& text);
  // Common to SASL1 and SASL2 (auth_common.cpp): PLAIN verified by an
  // upstream login; SCRAM verified locally against the vault; then the
  // upstream login with the vault's secret.
  bool start_plain_login(const std::string& message, std::string* condition, std::string* text);
  bool start_scram(const std::string& mechanism, const std::string& client_first,
                   std::string* challenge, std::string* condition, std::string* text);
  bool finish_scram(const std::string& client_final, std::string* condition, std::string* text);
  bool login_with_vault(std::string* condition, std::string* text);
  std::optional<std::string> account_for(const std::string& authcid) const;
  bool throttled(const std::string& account, std::string* text) const;
  void record_auth_failure();
  void record_auth_success();
  void end_login_attempt();
  // Per-address limits (auth_common.cpp): a SASL <auth>/<authenticate> takes
  // a login slot of its address first, or waits for one (held, reading
  // paused) until end_login_attempt() of another session hands it over.
  bool gate_login(Stanza& s);
  void resume_queued_login();
  static void grant_login_slot(ProxyContext& ctx, uint64_t ticket);
  // Unauthenticated connections per address and in all: counted from
  // admission to authenticated or closed.
  bool admit_preauth();
  void leave_preauth();
  void log_accepted();
  std::vector<std::string> offered_mechanisms() const;
  void auth_failure(const std::string& condition, const std::string& text);

  // SASL2 + Bind2 + inline SM (sasl2_login.cpp)
  void handle_sasl2(const Stanza& s);
  void sasl2_failure(const std::string& condition, const std::string& text);
  bool start_fast(const std::string& initial, std::string* condition, std::string* text);
  bool sasl2_resume();
  void continue_sasl2();
  // The resource Bind2 will bind for this <authenticate> (derived from its tag and user-agent id).
  std::optional<std::string> sasl2_bind_resource() const;
  void send_sasl2_success(session2::Success ok, bool then_features);
  void finish_sasl2_bound(const std::string& full_jid);
  session2::AuthenticationFeature sasl2_offer() const;

  // Bind, session iq, SM nonzas
  void handle_iq_before_bound(const Stanza& iq);
  void handle_sm(const Stanza& s);
  bool try_resume(const session2::SmResume& r, std::vector<Stanza>* resend, Stanza* answer);

  void drop_device();
  void maybe_preconnect();

  ProxyContext& ctx_;
  std::string id_;
  Connection* conn_ = nullptr;
  Device* device_ = nullptr;
  // Upstream session connected ahead of authentication (see preconnect()).
  std::unique_ptr<UpstreamSession> prewarm_;
  bool prewarm_counted_ = false;  // counted in ctx.prewarmed until this session ends
  static constexpr int kMaxPrewarmed = 256;
  State state_ = State::WaitStream;
  bool direct_tls_;
  bool secure_ = false;
  bool authenticated_ = false;
  bool header_sent_ = false;
  std::string account_;  // bare JID being / having been authenticated
  std::string full_jid_;
  std::string pending_bind_id_;
  std::string stream_from_;   // bare JID the client named in its stream header
  bool vault_known_ = false;  // … and the vault holds credentials for it (SCRAM offered)
  crypto::SecretString pending_password_;  // PLAIN: kept until upstream accepted it (vault)
  std::unique_ptr<crypto::ScramServer> scram_;
  std::string success_data_;
  bool hold_writes_ = false;  // device output waits for a pending SASL2 <success>
  std::string held_;          // SCRAM server-final / FAST responder HMAC
  bool via_vault_ = false;
  bool login_in_flight_ = false;  // holds a login slot of ctx.login_gate (key login_key_)
  std::string login_key_;
  bool login_queued_ = false;          // waiting in ctx.login_gate for a slot
  bool login_refused_ = false;         // the queue was full: throttled() refuses this attempt
  std::optional<Stanza> queued_auth_;  // the <auth>/<authenticate> waiting for a slot
  std::vector<Stanza> queued_after_;   // stanzas that arrived behind it (few: clients wait)
  bool preauth_counted_ = false;       // counted in ctx.preauth under preauth_key_
  std::string preauth_key_;
  bool proxy_protocol_ = false;  // the listener expects a PROXY header first
  uint64_t seq_ = 0;             // unique per session: the login gate's ticket
  std::string peer_;  // the client's address (for counters after close)    // the upstream login
                      // used the vault's secret
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for async callbacks
  std::optional<session2::Authenticate> sasl2_;                 // the SASL2 request being served
  std::vector<Stanza> sasl2_extra_;                             // answers collected for <success/>
  Timer tls_timer_;
  Timer auth_timer_;
  // Flood control (policies/input_rate.h): bytes pace reading, a sustained
  // stanza rate over the ceiling ends the stream.
  policy::InputRate input_rate_;
  Timer rate_timer_;
};

}  // namespace s2
