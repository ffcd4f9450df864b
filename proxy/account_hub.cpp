// See account_hub.h.
#include "proxy/account_hub.h"

#include <algorithm>

#include "common/jid/jid.h"
#include "common/mam/carbons.h"
#include "common/util/clock.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "policies/anchor_move.h"
#include "policies/dedup.h"
#include "proxy/cluster.h"
#include "proxy/device.h"
#include "proxy/mirror_metrics.h"
#include "proxy/proxy_context.h"
#include "proxy/push_service.h"

namespace s2 {
namespace {
// Kept: the anchor took the link of a device that ended as its own session; given_back: a device
// binding that resource took it back (docs/architecture.md §26). Each is an upstream login spared.
Metric& m_kept_links(std::string_view event) {
  return counter("s2proxy_anchor_device_links_total",
                 "device links the anchor kept when their device ended (kept) and handed back "
                 "to the device binding that resource again (given_back): upstream logins spared",
                 event == "kept" ? "event=\"kept\"" : "event=\"given_back\"");
}
}  // namespace

AccountHub& AccountHub::of(ProxyContext& ctx, const std::string& account) {
  auto it = ctx.hubs.find(account);
  if (it != ctx.hubs.end()) return *it->second;
  auto hub = std::make_unique<AccountHub>(ctx, account);
  auto& ref = *hub;
  ctx.hubs.emplace(account, std::move(hub));
  return ref;
}

AccountHub* AccountHub::find(ProxyContext& ctx, const std::string& account) {
  auto it = ctx.hubs.find(account);
  return it == ctx.hubs.end() ? nullptr : it->second.get();
}

AccountHub::AccountHub(ProxyContext& ctx, std::string account)
    : ctx_(ctx),
      account_(std::move(account)),
      fanout_(ctx, account_, devices_),
      cursors_(ctx),
      legacy_catchup_(ctx, domain_, cursors_, fanout_),
      archive_catchup_(ctx, *this, account_),
      outbox_(ctx, *this, account_),
      drain_(
          ctx,
          [this](Stanza s) {
            // A message for a device that is gone: the account's history. On a link the
            // anchor rode: the account's traffic (Carbons, bare-JID messages). As the
            // anchor's: held while a catch-up runs, so that nothing live commits (and moves
            // the sync cursor) ahead of what the catch-up replays.
            on_anchor_stanza(std::move(s));
          },
          [this](uint64_t serial) { outbox_.carrier_down(serial); }),
      receipts_(ctx, account_),
      resend_(*ctx.store),
      displayed_(ctx, account_, [this] { return outbox_anchor(); }),
      notify_(ctx, account_, [this] { return outbox_anchor(); }),
      move_timer_(ctx.loop) {
  if (auto j = parse_jid(account_)) domain_ = j->domain;
  // Push (XEP-0357): published through the anchor once it is ready.
  push_ = std::make_unique<PushService>(
      ctx_, account_, [this] { return account_no_; }, [this] { return outbox_anchor(); });
  auto found = ctx_.store->find_account(account_);
  if (found.ok() && found.value()) {
    set_account_no(found.value()->account);
  } else {
    account_pending_ = true;
    ctx_.store->submit(
        {store::op::CreateAccount{account_}},
        [this, alive = std::weak_ptr<bool>(alive_)](store::WriteResult r) {
          if (alive.expired()) return;
          account_pending_ = false;
          if (!r.ok() || r.ops.empty()) {
            S2_LOG(LogLevel::Error, "hub.account_create_failed", {{"account", account_}});
            return;
          }
          set_account_no(r.ops[0].account);
          auto waiting = std::move(waiting_for_account_);
          waiting_for_account_.clear();
          for (auto& fn : waiting) fn();
        });
  }
}

AccountHub::~AccountHub() = default;

void AccountHub::set_account_no(store::AccountNo a) {
  account_no_ = a;
  // Several nodes (cluster.h): claim the account before anything is written
  // for it; on a node that does not get it, its writes are fenced and its
  // devices are sent to the owner once they authenticate.
  if (ctx_.cluster) ctx_.cluster->serve_here(account_, a);
  cursors_.set_account_no(a);
  legacy_catchup_.set_account_no(a);
  archive_catchup_.set_account_no(a);
  outbox_.set_account_no(a);
  receipts_.set_account_no(a);
  resend_.set_account_no(a);
  // What a previous run left in the mirror's outbox waits for the anchor's
  // catch-up: the upstream archive shows which of it the upstream already
  // has (catchup_finished). Read once, before this run commits anything for
  // the account: from here on the outbox in memory is the truth (the store
  // lags behind it by the removals in flight).
  outbox_.load_held();
}

void AccountHub::when_account_known(std::function<void()> fn) {
  if (account_no_ != 0) {
    fn();
  } else {
    waiting_for_account_.push_back(std::move(fn));
  }
}

const std::string& AccountHub::anchor_jid() const {
  static const std::string none;
  return anchor_ ? anchor_->full_jid() : none;
}

// ---------------------------------------------------------------------------
// Anchor

void AccountHub::start_anchor() {
  if (ctx_.shutting_down) return;
  if (!anchor_) anchor_ = std::make_unique<Anchor>(ctx_, this, account_);
  when_account_known([this] {
    // Several nodes (cluster.h): the anchor runs where the account's lease is.
    if (ctx_.cluster && !ctx_.cluster->serve_here(account_)) {
      S2_LOG(LogLevel::Debug, "cluster.anchor_elsewhere", {{"account", account_}});
      return;
    }
    if (anchor_ && !anchor_->session() && !anchor_->ready()) anchor_->start();
  });
}

void AccountHub::stop_anchor() {
  if (anchor_) anchor_->stop();
}

void AccountHub::on_anchor_bound() { archive_catchup_.anchor_bound(); }

void AccountHub::on_anchor_ready() {
  update_anchor_presence();
  // On a first login the anchor (riding the device's link) can be ready before the account's
  // record is created; the catch-up pages from that record's creation time.
  when_account_known([this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) archive_catchup_.start();
  });
  displayed_.anchor_ready();
  notify_.anchor_ready();
  push_->anchor_ready();
}

