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
// What the client sees is decided per delivery: every stanza is classified
// once (delivery_urgency.h) and, while the client said CSI <inactive/>, the
// Silent ones wait in the device's CsiQueue (csi_queue.h). SM counts only
// what was written: held stanzas enter the SM queue when they are flushed.
// CSI state and the held stanzas survive hibernation and resumption (it is
// session state, like Carbons); a flush while hibernating goes into the SM
// queue as any delivery does. When the device ends, held stanzas are dropped:
// the persistent ones are in the mirror and the next session catches up.
//
// Ownership: ProxyContext owns every Device (ctx.devices). A Device is
// attached to at most one DeviceClient (the ClientSession); both sides
// clear their pointers on detach.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/session2/sm.h"
#include "common/store/store.h"
#include "policies/route.h"
#include "proxy/csi_queue.h"
#include "proxy/delivery_urgency.h"
#include "proxy/upstream_session.h"

namespace s2 {

class ProxyContext;
class AccountHub;

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
  // Bytes written but not yet taken by the client's socket (catch-up pacing).
  virtual size_t device_write_backlog() const = 0;
  // Flow control toward the client: stop / resume reading its socket (the
  // upstream path is not taking its stanzas as fast as it sends them).
  virtual void device_set_reading(bool on) = 0;
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

  // Logs in upstream as `account` (bare JID) with the vault's or the client's secret.
  void login(const std::string& account, const UpstreamSecret& secret);
  // A client verified here (FAST, SCRAM) whose resource is known before the login (SASL2 with
  // Bind2 and a user-agent id): when the anchor keeps this device's link (docs/architecture.md
  // §26), there is no upstream login at all: authenticated on the next loop turn, and bind()
  // takes the kept link back. False: no kept link for it (the caller logs in as usual).
  bool login_kept(const std::string& account, const std::string& resource,
                  const UpstreamSecret& secret);
  // Binds `resource` upstream; a link the anchor kept for that resource is taken back instead.
  void bind(const std::string& resource);
  UpstreamSession* upstream() const { return upstream_.get(); }
  const std::string& full_jid() const { return full_jid_; }
  const std::string& account() const { return account_; }
  const std::string& log_id() const { return log_id_; }
  const std::string& resource() const { return resource_; }
  // What this device knows that a stanza's XML does not say (urgency at delivery).
  DeliveryView delivery_view() const;

  // Session profile (ARCHITECTURE.md §7): Bind2 devices are session2.
  policy::Profile profile() const { return profile_; }
  void set_profile(policy::Profile p) { profile_ = p; }
  // XEP-0280, served by the proxy (the hub copies to devices that asked).
  bool carbons() const { return carbons_; }
  void set_carbons(bool on) { carbons_ = on; }
  // The device's own broadcast presence (the anchor mirrors the best one).
  bool presence_available() const { return presence_available_; }
  const std::string& presence_show() const { return presence_show_; }
  const std::string& presence_status() const { return presence_status_; }
  // The last available broadcast presence as the client sent it (caps, avatar hash, nick,
  // idle…): the presence the upstream shows for a link the anchor rides. Null when unavailable.
  const Stanza& presence_stanza() const { return presence_stanza_; }
  void set_presence_stanza(Stanza p) { presence_stanza_ = std::move(p); }
  void set_presence(bool available, std::string show, std::string status) {
    presence_available_ = available;
    presence_show_ = std::move(show);
    presence_status_ = std::move(status);
  }
  // Live delivery of history: on once the device caught up (legacy: at its
  // initial presence; session2: at bind). Archive ids ≤ live_from() were in
  // the catch-up and are not delivered again.
  bool live() const { return live_; }
  store::ArchiveId live_from() const { return live_from_; }
  void set_live(store::ArchiveId from) {
    live_ = true;
    live_from_ = from;
    pre_live_.clear();
  }
  // Archived messages delivered before the device went live (addressed to it).
  void note_pre_live(store::ArchiveId id) {
    if (pre_live_.size() < 10000) pre_live_.insert(id);
  }
  bool pre_live(store::ArchiveId id) const { return pre_live_.count(id) != 0; }
  // Legacy catch-up in progress (paced by the client's acks or reads):
  // archive ids up to catchup_cursor() have been written.
  bool catching_up() const { return catching_up_; }
  store::ArchiveId catchup_cursor() const { return catchup_cursor_; }
  void set_catchup(bool on, store::ArchiveId cursor) {
    catching_up_ = on;
    catchup_cursor_ = cursor;
  }
  // How many more catch-up stanzas the device can take now: half the SM
  // queue minus what is unacknowledged, or (no SM) a chunk when the socket
  // has drained.
  size_t catchup_room() const;
  // Stanzas that still fit in the SM queue (SIZE_MAX without SM).
  size_t queue_room() const;
  bool ended() const { return ended_; }
  // No client connection: waiting for an SM resumption (XEP-0198), its stanzas queued.
  bool hibernating() const { return hibernating_; }
  // The offline watermark when the device bound (its cursor if it is new).
  void set_first_cursor(store::ArchiveId id) { first_cursor_ = id; }
  store::ArchiveId first_cursor() const { return first_cursor_; }
  // Calls `more` once there is room again (polled; stops when the device ends).
  void poll_catchup(std::function<void()> more);
  // Ends the device with a stream error to its client (nothing more is
  // acknowledged: the client resends what it sent after its last <a/>).
  void abort(const std::string& condition, const std::string& text);
  // Alive while this Device object is (for deferred work that names it).
  std::weak_ptr<bool> alive_token() const { return alive_; }
  uint64_t serial() const { return serial_; }
  // Delivers a stanza to the client: classified by urgency, held while the
  // client is CSI-inactive and the stanza is Silent, else written (after
  // what was held) and queued for SM; `archive_id` is reported to the hub
  // once the client acknowledged it.
  void deliver(const Stanza& s, store::ArchiveId archive_id);

