// One client TCP connection, the proxy in the server role (RFC 6120):
// stream header checks, STARTTLS (or direct TLS, XEP-0368), SASL PLAIN
// verified by an upstream login, resource binding through that upstream
// session, the legacy session iq, and then a transparent relay between the
// device and its own UpstreamSession.
//
// Everything a peer can get wrong ends in an XMPP error, never a crash:
// stream errors for XML and stream violations, SASL failures for credential
// problems, with a <text> saying what happened. Timers bound the time a peer
// may spend in TLS and before authenticating.
#pragma once

#include <memory>
#include <string>

#include "common/net/connection.h"
#include "proxy/upstream_session.h"

namespace s2 {

class ProxyContext;

class ClientSession : public Connection::Handler, public UpstreamSession::Listener {
 public:
  // `direct_tls`: the listener is XEP-0368 direct TLS (TLS from the first byte).
  static void accept(ProxyContext& ctx, uv_stream_t* server, bool direct_tls);

  // Graceful end for daemon shutdown: closes both streams.
  void shutdown(const std::string& condition, const std::string& text);
  const std::string& id() const { return id_; }

 private:
  enum class State { WaitStream, WaitStartTls, TlsHandshake, WaitAuth, Authenticating,
                     WaitBind, Binding, Bound, Closing };

  ClientSession(ProxyContext& ctx, bool direct_tls);
  ~ClientSession() override;

  // Connection::Handler
  void on_conn_tls_ready() override;
  void on_conn_stream_open(const StreamHeader& header) override;
  void on_conn_stanza(Stanza stanza) override;
  void on_conn_stream_close() override;
  void on_conn_xml_error(const XmlError& error) override;
  void on_conn_closed(const std::string& reason) override;

  // UpstreamSession::Listener
  void on_upstream_authenticated() override;
  void on_upstream_login_failed(const UpstreamFailure& f) override;
  void on_upstream_bound(const std::string& full_jid) override;
  void on_upstream_bind_failed(const std::string& condition, const std::string& text) override;
  void on_upstream_stanza(Stanza stanza) override;
  void on_upstream_closed(const std::string& stream_error, const std::string& text) override;

  void send_header();
  void send_features();
  void handle_auth(const Stanza& auth);
  void sasl_failure(const std::string& condition, const std::string& text);
  void handle_iq_before_bound(const Stanza& iq);
  void relay_to_upstream(Stanza stanza);
  void stanza_error(const Stanza& original, const std::string& type,
                    const std::string& condition, const std::string& text);
  void stream_error(const std::string& condition, const std::string& text);
  void close_stream();
  void destroy_upstream();

  ProxyContext& ctx_;
  std::string id_;
  Connection* conn_ = nullptr;
  std::unique_ptr<UpstreamSession> upstream_;
  State state_ = State::WaitStream;
  bool direct_tls_;
  bool secure_ = false;
  bool authenticated_ = false;
  bool header_sent_ = false;
  std::string username_;  // node part of the authenticated account
  std::string full_jid_;
  std::string pending_bind_id_;
  Timer tls_timer_;
  Timer auth_timer_;
};

}  // namespace s2
