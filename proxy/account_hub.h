// AccountHub (ARCHITECTURE.md §3): one per account with devices or an
// anchor. Every stanza of the account passes through it once, in one order:
// it asks policies/ what the stanza is (classify), where it goes (route)
// and then archives it in the mirror, delivers it, sends it upstream or
// drops it.
//
// * Entering (upstream → devices): from the anchor (bare-JID traffic,
//   Carbons copies, MAM catch-up) and from device links (full-JID traffic).
//   The same message often arrives twice — at a link and as the anchor's
//   carbon, live and from MAM — and the mirror's dedup (upstream stanza-id,
//   then origin-id, then fingerprint) makes it one archive entry; only the
//   first commit is delivered. Persistent stanzas reach devices only after
//   their commit, carrying <stanza-id by=account id=archive id>.
// * Leaving (device → upstream): a persistent message is committed with its
//   outbox entry before the device's SM counter covers it, then sent
//   upstream (the device's link, else the anchor) and removed from the
//   outbox when the upstream's SM acknowledges it; outbox entries left by a
//   crash or an outage are resent when the anchor is ready again. The other
//   devices get it as a Carbons <sent/> copy with the same archive id.
// * Catch-up: the anchor pages the upstream MAM from the sync cursor (the
//   last upstream stanza-id committed, written in the same transaction as
//   the stanzas it covers) while live stanzas wait; a legacy device gets
//   what it missed since its last session as delayed messages at its
//   initial presence; session2 devices sync with MAM themselves.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/store/store.h"
#include "common/xml/stanza.h"
#include "policies/route.h"
#include "proxy/anchor.h"
#include "proxy/outbox.h"

namespace s2 {

class ProxyContext;
class Device;
class PushService;

class AccountHub : public Anchor::Owner, private Outbox::Host {
 public:
  // The hub of `account` (bare JID), created on first use.
  static AccountHub& of(ProxyContext& ctx, const std::string& account);
  static AccountHub* find(ProxyContext& ctx, const std::string& account);

  AccountHub(ProxyContext& ctx, std::string account);
  ~AccountHub() override;

  const std::string& account() const { return account_; }
  store::AccountNo account_no() const { return account_no_; }
  const std::string& anchor_jid() const;

  // The vault holds credentials for the account: keep an anchor up.
  void start_anchor();
  // The credentials are gone (password changed, account forgotten).
  void stop_anchor();

  // A device's upstream link is bound (attach) / the device ended (detach).
  void attach(Device* d);
  void detach(Device* d);

  // A stanza the upstream delivered to a device's link.
  void from_link(Device* d, Stanza s);
  // A stanza from a device's client. `handled` runs once the proxy took
  // responsibility for it (after the commit, for persistent messages): the
  // device's SM counter may then cover it.
  // `resend_key`: the message's policy::resend_key when the device's client
  // may resend it (SM on), else "".
  void from_device(Device* d, Stanza s, const std::string& resend_key,
                   std::function<void()> handled);
  // Device `d`'s client resends in a new session what it did not see
  // acknowledged: was `key` taken from an earlier session of this device
  // (committed, or committing now)?
  bool resend_seen(Device* d, const std::string& key) const;
  // The client of `d` saw these acknowledged: they are no copies to look for.
  void forget_resend_keys(Device* d, std::vector<std::string> keys);
  // Device sends waiting for an upstream carrier with room (flow control).
  size_t unsent_backlog() const;
  // The device acknowledged (or, without SM, was written) archive id `id`.
  void delivered(Device* d, store::ArchiveId id);
  // A device ended with sends its link has not had acknowledged: keep the
  // link until the upstream acks them (or a timeout, then resend them).
  void drain_link(std::unique_ptr<UpstreamSession> link);

  // Anchor::Owner
  void on_anchor_bound() override;
  void on_anchor_ready() override;
  void on_anchor_stanza(Stanza s) override;
  void on_anchor_down(uint64_t serial) override;
  void on_anchor_rejected() override;

 private:
  struct Entering {
    Stanza inner;  // the message itself (unwrapped from a carbon / MAM result)
    policy::Forwarded forwarded = policy::Forwarded::None;
    Device* via = nullptr;         // the link it arrived at (null: the anchor)
    std::string upstream_id;       // upstream archive id (<stanza-id by=account> / MAM id)
    std::optional<int64_t> stamp;  // original time (MAM / delay)
  };