void AccountHub::on_anchor_down(uint64_t serial) {
  archive_catchup_.anchor_down();
  outbox_.carrier_down(serial);
}

void AccountHub::on_anchor_rejected() {
  S2_LOG(LogLevel::Warn, "hub.credentials_rejected", {{"account", account_}});
  ctx_.vault->invalidate(account_, [](bool) {});
}

// ---------------------------------------------------------------------------
// Devices

void AccountHub::attach(Device* d) {
  if (std::find(devices_.begin(), devices_.end(), d) == devices_.end()) devices_.push_back(d);
  maybe_ride(d);
  if (devices_.size() == 1 && !anchor_rides(d))
    schedule_anchor_move(ctx_.config.anchor_move_after_ms());
  push_->device_attached(d);  // a bound device is connected
  // Its own sends waiting for a carrier go out through its new link.
  outbox_.pump();
  // Session2 devices sync with MAM: live stanzas from now on, no backlog.
  if (d->profile() == policy::Profile::Session2) d->set_live(0);
  // A device never seen before is owed what no device had received when it
  // bound; what arrives from now on it gets live or in its catch-up.
  d->set_first_cursor(cursors_.offline_watermark());
  // Known devices stay known while they are away: a full-JID stanza for
  // one of them is that device's, never the account's (not rerouted). A
  // device never seen starts at the offline watermark: it is owed what no
  // device has received, not the whole history.
  when_account_known([this, resource = d->resource()] {
    store::op::UpdateDevice u;
    u.account = account_no_;
    u.device_id = resource;
    u.last_seen_ms = unix_ms();
    auto rec = ctx_.store->get_device(account_no_, resource);
    if (rec.ok() && !rec.value()) u.last_delivered = cursors_.offline_watermark();
    ctx_.store->submit({std::move(u)}, [](store::WriteResult r) {
      if (!r.ok()) mirror_metrics::write_errors().inc();
    });
  });
}

bool AccountHub::known_device(const std::string& resource) const {
  if (device_by_resource(resource)) return true;
  if (account_no_ == 0) return false;
  auto rec = ctx_.store->get_device(account_no_, resource);
  return rec.ok() && rec.value().has_value();
}