  // Stanza from the client (after bind).
  void from_client(Stanza s);
  // XEP-0352 <active/> / <inactive/> (top-level or inline in Bind2): served
  // by the proxy, never forwarded upstream.
  void csi_from_client(const Stanza& s);
  bool csi_inactive() const { return csi_.inactive(); }
  size_t csi_held() const { return csi_.size(); }
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

  void request_ack_soon();
  void handled(uint64_t seq);
  // Resend keys (XEP-0198 §4: a client resends what it has not seen
  // acknowledged, in its resumed or next session). `key` of a message this
  // device sent: true when it is such a copy of a message already taken.
  bool is_resent_copy(const std::string& key);
  // The client was told (an <a/> or <resumed/>) that everything counted so
  // far is handled: it will not resend those; their keys are forgotten.
  void announce_handled();
  // Flow control: stop reading the client while what it sent waits (upstream
  // write backlog, commits in flight); resume below the low-water mark.
  void apply_backpressure();
  bool under_pressure(bool resuming) const;
  store::ArchiveId archive_id_in(const Stanza& s) const;
  // Writes to the client now (SM counts it).
  void write_out(const Stanza& s, store::ArchiveId archive_id);
  // Writes held stanzas, in order, each with a <delay/> of when it was held.
  void flush_held(std::vector<CsiQueue::Item> items, CsiQueue::FlushReason reason);
  // The nick this device uses in a room (presence to room/nick), for mentions.
  void note_room_presence(const Stanza& presence);
  void set_hibernating(bool on);
  void limit_hibernating_per_account();
  static constexpr size_t kMaxHibernatingPerAccount = 10;

  ProxyContext& ctx_;
  DeviceClient* client_;
  std::string log_id_;
  std::string account_;  // bare JID once bound
  std::string full_jid_;
  std::string resource_;
  AccountHub* hub_ = nullptr;
  policy::Profile profile_ = policy::Profile::Legacy;
  bool carbons_ = false;
  bool presence_available_ = false;
  std::string presence_show_, presence_status_;
  Stanza presence_stanza_;
  CsiQueue csi_;
  std::map<std::string, std::string> room_nicks_;  // room bare JID (lower case) → nick
  // Where the client sent directed available presence (rooms, contacts): told unavailable when
  // the link outlives the device (the anchor keeps it), as the upstream does at a stream's end.
  std::set<std::string> directed_presence_;
  void leave_directed_presence();
  std::string login_account_;                      // bare JID the device logs in as
  std::optional<UpstreamSecret> deferred_secret_;  // login_kept: for a login after all
  std::string bind_after_login_;                   // that login's resource
  bool live_ = false;
  store::ArchiveId live_from_ = 0;
  std::set<store::ArchiveId> pre_live_;
  bool catching_up_ = false;
  store::ArchiveId catchup_cursor_ = 0;
  store::ArchiveId first_cursor_ = 0;
  uint64_t serial_ = 0;
  // Client stanzas in arrival order; SM counts the prefix the hub handled.
  uint64_t in_seq_ = 0, next_handled_ = 0, sm_base_ = 0;
  std::set<uint64_t> handled_ahead_;
  std::map<uint64_t, std::string> seq_keys_;      // resend key of each stanza not yet counted
  std::vector<std::string> counted_keys_;         // counted, not yet announced to the client
  std::multiset<std::string> own_keys_;           // sent in this session, not yet announced
  std::multiset<std::string> resend_candidates_;  // unannounced at a resumption
  bool reading_paused_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
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
  Timer catchup_timer_;
  Timer pressure_timer_;
};

}  // namespace s2