  void when_account_known(std::function<void()> fn);
  void process_entering(Entering e);
  void process_leaving_message(Device* d, Stanza s, const std::string& resend_key,
                               std::function<void()> handled);
  bool handle_device_iq(Device* d, const Stanza& iq);
  void handle_device_presence(Device* d, Stanza p);
  void update_anchor_presence();

  policy::Addressing entering_addressing(const Entering& e, bool outgoing) const;
  policy::Target target_of(const std::string& jid, bool groupchat, bool muc_user) const;
  Device* device_by_jid(const std::string& full_jid) const;
  Device* device_by_resource(const std::string& resource) const;
  bool known_device(const std::string& resource) const;
  bool trust_upstream_ids() const;

  store::MessageRecord make_record(const Stanza& inner, bool outgoing, uint32_t flags,
                                   const std::string& upstream_id, int64_t ts) const;
  // Delivers an archived (or ephemeral, id 0) message to the devices `fanout` names.
  void fan_out(const Stanza& inner, bool outgoing, store::ArchiveId id, policy::Fanout fanout,
               Device* only, Device* except, Device* except2);
  Stanza copy_for(Device* d, const Stanza& inner, bool outgoing, store::ArchiveId id) const;
  void bounce_to_device(Device* d, const Stanza& s, const policy::StanzaError& e,
                        std::string condition = {}, std::string text = {});

  // Catch-up from the upstream archive.
  void start_catchup();
  void catchup_page(std::optional<std::string> after, std::optional<int64_t> start, uint64_t gen);
  // `ok`: the upstream archive was replayed up to now (live stanzas may
  // move the cursor from here on); else the catch-up is retried later.
  void finish_catchup(bool ok, bool retry = true);
  void catch_up_device(Device* d);
  void continue_catchup(Device* d);

  // Outbox::Host
  UpstreamSession* outbox_carrier(const std::string& route) override;
  Anchor* outbox_anchor() override;
  void outbox_refused(const std::string& route, const Stanza& s) override;

  void schedule_cursor_flush();
  void flush_delivered();

  ProxyContext& ctx_;
  std::string account_;
  std::string domain_;
  store::AccountNo account_no_ = 0;
  bool account_pending_ = false;
  std::vector<std::function<void()>> waiting_for_account_;
  std::unique_ptr<Anchor> anchor_;
  std::vector<Device*> devices_;

  bool catching_up_ = false;
  bool synced_ = false;  // this anchor session finished a catch-up: the cursor may move
  uint64_t catchup_gen_ = 0;
  Timer catchup_retry_;
  std::deque<Stanza> held_live_;  // anchor stanzas waiting for the catch-up
  size_t held_bytes_ = 0;
  static constexpr size_t kMaxHeldLive = 10000;
  static constexpr size_t kMaxHeldBytes = 64 * 1024 * 1024;

  struct DrainListener : UpstreamSession::Listener {
    AccountHub* hub = nullptr;
    UpstreamSession* link = nullptr;
    void on_upstream_authenticated() override {}
    void on_upstream_login_failed(const UpstreamFailure&) override {}
    void on_upstream_bound(const std::string&) override {}
    void on_upstream_bind_failed(const std::string&, const std::string&) override {}
    void on_upstream_stanza(Stanza s) override;
    void on_upstream_closed(const std::string&, const std::string&) override {}
  };
  struct Draining {
    std::unique_ptr<UpstreamSession> link;
    std::shared_ptr<Timer> timer;
    uint64_t since = 0;
    std::unique_ptr<DrainListener> listener;
  };
  std::map<uint64_t, Draining> draining_;  // by session serial
  Outbox outbox_;
  // Resend keys of device messages whose commit is in flight (key → the
  // serial of the device that sent it), and keys to clear, per device.
  std::unordered_map<std::string, uint64_t> committing_keys_;
  std::unordered_map<std::string, std::vector<std::string>> forget_keys_;

  // Device cursors waiting to be written (coalesced).
  std::unordered_map<std::string, store::ArchiveId> delivered_pending_;
  store::ArchiveId delivered_any_ = 0;  // highest id any device received (offline watermark)
  Timer flush_timer_;

  // Push (XEP-0357) by the proxy: registrations, coalescing, publishing (proxy/push_service.h).
  std::unique_ptr<PushService> push_;

  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace s2
