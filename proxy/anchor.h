// The anchor (ARCHITECTURE.md §3): one always-on upstream session per known
// account, resource `s2proxy` by default, logged in with the vault's secret.
// It is the account's single upstream path for bare-JID traffic — device
// links advertise priority −1 — and, with Carbons enabled, it hears what
// reaches the account's other resources and what its non-proxy clients send.
//
// Order after bind (PROTOCOLS.md §7): Carbons first (or live messages slip
// past between presence and MAM), then presence (which also releases the
// upstream's offline storage to us), then the owner pages MAM from the sync
// cursor through query_mam(). The anchor answers what the server and
// contacts ask of it (ping, disco, roster pushes) and never hands those to
// devices. It reconnects with backoff when the upstream goes away; a
// rejected login means the password changed upstream, which the owner
// handles (vault invalidation) — no retry then.
//
// Riding a device's link (issue 12 item 3, docs/architecture.md §22): while an account's only
// device is attached and the anchor has no bound session of its own, the anchor takes that
// device's link as its session (adopt): Carbons and priority 0 there, the catch-up and the
// anchor's requests through it. The account then costs the upstream one session, as a direct
// client would. The device keeps owning the link; when it ends, the anchor lets go (release)
// and logs in a session of its own, while the hub keeps the old link open until that one is
// ready, so that bare-JID traffic always has a path. The reverse (move_onto): an anchor with a
// ready session of its own whose account has had one device attached for a while moves onto
// that device's link, and the owner keeps the old session open until the anchor is ready there
// (make-before-break again), so one session per single-device account is the steady state, not
// only the state after a first login.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/mam/mam_result.h"
#include "common/net/connection.h"
#include "policies/archive_timing.h"
#include "proxy/upstream_session.h"

namespace s2 {

class ProxyContext;

class Anchor : public UpstreamSession::Listener {
 public:
  class Owner {
   public:
    virtual ~Owner() = default;
    // Bound: from now on live stanzas may arrive (offline storage is
    // flushed at our presence); hold them until the catch-up.
    virtual void on_anchor_bound() = 0;
    // Carbons enabled (or refused), presence sent, MAM support known.
    virtual void on_anchor_ready() = 0;
    // A stanza for the account that is not the anchor's own business.
    virtual void on_anchor_stanza(Stanza s) = 0;
    // The session `serial` is gone (or stopped); stanzas it carried and
    // did not get acknowledged must go out again.
    virtual void on_anchor_down(uint64_t serial) = 0;
    // The upstream refused the vault's secret (password changed).
    virtual void on_anchor_rejected() = 0;
  };

  struct MamAnswer {
    bool ok = false;
    std::string error_condition;  // when !ok: the iq error condition ("" = no answer)
    std::vector<mam::MamResultItem> items;
    mam::FinInfo fin;
  };

  Anchor(ProxyContext& ctx, Owner* owner, std::string account);
  ~Anchor() override;

  void start();
  void stop();
  bool ready() const { return ready_; }
  const std::string& full_jid() const { return full_jid_; }
  // The session the anchor speaks through: its own, or the device link it rides.
  UpstreamSession* session() const { return borrowed_ ? borrowed_ : session_.get(); }

  // Rides `link` (a device's bound link) instead of a session of its own; a login of its own
  // that has not bound yet is abandoned. Only while the anchor has no bound session.
  bool can_adopt() const { return !borrowed_ && full_jid_.empty(); }
  void adopt(UpstreamSession* link);
  bool riding(const UpstreamSession* link) const { return link && borrowed_ == link; }
  bool riding() const { return borrowed_ != nullptr; }
  // Riding a link it moved onto from a session of its own (move_onto), which stayed up until
  // the anchor was ready there: no gap in what it heard.
  bool moved() const { return borrowed_ != nullptr && moved_; }
  // A ready session of its own with nothing waiting on it (no set-up, MAM page, request or
  // iq answer): it can move onto a device's link without failing anything.
  bool can_move() const {
    return !borrowed_ && session_ && ready_ && pending_iqs_.empty() && mam_.empty() &&
           requests_.empty();
  }
  // Moves from its own session onto `link` (a lone device's bound link) and sets up there as
  // after a bind. Returns the old session, which the owner keeps open, its traffic the
  // account's, until the anchor is ready on the link; null when it cannot move.
  std::unique_ptr<UpstreamSession> move_onto(UpstreamSession* link);
  // The device link it rides is going away: what waited on it fails (as when a session goes
  // down) and a session of its own logs in at once.
  void release();
  // The device whose link it rides ended (docs/architecture.md §26): the link becomes the
  // anchor's own session, same upstream session and resource, nothing re-set-up and no login.
  // Its presence becomes the anchor's own (idle, no device caps) at the next update. Only for
  // the link it rides; `link` must be ready.
  void keep(std::unique_ptr<UpstreamSession> link);
  // Its own session is a kept device link bound to `resource`: a device binding that resource
  // takes it back (give_back) and the anchor rides it again, without a login upstream.
  bool keeps(const std::string& resource) const;
  // Hands the kept link to the device binding `resource`; null when it keeps none for it. The
  // anchor rides it from now on; what waits on it (set-up, MAM pages, requests) goes on, since
  // the answers come on the same session (the hub passes them through intercept).
  std::unique_ptr<UpstreamSession> give_back(const std::string& resource);
  // A stanza that arrived on the ridden link: true when it was the anchor's own (answers to
  // its requests, its MAM results), which the device never sees.
  bool intercept(Stanza& s);