void AccountHub::detach(Device* d) {
  devices_.erase(std::remove(devices_.begin(), devices_.end(), d), devices_.end());
  if (!device_by_resource(d->resource())) resend_.release(d->resource());
  push_->device_detached(d);  // an ended device is offline (it keeps its registration)
  if (d->upstream()) outbox_.carrier_down(d->upstream()->serial());
  update_anchor_presence();
  // One device left: it may carry the anchor after a while, as if it had just attached.
  if (devices_.size() == 1) schedule_anchor_move(ctx_.config.anchor_move_after_ms());
}

Device* AccountHub::device_by_jid(const std::string& full_jid) const {
  for (auto* d : devices_)
    if (policy::jid_equal(d->full_jid(), full_jid)) return d;
  return nullptr;
}

Device* AccountHub::device_by_resource(const std::string& resource) const {
  for (auto* d : devices_)
    if (d->resource() == resource) return d;
  return nullptr;
}

void AccountHub::drain_link(std::unique_ptr<UpstreamSession> link) {
  drain_.drain(std::move(link));
}

// ---------------------------------------------------------------------------
// The anchor on an only device's link (anchor.h; docs/architecture.md §22)

void AccountHub::maybe_ride(Device* d) {
  if (!ctx_.config.anchor_on_device_link || ctx_.shutting_down) return;
  if (devices_.size() != 1 || !d->upstream() || !d->upstream()->ready()) return;
  if (d->upstream()->full_jid().empty()) return;
  if (ctx_.cluster && !ctx_.cluster->serve_here(account_)) return;
  if (!anchor_) anchor_ = std::make_unique<Anchor>(ctx_, this, account_);
  if (!anchor_->can_adopt()) return;  // it has a bound session of its own: it stays
  anchor_->adopt(d->upstream());
  // Its presence is the anchor's now: the device's own, at priority 0.
  anchor_->set_ridden_presence(d->presence_stanza());
  update_anchor_presence();
}

void AccountHub::schedule_anchor_move(uint64_t after_ms) {
  if (!ctx_.config.anchor_on_device_link || ctx_.shutting_down) return;
  move_timer_.start(after_ms, [this] { try_anchor_move(); });
}

void AccountHub::try_anchor_move() {
  if (ctx_.shutting_down || !anchor_) return;
  if (ctx_.cluster && !ctx_.cluster->serve_here(account_)) return;
  Device* d = devices_.size() == 1 ? devices_.front() : nullptr;
  UpstreamSession* link = d ? d->upstream() : nullptr;
  policy::AnchorMoveInput in;
  in.lone_device = d != nullptr;
  in.link_bound = link && link->ready() && !link->full_jid().empty();
  in.anchor_riding = anchor_->riding();
  in.anchor_has_own = !anchor_->can_adopt();
  in.anchor_quiet = anchor_->can_move();
  in.catching_up = archive_catchup_.catching_up();
  if (ctx_.upstream_gate) {
    in.logins_in_flight = ctx_.upstream_gate->in_flight();
    in.logins_waiting = ctx_.upstream_gate->waiting();
  }
  const uint64_t second = uv_now(ctx_.loop) / 1000;
  if (ctx_.anchor_moves.second != second) ctx_.anchor_moves = {second, 0};
  in.moves_this_second = ctx_.anchor_moves.count;
  in.max_per_second = kMovesPerSecond;
  switch (policy::decide_anchor_move(in)) {
    case policy::AnchorMove::Never:
      return;
    case policy::AnchorMove::Ride:
      maybe_ride(d);
      return;
    case policy::AnchorMove::Later:
      // Spread out, so that the accounts a storm held back do not all come back at once.
      schedule_anchor_move(kMoveRetryMs + uv_hrtime() % kMoveRetryMs);
      return;
    case policy::AnchorMove::Now:
      break;
  }
  auto old = anchor_->move_onto(link);
  if (!old) return;
  ++ctx_.anchor_moves.count;
  anchor_->set_ridden_presence(d->presence_stanza());
  update_anchor_presence();
  // Make-before-break: bare-JID traffic keeps a path through the old session (priority 0,
  // Carbons on) until the anchor is ready on the link; both deliver meanwhile, and the mirror
  // keeps one copy of what both got.
  drain_.hold_until(std::move(old), [this] { return anchor_ && anchor_->ready(); });
}

bool AccountHub::anchor_rides(const Device* d) const {
  return anchor_ && d->upstream() && anchor_->riding(d->upstream());
}

