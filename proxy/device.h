// One device of an account: its upstream session (same resource as the
// device, so contacts see it and full-JID traffic works) and the proxy's
// client-side Stream Management state (XEP-0198).
//
// A Device outlives the TCP connection that created it when the client
// enabled resumption: it hibernates for the resumption window, keeps its
// upstream session up and queues (bounded) what arrives meanwhile; a client
// that resumes — on a legacy stream or inline in SASL2 — attaches to it again
// and gets every unacknowledged stanza retransmitted. Two SM states exist per
// device (PROTOCOLS.md §2): this one (client⇄proxy) and the UpstreamSession's
// own (proxy⇄upstream).
//
// Ownership: ProxyContext owns every Device (ctx.devices). A Device is
// attached to at most one DeviceClient (the ClientSession); both sides
// clear their pointers on detach.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/session2/sm.h"
#include "proxy/upstream_session.h"

namespace s2 {

class ProxyContext;

// What a Device needs from the client connection it is attached to.
class DeviceClient {
 public:
  virtual ~DeviceClient() = default;
  virtual void on_device_authenticated() = 0;
  virtual void on_device_login_failed(const UpstreamFailure& f) = 0;
  virtual void on_device_bound(const std::string& full_jid) = 0;
  virtual void on_device_bind_failed(const std::string& condition, const std::string& text) = 0;
  // Write to the client as is (stanzas already counted by the Device).
  virtual void device_write(const Stanza& s) = 0;
  // The device ended (upstream gone, SM violation, replaced): close the stream.
  virtual void on_device_ended(const std::string& condition, const std::string& text) = 0;
};

class Device : public UpstreamSession::Listener {
 public:
  // Creates a device owned by ctx; returned pointer stays valid until the
  // device ends (ProxyContext::remove_device).
  // `warm`: an upstream session pre-connected for this client (may be null
  // or no longer usable; then a new one is made).
  static Device* create(ProxyContext& ctx, DeviceClient* client, std::string log_id,
                        std::unique_ptr<UpstreamSession> warm = nullptr);
  ~Device() override;

  void login(const std::string& username, const UpstreamSecret& secret);
  void bind(const std::string& resource);
  UpstreamSession* upstream() const { return upstream_.get(); }
  const std::string& full_jid() const { return full_jid_; }
  const std::string& account() const { return account_; }
  const std::string& log_id() const { return log_id_; }

  // Stanza from the client (after bind).
  void from_client(Stanza s);
  void csi_from_client(const Stanza& s);
  // Bind2 inline <enable xmlns='urn:xmpp:carbons:2'/>: enabled upstream on
  // the device's behalf; the iq result is the proxy's, not the client's.
  void enable_carbons_inline();

  // ---- Stream Management, client side (XEP-0198) ----
  bool sm_enabled() const { return sm_.has_value(); }
  // Enables SM; returns the <enabled/> element to send (or <failed/>).
  Stanza enable_sm(const session2::SmEnable& req);
  // <r/> and <a/> from the client. False: SM violation, the caller ends the stream.
  void sm_request();
  bool sm_ack(uint32_t h, std::string* error_text);
  uint32_t sm_inbound_h() const { return sm_ ? sm_->inbound_h() : 0; }
  uint32_t sm_sent_count() const { return sm_ ? sm_->sent_count() : 0; }
  const std::string& sm_id() const { return sm_id_; }

  // Looks up a hibernating (or still attached) resumable device of `account`.
  static Device* find_resumable(ProxyContext& ctx, const std::string& sm_id,
                                const std::string& account);
  // Attaches a new connection to this device (XEP-0198 §5). Fills `resend`
  // with the stanzas to retransmit. False when the client's h is invalid.
  bool resume(DeviceClient* client, uint32_t client_h, std::vector<Stanza>* resend,
              std::string* error_text);

  // The client connection is gone: hibernate when resumable, else end.
  void detach(DeviceClient* client);
  // Ends the device: closes the upstream session, frees it (deferred).
  void end();

 private:
  Device(ProxyContext& ctx, DeviceClient* client, std::string log_id,
         std::unique_ptr<UpstreamSession> warm);

  // UpstreamSession::Listener
  void on_upstream_authenticated() override;
  void on_upstream_login_failed(const UpstreamFailure& f) override;
  void on_upstream_bound(const std::string& full_jid) override;
  void on_upstream_bind_failed(const std::string& condition, const std::string& text) override;
  void on_upstream_stanza(Stanza stanza) override;
  void on_upstream_closed(const std::string& stream_error, const std::string& text) override;

  void deliver(const Stanza& s);
  void request_ack_soon();
  void set_hibernating(bool on);
  void limit_hibernating_per_account();
  static constexpr size_t kMaxHibernatingPerAccount = 10;

  ProxyContext& ctx_;
  DeviceClient* client_;
  std::string log_id_;
  std::string account_;  // bare JID once bound
  std::string full_jid_;
  std::unique_ptr<UpstreamSession> upstream_;
  std::optional<session2::SmState> sm_;
  std::string sm_id_;
  bool sm_resumable_ = false;
  uint32_t resume_window_s_ = 300;
  bool ended_ = false;
  bool hibernating_ = false;
  uint64_t hibernated_at_ = 0;  // loop time (ms) when hibernation began
  Timer hibernate_timer_;
  Timer ack_timer_;
};

}  // namespace s2