  // The presence the account shows through the anchor (show/status of the
  // best device, or the idle presence); sent now when ready, else after
  // login. An empty `show` with `available` false sends unavailable.
  // True when it was sent now.
  bool set_presence(bool available, const std::string& show, const std::string& status);
  // On a ridden link the upstream shows that device's resource, so its presence is the device's
  // own broadcast presence with all the client put in it (entity caps, avatar hash, nick), at
  // priority 0; null: the device has none (then the presence above, built by the anchor).
  // Forgotten when the anchor leaves the link.
  void set_ridden_presence(Stanza p) { ridden_presence_ = std::move(p); }
  // Sends the account's presence again (when ready).
  void resend_presence() {
    if (ready_)
      send_presence();
    else
      presence_owed_ = true;  // sent at the owner's update when ready (set_presence)
  }

  // One MAM page from the upstream archive of the account.
  void query_mam(const mam::ClientQuery& q, std::function<void(MamAnswer)> done);
  // An iq to another entity (a XEP-0357 app server, a pubsub service), sent from the anchor's
  // full JID: `done` gets the answer — a result or error from `iq`'s `to` (an answer without
  // 'from' when `to` is the account's bare JID: its PEP; or an error our own server generated on
  // its behalf) — or nullptr when there is none within `timeout_ms` or the
  // session ends first. Called once, never from inside request().
  void request(Stanza iq, uint64_t timeout_ms, std::function<void(const Stanza*)> done);
  // Whether the upstream advertises MAM (disco#info on the account); unknown
  // until ready.
  std::optional<bool> upstream_has_mam() const { return has_mam_; }
  // Whether the upstream archives before it delivers (policies/archive_timing.h); MaybeLate
  // until ready.
  policy::ArchiveTiming upstream_archive_timing() const { return archive_timing_; }

 private:
  // UpstreamSession::Listener
  void on_upstream_authenticated() override;
  void on_upstream_login_failed(const UpstreamFailure& f) override;
  void on_upstream_bound(const std::string& full_jid) override;
  void on_upstream_bind_failed(const std::string& condition, const std::string& text) override;
  void on_upstream_stanza(Stanza stanza) override;
  void on_upstream_closed(const std::string& stream_error, const std::string& text) override;

  void after_bind();
  void reset_session_state();
  bool take_answer(Stanza& s);
  void send_iq(Stanza iq, std::function<void(const Stanza&)> answer);
  void answer_iq(const Stanza& iq);
  void send_presence();
  void went_down(const std::string& why);
  void schedule_reconnect();
  void retire_session();
  void end_session();

  ProxyContext& ctx_;
  Owner* owner_;
  std::string account_;
  std::string log_id_;
  std::unique_ptr<UpstreamSession> session_;
  UpstreamSession* borrowed_ = nullptr;  // a device's link, owned by the device
  bool moved_ = false;                   // borrowed_ came from move_onto
  bool kept_ = false;                    // session_ is a device's link it kept (keep)
  bool presence_owed_ = false;           // send the presence at the next set_presence
  bool ready_ = false;
  bool stopped_ = false;
  std::string full_jid_;
  std::optional<bool> has_mam_;
  policy::ArchiveTiming archive_timing_ = policy::ArchiveTiming::MaybeLate;
  void become_ready(bool mam, policy::ArchiveTiming timing, const char* known_from);
  static constexpr uint64_t kMamKnowledgeTtlMs = 10 * 60 * 1000;
  uint64_t iq_seq_ = 0;
  std::unordered_map<std::string, std::function<void(const Stanza&)>> pending_iqs_;
  struct PendingMam {
    std::function<void(MamAnswer)> done;
    MamAnswer answer;
    std::string iq_id;
    std::shared_ptr<Timer> timeout;
  };
  void fail_mam(const std::string& queryid, const std::string& condition);
  static constexpr uint64_t kMamTimeoutMs = 30000;
  std::unordered_map<std::string, PendingMam> mam_;  // by queryid
  struct PendingRequest {
    std::string to;
    std::function<void(const Stanza*)> done;
    std::shared_ptr<Timer> timeout;
  };
  void finish_request(const std::string& id, const Stanza* answer);
  std::unordered_map<std::string, PendingRequest> requests_;  // by iq id
  bool presence_available_ = true;
  std::string presence_show_ = "xa";
  std::string presence_status_;
  Stanza ridden_presence_;  // set_ridden_presence, while riding
  double backoff_s_ = 1;
  Timer reconnect_timer_;
  Timer setup_timer_;
  std::string account_domain_;
};

}  // namespace s2