void AccountHub::release_link(std::unique_ptr<UpstreamSession> link) {
  if (anchor_ && link && link->ready() && ctx_.config.anchor_keeps_device_link &&
      !ctx_.shutting_down && anchor_->riding(link.get())) {
    // One session still, and no login: the anchor goes on where it was. Its presence becomes
    // its own at the update that follows the device's detach.
    anchor_->keep(std::move(link));
    m_kept_links("kept").inc();
    return;
  }
  if (anchor_) anchor_->release();  // logs in a session of its own
  if (!link || !link->ready()) return;
  drain_.hold_until(std::move(link), [this] { return anchor_ && anchor_->ready(); });
}

bool AccountHub::keeps_link_for(const std::string& resource) const {
  if (ctx_.cluster && !ctx_.cluster->serve_here(account_)) return false;
  return anchor_ && anchor_->keeps(resource);
}

std::unique_ptr<UpstreamSession> AccountHub::take_kept_link(const std::string& resource) {
  if (!keeps_link_for(resource)) return nullptr;
  auto link = anchor_->give_back(resource);
  if (link) m_kept_links("given_back").inc();
  return link;
}

bool AccountHub::from_ridden_link(Device* d, Stanza& s) {
  if (anchor_->intercept(s)) return true;
  if (s.name() != "message") return false;  // presence and iqs: the device's, as on any link
  // Carbons, bare-JID messages and those to another resource of the account are what the
  // anchor hears; only what is addressed to this device's full JID is the device's.
  if (mam::unwrap_carbon(s) || !policy::jid_equal(s.attr_or("to"), d->full_jid())) {
    on_anchor_stanza(std::move(s));
    return true;
  }
  return false;
}

void AccountHub::delivered(Device* d, store::ArchiveId id) { cursors_.delivered(d, id); }

void AccountHub::forget_resend_keys(Device* d, std::vector<std::string> keys) {
  resend_.forget(d->resource(), keys);
  cursors_.forget_resend_keys(d->resource(), std::move(keys));
}

size_t AccountHub::unsent_backlog() const {
  size_t n = outbox_.unsent_bytes();
  if (anchor_ && anchor_->session()) n += anchor_->session()->write_backlog();
  return n;
}

policy::Target AccountHub::target_of(const std::string& jid, bool groupchat, bool muc_user) const {
  using policy::Target;
  if (jid.empty()) return Target::OwnBare;
  auto j = parse_jid(jid);
  if (!j) return Target::OtherBare;
  if (j->bare() == account_) {
    if (j->resource.empty()) return Target::OwnBare;
    if (j->resource == ctx_.config.anchor_resource) return Target::Anchor;
    return known_device(j->resource) ? Target::OwnDevice : Target::OwnForeign;
  }
  if (groupchat) return j->resource.empty() ? Target::Room : Target::Occupant;
  if (j->resource.empty()) return Target::OtherBare;
  return muc_user ? Target::Occupant : Target::OtherFull;
}

// ---------------------------------------------------------------------------
// Outbox carriers

UpstreamSession* AccountHub::outbox_carrier(const std::string& route) {
  if (Device* d = device_by_resource(route); d && d->upstream() && d->upstream()->ready())
    return d->upstream();
  if (anchor_ && anchor_->ready()) return anchor_->session();
  return nullptr;
}

Anchor* AccountHub::outbox_anchor() {
  return anchor_ && anchor_->ready() ? anchor_.get() : nullptr;
}

void AccountHub::outbox_refused(const std::string& route, const Stanza& s) {
  if (Device* d = device_by_resource(route))
    bounce_to_device(
        d, s,
        policy::StanzaError{policy::ErrorCondition::ServiceUnavailable, policy::ErrorType::Cancel},
        "not-acceptable", "the server refused this message");
}

// ---------------------------------------------------------------------------
// Catch-up from the upstream archive (archive_catchup.h)

Anchor* AccountHub::catchup_anchor() {
  return anchor_ && anchor_->ready() ? anchor_.get() : nullptr;
}

void AccountHub::catchup_finished(bool ok, bool retry) {
  // Held outbox entries the catch-up did not settle are searched for in the
  // upstream archive now (and resent if it has no copy); not when the anchor
  // went down (the search waits for it).
  if (ok || retry) outbox_.anchor_ready();
}

void AccountHub::catchup_release(Stanza s) { on_anchor_stanza(std::move(s)); }

}  // namespace s2
