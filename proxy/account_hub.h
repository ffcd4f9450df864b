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
#include "policies/stanza_facts.h"
#include "proxy/anchor.h"
#include "proxy/archive_catchup.h"
#include "proxy/carbons_fanout.h"
#include "proxy/device_cursors.h"
#include "proxy/displayed_sync.h"
#include "proxy/legacy_catchup.h"
#include "proxy/link_drain.h"
#include "proxy/notification_settings.h"
#include "proxy/outbox.h"
#include "proxy/receipts_once.h"
#include "proxy/resend_memory.h"

namespace s2 {

class ProxyContext;
class Device;
class PushService;

class AccountHub : public Anchor::Owner, private Outbox::Host, private ArchiveCatchup::Host {
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
  bool resend_seen(Device* d, const std::string& key);
  // The client of `d` saw these acknowledged: they are no copies to look for.
  void forget_resend_keys(Device* d, std::vector<std::string> keys);
  // Device sends waiting for an upstream carrier with room (flow control).
  size_t unsent_backlog() const;
  // The device acknowledged (or, without SM, was written) archive id `id`.
  void delivered(Device* d, store::ArchiveId id);
  // A device ended with sends its link has not had acknowledged: keep the
  // link until the upstream acks them (or a timeout, then resend them).
  void drain_link(std::unique_ptr<UpstreamSession> link);
  // The anchor rides this device's link (anchor.h, docs/architecture.md §22).
  bool anchor_rides(const Device* d) const;
  // The device whose link the anchor rides ends: the anchor keeps `link` as its own session
  // (--anchor-keeps-device-link, docs/architecture.md §26); else it logs in a session of its
  // own, and `link` stays open, its traffic the account's, until that session is ready.
  void release_link(std::unique_ptr<UpstreamSession> link);
  // A device of this account binds `resource`: the link the anchor kept for it, bound to that
  // resource, which the device takes back instead of binding a session of its own (the anchor
  // rides it again); null when there is none.
  bool keeps_link_for(const std::string& resource) const;
  std::unique_ptr<UpstreamSession> take_kept_link(const std::string& resource);

  // Anchor::Owner
  void on_anchor_bound() override;
  void on_anchor_ready() override;
  void on_anchor_stanza(Stanza s) override;
  void on_anchor_down(uint64_t serial) override;
  void on_anchor_rejected() override;

  // XEP-0492 settings of the account's chats (urgency of what its devices get).
  const policy::ChatNotifySettings& notify_settings() const { return notify_.settings(); }

  // Where each part of the account's traffic is handled (one file each):
  //   account_hub.cpp           lifecycle, anchor, devices, this dispatch
  //   account_hub_entering.cpp  upstream → devices: classify, route, archive
  //   account_hub_leaving.cpp   devices → upstream: classify, route, archive,
  //                             resend keys, bounces
  //   account_hub_presence.cpp  device presence, the anchor's presence
  //   carbons_fanout.*          Carbons and the copies each device gets
  //   outbox.*                  sent messages until the upstream has them
  //   receipts_once.*           one receipt / marker per account, not per device
  //   displayed_sync.*          XEP-0490: the account's displayed state, server-assisted
  //   notification_settings.*   XEP-0492: per-chat notification settings, for urgency
  //   push_service.*            XEP-0357: registrations, wake-ups through the anchor
  //   archive_catchup.*         the upstream MAM after the anchor (re)binds
  //   legacy_catchup.*          what a legacy device missed, at its presence
  //   device_cursors.*          what each device has (and the watermark)
  //   link_drain.*              links of ended devices until their acks
 private:
  struct Entering {
    Stanza inner;  // the message itself (unwrapped from a carbon / MAM result)
    policy::Forwarded forwarded = policy::Forwarded::None;
    Device* via = nullptr;         // the link it arrived at (null: the anchor)
    std::string upstream_id;       // upstream archive id (<stanza-id by=account> / MAM id)
    std::optional<int64_t> stamp;  // original time (MAM / delay)
  };

  void when_account_known(std::function<void()> fn);
  void set_account_no(store::AccountNo a);
  void process_entering(Entering e);
  void process_leaving_message(Device* d, Stanza s, const std::string& resend_key,
                               std::function<void()> handled);
  bool handle_device_iq(Device* d, const Stanza& iq);
  void handle_device_presence(Device* d, Stanza p);
  // A lone device just attached: its link becomes the anchor's session when it can.
  void maybe_ride(Device* d);
  // A lone device has been attached for --anchor-move-after: an anchor with a session of its
  // own moves onto the device's link (Anchor::move_onto), the old session held until the
  // anchor is ready there. Busy (a catch-up, a request out): tried again shortly.
  void schedule_anchor_move(uint64_t after_ms);
  void try_anchor_move();
  static constexpr uint64_t kMoveRetryMs = 1000;
  static constexpr uint32_t kMovesPerSecond = 20;  // per process (policies/anchor_move.h)
  // A stanza on the link the anchor rides: the anchor's, the account's or the device's.
  bool from_ridden_link(Device* d, Stanza& s);
  // The anchor's presence from the devices' (true when it was sent).
  bool update_anchor_presence();

  policy::Addressing entering_addressing(const Entering& e, bool outgoing) const;
  policy::Target target_of(const std::string& jid, bool groupchat, bool muc_user) const;
  Device* device_by_jid(const std::string& full_jid) const;
  Device* device_by_resource(const std::string& resource) const;
  bool known_device(const std::string& resource) const;
  bool trust_upstream_ids() const;

  // The mirror record of `inner`, whose facts are `m` (read once).
  store::MessageRecord make_record(const Stanza& inner, const MessageFacts& m, bool outgoing,
                                   uint32_t flags, const std::string& upstream_id,
                                   int64_t ts) const;
  void bounce_to_device(Device* d, const Stanza& s, const policy::StanzaError& e,
                        std::string condition = {}, std::string text = {});
  // After a live entering message failed to commit: when the catch-up that
  // replays it starts (archive_catchup.h resync).
  static constexpr uint64_t kResyncAfterFailureMs = 5000;

  // Outbox::Host
  UpstreamSession* outbox_carrier(const std::string& route) override;
  Anchor* outbox_anchor() override;
  void outbox_refused(const std::string& route, const Stanza& s) override;
  // ArchiveCatchup::Host
  Anchor* catchup_anchor() override;
  void catchup_commit(std::vector<mam::MamResultItem> items, const std::string& last,
                      std::function<void(bool ok)> done) override;
  void catchup_finished(bool ok, bool retry) override;
  void catchup_release(Stanza s) override;

  ProxyContext& ctx_;
  std::string account_;
  std::string domain_;
  store::AccountNo account_no_ = 0;
  bool account_pending_ = false;
  std::vector<std::function<void()>> waiting_for_account_;
  std::unique_ptr<Anchor> anchor_;
  std::vector<Device*> devices_;

  CarbonsFanout fanout_;
  DeviceCursors cursors_;
  LegacyCatchup legacy_catchup_;
  ArchiveCatchup archive_catchup_;
  Outbox outbox_;
  LinkDrain drain_;
  ReceiptsOnce receipts_;
  // Resend keys of device messages: committing, or committed and not yet
  // seen acknowledged by the client (resend_memory.h).
  ResendMemory resend_;
  DisplayedSync displayed_;
  NotificationSettings notify_;
  // Push (XEP-0357) by the proxy: registrations, coalescing, publishing.
  std::unique_ptr<PushService> push_;
  Timer move_timer_;

  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace s2
