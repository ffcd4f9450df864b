// See account_hub.h.
#include "proxy/account_hub.h"

#include <algorithm>

#include "common/crypto/encoding.h"
#include "common/jid/jid.h"
#include "common/mam/carbons.h"
#include "common/mam/datetime.h"
#include "common/session2/errors.h"
#include "common/store/archive_id.h"
#include "common/util/clock.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "policies/classify.h"
#include "policies/dedup.h"
#include "proxy/device.h"
#include "proxy/mam_server.h"
#include "proxy/proxy_context.h"
#include "proxy/push_service.h"
#include "proxy/stanza_facts.h"
#include "proxy/xmpp_ns.h"

namespace s2 {
namespace {
constexpr const char* kAnyDevice = "*";  // device record holding the offline watermark
constexpr size_t kCatchupPage = 100;

Metric& m_archived(const char* dir) {
  return counter("s2proxy_messages_archived_total", "messages committed to the mirror",
                 std::string("direction=\"") + dir + "\"");
}
Metric& m_duplicates() {
  static Metric& m =
      counter("s2proxy_messages_deduplicated_total", "copies recognised as already archived");
  return m;
}
Metric& m_commit_failed() {
  static Metric& m = counter("s2proxy_mirror_write_errors_total", "failed mirror writes");
  return m;
}
Metric& m_gaps() {
  static Metric& m = counter("s2proxy_history_gaps_total", "history gaps recorded");
  return m;
}

std::string new_id() { return crypto::hex_encode(crypto::random_bytes(9)); }
// 128 random bits: unique across every device and session of every account.
std::string new_origin_id() { return crypto::hex_encode(crypto::random_bytes(16)); }
// How long after a message a client's resend of it is recognised.
constexpr int64_t kResendWindowMs = 15 * 60 * 1000;

std::optional<int64_t> delay_stamp(const Stanza& m) {
  if (auto d = m.child("delay", ns::kDelay)) return mam::parse_datetime(d.attr_or("stamp"));
  return std::nullopt;
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
      catchup_retry_(ctx.loop),
      outbox_(ctx, *this, account_),
      flush_timer_(ctx.loop) {
  if (auto j = parse_jid(account_)) domain_ = j->domain;
  // Push (XEP-0357): published through the anchor once it is ready.
  push_ = std::make_unique<PushService>(
      ctx_, account_, [this] { return account_no_; }, [this] { return outbox_anchor(); });
  auto found = ctx_.store->find_account(account_);
  if (found.ok() && found.value()) {
    account_no_ = found.value()->account;
    outbox_.set_account_no(account_no_);
    if (auto rec = ctx_.store->get_device(account_no_, kAnyDevice); rec.ok() && rec.value())
      delivered_any_ = rec.value()->last_delivered;
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
          account_no_ = r.ops[0].account;
          outbox_.set_account_no(account_no_);
          auto waiting = std::move(waiting_for_account_);
          waiting_for_account_.clear();
          for (auto& fn : waiting) fn();
        });
  }
}

AccountHub::~AccountHub() {
  flush_delivered();  // device cursors acknowledged since the last flush
  for (auto& [serial, dr] : draining_) {
    dr.timer->stop();
    dr.link->close();
  }
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
    if (anchor_ && !anchor_->session() && !anchor_->ready()) anchor_->start();
  });
}

void AccountHub::stop_anchor() {
  if (anchor_) anchor_->stop();
}

// From bind on, live stanzas wait for the catch-up: our presence releases
// the upstream's offline storage, and none of it may move the sync cursor
// past what MAM has not replayed yet.
void AccountHub::on_anchor_bound() {
  catching_up_ = true;
  synced_ = false;
}

void AccountHub::on_anchor_ready() {
  update_anchor_presence();
  // What the mirror's outbox holds waits for the catch-up: the upstream
  // archive shows which of it the upstream already has (finish_catchup).
  outbox_.load_held();
  start_catchup();
}

void AccountHub::on_anchor_down(uint64_t serial) {
  catchup_retry_.stop();
  ++catchup_gen_;  // pages of this session's catch-up stop their chain
  // Whatever waited for the catch-up is processed now, without moving the
  // cursor; the next catch-up (after reconnect) covers what this session
  // did not see.
  finish_catchup(false, false);
  outbox_.carrier_down(serial);
}

void AccountHub::on_anchor_rejected() {
  S2_LOG(LogLevel::Warn, "hub.credentials_rejected", {{"account", account_}});
  ctx_.vault->invalidate(account_, [](bool) {});
}

void AccountHub::update_anchor_presence() {
  if (!anchor_) return;
  // The best presence of the devices that are available; idle otherwise.
  static const auto rank = [](const std::string& show) {
    if (show == "chat") return 5;
    if (show.empty()) return 4;
    if (show == "dnd") return 3;
    if (show == "away") return 2;
    return 1;  // xa
  };
  Device* best = nullptr;
  for (auto* d : devices_)
    if (d->presence_available() &&
        (!best || rank(d->presence_show()) > rank(best->presence_show())))
      best = d;
  if (best) {
    anchor_->set_presence(true, best->presence_show(), best->presence_status());
  } else if (ctx_.config.idle_presence == "unavailable") {
    anchor_->set_presence(false, "", "");
  } else {
    anchor_->set_presence(true, ctx_.config.idle_presence, "");
  }
}

// ---------------------------------------------------------------------------
// Devices

void AccountHub::attach(Device* d) {
  if (std::find(devices_.begin(), devices_.end(), d) == devices_.end()) devices_.push_back(d);
  push_->device_attached(d);  // push: a bound device is connected
  // Its own sends waiting for a carrier go out through its new link.
  outbox_.pump();
  // Session2 devices sync with MAM: live stanzas from now on, no backlog.
  if (d->profile() == policy::Profile::Session2) d->set_live(0);
  // A device never seen before is owed what no device had received when it
  // bound; what arrives from now on it gets live or in its catch-up.
  d->set_first_cursor(delivered_any_);
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
    if (rec.ok() && !rec.value()) u.last_delivered = delivered_any_;
    ctx_.store->submit({std::move(u)}, [](store::WriteResult r) {
      if (!r.ok()) m_commit_failed().inc();
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
  push_->device_detached(d);  // push: an ended device is offline (it keeps its registration)
  if (d->upstream()) outbox_.carrier_down(d->upstream()->serial());
  update_anchor_presence();
}

namespace {
constexpr uint64_t kDrainTimeoutMs = 3000;
}  // namespace

// A device's link that outlives its device until the upstream acknowledged
// what it carried (or a timeout). What still arrives on it is for a device
// that is gone: history goes to the hub, requests get service-unavailable.
void AccountHub::DrainListener::on_upstream_stanza(Stanza s) {
  if (!hub || !link) return;
  const std::string name = s.name();
  if (name == "message") {
    Entering e;
    e.inner = std::move(s);
    hub->process_entering(std::move(e));
    return;
  }
  const std::string type = s.attr_or("type");
  if (name == "iq" && (type == "get" || type == "set")) {
    if (auto err = session2::build_stanza_error(s, "cancel", "service-unavailable")) {
      err.remove_attr("from");
      link->send(err);
    }
  }
}

void AccountHub::drain_link(std::unique_ptr<UpstreamSession> link) {
  auto listener = std::make_unique<DrainListener>();
  listener->hub = this;
  listener->link = link.get();
  link->set_listener(listener.get());
  const uint64_t serial = link->serial();
  auto timer = std::make_shared<Timer>(ctx_.loop);
  draining_[serial] = Draining{std::move(link), timer, uv_now(ctx_.loop), std::move(listener)};
  timer->start(
      20,
      [this, serial, alive = std::weak_ptr<bool>(alive_)] {
        if (alive.expired()) return;
        auto it = draining_.find(serial);
        if (it == draining_.end()) return;
        auto& dr = it->second;
        const bool acked = dr.link->unacked_tracked() == 0;
        const bool dead = !dr.link->ready();
        if (!acked && !dead && uv_now(ctx_.loop) - dr.since < kDrainTimeoutMs) return;
        // Not acknowledged in time: through the anchor after all.
        if (!acked) outbox_.carrier_down(serial);
        dr.link->close();
        dr.timer->stop();
        defer(ctx_.loop, [keep = std::make_shared<Draining>(std::move(dr))] {});
        draining_.erase(it);
      },
      20);
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

void AccountHub::delivered(Device* d, store::ArchiveId id) {
  // Before its catch-up a device's cursor stays where it was: what it got
  // meanwhile was addressed to it, not the history it missed. During the
  // catch-up only what the catch-up itself covered counts.
  if (id == 0 || account_no_ == 0) return;
  if (!d->live() && !(d->catching_up() && id <= d->catchup_cursor())) return;
  auto& cur = delivered_pending_[d->resource()];
  cur = std::max(cur, id);
  if (id > delivered_any_) {
    delivered_any_ = id;
    auto& any = delivered_pending_[kAnyDevice];
    any = std::max(any, id);
  }
  schedule_cursor_flush();
}

// Device cursors change with every ack: written at most every 100 ms, in
// one batch (they only decide what a legacy device is sent again after a
// crash, never what is archived).
void AccountHub::schedule_cursor_flush() {
  if (flush_timer_.active()) return;
  flush_timer_.start(100, [this] { flush_delivered(); });
}

void AccountHub::flush_delivered() {
  if ((delivered_pending_.empty() && forget_keys_.empty()) || account_no_ == 0) return;
  store::WriteBatch b;
  for (auto& [scope, keys] : forget_keys_)
    b.push_back(store::op::ClearResendKeys{account_no_, scope, std::move(keys)});
  forget_keys_.clear();
  const int64_t now = unix_ms();
  for (auto& [dev, id] : delivered_pending_) {
    store::op::UpdateDevice u;
    u.account = account_no_;
    u.device_id = dev;
    u.last_delivered = id;
    u.last_seen_ms = now;
    b.push_back(std::move(u));
  }
  delivered_pending_.clear();
  ctx_.store->submit(std::move(b), [](store::WriteResult r) {
    if (!r.ok()) m_commit_failed().inc();
  });
}

// A legacy device that sent its initial presence gets what it missed since
// its last session (like offline storage, but for every device): from its
// own cursor, or — a device never seen before — from the offline watermark
// (what no device has received yet). It is paced by the client: at most
// half the SM queue unacknowledged (or, without SM, a chunk whenever the
// socket drained), so a long absence never overflows the device's queue.
void AccountHub::catch_up_device(Device* d) {
  if (d->live() || d->catching_up() || account_no_ == 0) return;
  store::ArchiveId from = d->first_cursor();
  if (auto rec = ctx_.store->get_device(account_no_, d->resource()); rec.ok() && rec.value())
    from = rec.value()->last_delivered;
  if (auto it = delivered_pending_.find(d->resource()); it != delivered_pending_.end())
    from = std::max(from, it->second);
  auto bounds = ctx_.store->bounds(account_no_);
  const store::ArchiveId last = bounds.ok() ? bounds->last_id : 0;
  const size_t cap = ctx_.config.catchup_max;
  if (last > cap && last - cap > from) {
    S2_LOG(LogLevel::Info, "hub.catchup_capped",
           {{"device", d->log_id()}, {"missed", std::to_string(last - from)}});
    from = last - cap;
  }
  d->set_catchup(true, from);
  continue_catchup(d);
}

void AccountHub::continue_catchup(Device* d) {
  if (!d->catching_up() || d->ended()) return;
  store::ArchiveId cursor = d->catchup_cursor();
  size_t room = d->catchup_room();
  size_t sent = 0;
  bool at_end = false;
  while (room > 0) {
    store::MamQuery q;
    if (cursor > 0) q.after_id = store::render_archive_id(cursor);
    q.max = std::min<size_t>(room, 200);
    auto page = ctx_.store->query(account_no_, q);
    if (!page.ok() || page->items.empty()) {
      at_end = true;
      break;
    }
    for (auto& m : page->items) {
      // Without SM the socket's backlog is the only brake: check it per stanza.
      if (!d->sm_enabled() && d->catchup_room() == 0) {
        room = 0;
        break;
      }
      cursor = m.archive_id;
      if (d->pre_live(m.archive_id)) continue;  // it got this one already, addressed to it
      auto inner = Stanza::parse(m.record.stanza);
      if (!inner) continue;
      const bool outgoing = m.record.direction == store::Direction::kOutgoing;
      // Its own sends are not news to it.
      if (outgoing && policy::jid_equal(inner.attr_or("from"), d->full_jid())) continue;
      add_delay(inner, domain_, mam::format_datetime(m.archive_ms));
      auto copy = copy_for(d, inner, outgoing, m.archive_id);
      if (!copy) continue;
      d->set_catchup(true, cursor);
      d->deliver(copy, m.archive_id);
      if (!d->catching_up()) return;  // the device ended
      ++sent;
      --room;
    }
    d->set_catchup(true, cursor);
    if (room == 0) break;
    if (page->complete) {
      at_end = true;
      break;
    }
  }
  if (sent)
    S2_LOG(LogLevel::Debug, "hub.device_catchup",
           {{"device", d->log_id()}, {"delivered", std::to_string(sent)}});
  if (at_end) {
    // Everything up to `cursor` is out; newer ids are live deliveries. Both
    // happen on this thread, so nothing falls in between.
    d->set_catchup(false, cursor);
    d->set_live(cursor);
    if (!d->sm_enabled() || sent == 0) delivered(d, cursor);
    return;
  }
  // Wait for the client to take more (acks, or the socket draining).
  d->poll_catchup([this, d] { continue_catchup(d); });
}

// ---------------------------------------------------------------------------
// Entering

bool AccountHub::trust_upstream_ids() const {
  return anchor_ && anchor_->upstream_has_mam().value_or(false);
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

void AccountHub::on_anchor_stanza(Stanza s) {
  if (catching_up_ && s.name() == "message" && held_live_.size() < kMaxHeldLive &&
      held_bytes_ < kMaxHeldBytes) {
    held_bytes_ += s.to_string().size();
    held_live_.push_back(std::move(s));
    return;
  }
  const std::string name = s.name();
  if (name == "presence" || name == "iq") return;  // the anchor's own (route: consume)
  if (name != "message") return;
  Entering e;
  if (auto c = mam::unwrap_carbon(s)) {
    // XEP-0280 §11: only the account itself may send carbons.
    const std::string from = s.attr_or("from");
    if (!from.empty() && !policy::jid_equal(from, account_)) {
      S2_LOG(LogLevel::Warn, "hub.carbon_spoofed", {{"account", account_}, {"from", from}});
      return;
    }
    e.forwarded =
        c->kind == mam::CarbonKind::Sent ? policy::Forwarded::Sent : policy::Forwarded::Received;
    e.inner = std::move(c->inner);
    if (e.forwarded == policy::Forwarded::Sent) {
      // The upstream routed a message one of our carriers sent: whatever
      // became of the carrier, the outbox entry is done.
      outbox_.settle_origin_id(message_ids(e.inner).origin_id);
      // What our own device links sent was handled when the device sent it.
      auto from_jid = e.inner.attr_or("from");
      if (device_by_jid(from_jid)) return;
    }
  } else {
    e.inner = std::move(s);
  }
  process_entering(std::move(e));
}

void AccountHub::from_link(Device* d, Stanza s) {
  const std::string name = s.name();
  if (name != "message") {
    // Presence, iq and their errors: that device's own traffic.
    if (name == "presence" && anchor_ && !anchor_jid().empty() &&
        policy::jid_equal(s.attr_or("from"), anchor_jid()))
      return;  // the anchor's own presence is not a device
    d->deliver(s, 0);
    return;
  }
  Entering e;
  e.via = d;
  if (mam::unwrap_carbon(s)) {
    // Links never enable Carbons upstream; a carbon here is stale or spoofed.
    return;
  }
  e.inner = std::move(s);
  process_entering(std::move(e));
}

policy::Addressing AccountHub::entering_addressing(const Entering& e, bool outgoing) const {
  policy::Addressing a;
  a.dir = policy::Direction::FromLegacy;
  const auto f_type = e.inner.attr_or("type");
  const bool groupchat = f_type == "groupchat";
  const bool muc_user = static_cast<bool>(e.inner.child("x", ns::kMucUser));
  if (e.via && e.forwarded == policy::Forwarded::None) {
    a.to = policy::Target::OwnDevice;
    a.device_present = true;
    return a;
  }
  const std::string to = e.inner.attr_or("to");
  a.to = target_of(to, groupchat, muc_user);
  if (outgoing && a.to == policy::Target::OwnBare && to.empty()) a.to = policy::Target::OtherBare;
  if (a.to == policy::Target::OwnDevice) a.device_present = device_by_jid(to) != nullptr;
  return a;
}

store::MessageRecord AccountHub::make_record(const Stanza& inner, bool outgoing, uint32_t flags,
                                             const std::string& upstream_id, int64_t ts) const {
  store::MessageRecord r;
  r.timestamp_ms = ts;
  r.direction = outgoing ? store::Direction::kOutgoing : store::Direction::kIncoming;
  const std::string peer_jid = outgoing ? inner.attr_or("to") : inner.attr_or("from");
  r.peer_bare = bare_jid(peer_jid).value_or(account_);
  r.flags = flags;
  r.upstream_stanza_id = upstream_id;
  auto ids = message_ids(inner);
  // An error echoes the payload of what it bounces (ejabberd includes the
  // <origin-id/>): its ids are the original's and must not make it a
  // duplicate of it. Errors deduplicate by fingerprint only.
  const bool error = inner.attr_or("type") == "error";
  r.origin_id = error ? std::string() : ids.origin_id;
  if (error) r.upstream_stanza_id.clear();
  r.id = ids.id;
  const std::string content = fingerprint_content(inner);
  policy::DedupInput in;
  in.from = inner.attr_or("from");
  in.to = inner.attr_or("to");
  const std::string from = inner.attr_or("from"), to = inner.attr_or("to"),
                    type = inner.attr_or("type");
  in.from = from;
  in.to = to;
  in.type = type;
  in.id = ids.id;
  in.content = content;
  r.fingerprint = policy::dedup_key(in, account_, false).key;
  r.stanza = inner.to_string();
  return r;
}

void AccountHub::process_entering(Entering e) {
  Stanza& inner = e.inner;
  // The upstream's own archive id, before any stanza-id is stripped.
  if (e.upstream_id.empty() && trust_upstream_ids() && inner.attr_or("type") != "error") {
    for (auto& [id, by] : message_ids(inner).stanza_ids)
      if (policy::jid_equal(by, account_)) e.upstream_id = id;
  }
  strip_claimed_stanza_ids(inner, account_, domain_);
  auto f = stanza_features(inner);
  const std::string from_bare = bare_jid(inner.attr_or("from")).value_or("");
  const bool outgoing =
      e.forwarded == policy::Forwarded::Sent ||
      (e.forwarded == policy::Forwarded::None && e.via == nullptr && from_bare == account_ &&
       !inner.attr_or("from").empty() && inner.attr_or("type") != "error");
  if (outgoing && e.forwarded == policy::Forwarded::None) e.forwarded = policy::Forwarded::Sent;
  f.forwarded = e.forwarded;
  const auto ids = message_ids(inner);
  if (!ids.ref_id.empty() && account_no_ != 0) {
    const std::string peer = outgoing ? bare_jid(inner.attr_or("to")).value_or("") : from_bare;
    auto kind = f.type == policy::MessageType::Error ? store::RefKind::kSentId
                : f.correction || f.retraction
                    ? (outgoing ? store::RefKind::kSentId : store::RefKind::kReceivedId)
                    : (outgoing ? store::RefKind::kReceivedId : store::RefKind::kSentId);
    auto r = ctx_.store->resolve_ref(account_no_, peer, kind, ids.ref_id);
    f.refers_to_archived = r.ok() && r.value().has_value();
  }
  const auto cls = policy::classify(f);
  const auto addr = entering_addressing(e, outgoing);
  const auto d = policy::route(cls, addr, f);
  S2_LOG(LogLevel::Debug, "hub.entering",
         {{"account", account_},
          {"via", e.via ? e.via->resource() : "anchor"},
          {"class", std::string(policy::to_string(cls))},
          {"fwd", e.forwarded == policy::Forwarded::None   ? "none"
                  : e.forwarded == policy::Forwarded::Sent ? "sent"
                                                           : "received"},
          {"to", std::string(policy::to_string(addr.to))},
          {"decision", std::string(policy::to_string(d.disposition))},
          {"fanout", std::string(policy::to_string(d.devices))},
          {"archive", d.archive ? "yes" : "no"}});

  // A carbon of what one device's link receives is that link's business
  // unless it is history: the link got its own copy (and CSI holds it).
  if (e.via == nullptr && e.forwarded == policy::Forwarded::Received && !d.archive) return;

  if (d.disposition == policy::Disposition::Bounce) {
    // Back to the sender through the session it arrived on.
    UpstreamSession* back = e.via ? e.via->upstream() : anchor_ ? anchor_->session() : nullptr;
    if (d.error && back && e.forwarded == policy::Forwarded::None) {
      auto err = session2::build_stanza_error(inner, std::string(policy::to_string(d.error->type)),
                                              std::string(policy::to_string(d.error->condition)),
                                              "the addressed device is not connected");
      if (err) {
        err.remove_attr("from");
        back->send(err);
      }
    }
    return;
  }
  if (d.disposition != policy::Disposition::Deliver || d.proxy) return;
  Device* only = d.devices == policy::Fanout::OneDevice
                     ? (e.via ? e.via : device_by_jid(inner.attr_or("to")))
                     : nullptr;
  if (!d.archive) {
    fan_out(inner, outgoing, 0, d.devices, only, nullptr, nullptr);
    return;
  }
  uint32_t flags = store::msgflag::kPersistent;
  if (f.type == policy::MessageType::Error) flags |= store::msgflag::kError;
  if (f.receipt_request) flags |= store::msgflag::kReceiptRequested;
  const int64_t ts = e.stamp.value_or(delay_stamp(inner).value_or(unix_ms()));
  auto record = make_record(inner, outgoing, flags, e.upstream_id, ts);
  store::WriteBatch batch;
  batch.push_back(store::op::Append{account_no_, std::move(record), std::nullopt});
  // The cursor moves with live anchor traffic once catch-up is over: what
  // is behind it has been committed.
  if (!e.upstream_id.empty() && e.via == nullptr && !catching_up_ && synced_)
    batch.push_back(store::op::SetSyncCursor{account_no_, e.upstream_id});
  // Push: what PushService needs once it is committed (urgency: policies/urgency.h).
  const PushService::Facts push_facts{policy::urgency(cls, f, addr.dir), d.persistence};
  when_account_known([this, batch = std::move(batch), inner, outgoing, fanout = d.devices,
                      push_facts, alive = std::weak_ptr<bool>(alive_)]() mutable {
    for (auto& op : batch) {
      if (auto* a = std::get_if<store::op::Append>(&op)) a->account = account_no_;
      if (auto* c = std::get_if<store::op::SetSyncCursor>(&op)) c->account = account_no_;
    }
    ctx_.store->submit(
        std::move(batch), [this, inner, outgoing, fanout, push_facts, alive](store::WriteResult r) {
          if (alive.expired()) return;
          if (!r.ok() || r.ops.empty()) {
            m_commit_failed().inc();
            S2_LOG(LogLevel::Error, "hub.archive_failed",
                   {{"account", account_}, {"error", r.error ? r.error->text : "?"}});
            return;
          }
          const auto& op = r.ops[0];
          if (op.duplicate) {
            m_duplicates().inc();
            // The upstream's copy of a message a device sent: it has it.
            if (outgoing) outbox_.settle_archive_id(op.archive_id);
            return;
          }
          m_archived(outgoing ? "outgoing" : "incoming").inc();
          fan_out(inner, outgoing, op.archive_id, fanout, nullptr, nullptr, nullptr);
          push_->on_committed(inner, push_facts, op.archive_id);  // push: wake sleepers
        });
  });
}

// What device `d` gets for one message of the account's history.
Stanza AccountHub::copy_for(Device* d, const Stanza& inner, bool outgoing,
                            store::ArchiveId id) const {
  Stanza m = inner.clone();
  if (id != 0) set_stanza_id(m, account_, store::render_archive_id(id));
  if (outgoing) {
    // Sent by another resource of the account: Carbons <sent/>, for devices
    // that asked for Carbons.
    if (!d->carbons()) return {};
    return mam::wrap_carbon(mam::CarbonKind::Sent, account_, d->full_jid(), m);
  }
  const std::string to = inner.attr_or("to");
  auto tj = parse_jid(to);
  // Errors reach every device as they are: a bounce of what one device sent
  // is news for all of them (ARCHITECTURE.md §7).
  if (inner.attr_or("type") == "error") return m;
  const bool for_this = to.empty() || !tj || tj->resource.empty() ||
                        tj->resource == ctx_.config.anchor_resource ||
                        policy::jid_equal(to, d->full_jid()) || tj->bare() != account_;
  if (for_this) return m;
  if (d->carbons()) return mam::wrap_carbon(mam::CarbonKind::Received, account_, d->full_jid(), m);
  // Addressed to another resource: a session2 device converges to the one
  // history anyway; a legacy device that did not ask for Carbons keeps the
  // legacy contract (it finds the message in MAM).
  if (d->profile() == policy::Profile::Session2) return m;
  return {};
}

void AccountHub::fan_out(const Stanza& inner, bool outgoing, store::ArchiveId id,
                         policy::Fanout fanout, Device* only, Device* except, Device* except2) {
  if (fanout == policy::Fanout::None) return;
  if (fanout == policy::Fanout::OneDevice) {
    if (!only) return;
    Stanza m = inner.clone();
    if (id != 0) set_stanza_id(m, account_, store::render_archive_id(id));
    only->deliver(m, id);
    return;
  }
  // Copy: delivering may end a device (SM queue overflow), which detaches it.
  const std::vector<Device*> targets = devices_;
  for (auto* d : targets) {
    if (d == except || d == except2) continue;
    if (std::find(devices_.begin(), devices_.end(), d) == devices_.end()) continue;
    // A legacy device before its initial presence (and catch-up) gets
    // history at catch-up, not now; anything it already got there is skipped.
    // A message addressed to this very device is its own, live or not (a
    // legacy client may never send presence); catch-up will not repeat it.
    const bool addressed = !outgoing && policy::jid_equal(inner.attr_or("to"), d->full_jid());
    if (id != 0 && !d->live() && addressed) {
      d->note_pre_live(id);
    } else {
      if (id != 0 && (!d->live() || id <= d->live_from())) continue;
      if (id == 0 && !d->live() && d->profile() == policy::Profile::Legacy && !addressed) continue;
    }
    auto copy = copy_for(d, inner, outgoing, id);
    if (copy) d->deliver(copy, id);
  }
}

void AccountHub::bounce_to_device(Device* d, const Stanza& s, const policy::StanzaError& e,
                                  std::string condition, std::string text) {
  Stanza orig = s.clone();
  if (!orig.attr("from")) orig.set_attr("from", d->full_jid());
  if (condition.empty()) condition = std::string(policy::to_string(e.condition));
  if (text.empty()) text = "the addressed device is not connected";
  // The error goes back to the device as if the addressee had answered.
  auto err =
      session2::build_stanza_error(orig, std::string(policy::to_string(e.type)), condition, text);
  if (!err) return;
  err.set_attr("from", s.attr_or("to"));
  err.set_attr("to", d->full_jid());
  d->deliver(err, 0);
}

// ---------------------------------------------------------------------------
// Leaving

void AccountHub::from_device(Device* d, Stanza s, const std::string& resend_key,
                             std::function<void()> handled) {
  const std::string name = s.name();
  if (name == "message") {
    process_leaving_message(d, std::move(s), resend_key, std::move(handled));
    return;
  }
  if (name == "iq") {
    if (!handle_device_iq(d, s) && d->upstream()) d->upstream()->send(s);
    handled();
    return;
  }
  if (name == "presence") {
    handle_device_presence(d, std::move(s));
    handled();
    return;
  }
  handled();
}

bool AccountHub::handle_device_iq(Device* d, const Stanza& iq) {
  const std::string to = iq.attr_or("to");
  const bool to_account = to.empty() || policy::jid_equal(to, account_);
  const std::string type = iq.attr_or("type");
  auto reply_ok = [&] {
    auto r = Stanza::element("iq");
    r.set_attr("type", "result").set_attr("id", iq.attr_or("id")).set_attr("to", d->full_jid());
    d->deliver(r, 0);
  };
  // Push (XEP-0357) registrations are the proxy's, never relayed: the upstream's own push module
  // must not know them (proxy/push_service.h).
  if (to_account && PushService::wants(iq)) {
    push_->handle_iq(d, iq);
    return true;
  }
  // Carbons are the proxy's (links never enable them upstream: the anchor
  // hears everything once, and the hub copies it to the devices that asked).
  if (to.empty() && type == "set") {
    if (iq.child("enable", ns::kCarbons)) {
      d->set_carbons(true);
      reply_ok();
      return true;
    }
    if (iq.child("disable", ns::kCarbons)) {
      d->set_carbons(false);
      reply_ok();
      return true;
    }
  }
  // Another account's archive on this server is not ours to show (room
  // archives live on other domains and are relayed).
  const auto to_jid = parse_jid(to);
  const bool other_account = to_jid && !to_account && to_jid->domain == domain_ &&
                             !to_jid->local.empty() && to_jid->resource.empty();
  if ((to_account || other_account) && MamServer::wants(iq)) {
    when_account_known([this, d, alive = d->alive_token(), iq] {
      if (alive.expired()) return;
      MamServer::answer(ctx_, account_, account_no_, *d, iq);
    });
    return true;
  }
  return false;
}

void AccountHub::handle_device_presence(Device* d, Stanza p) {
  const bool broadcast = p.attr_or("to").empty();
  const std::string type = p.attr_or("type");
  if (broadcast && (type.empty() || type == "unavailable")) {
    const bool available = type.empty();
    const bool initial = available && !d->presence_available() && !d->live();
    d->set_presence(available, p.child("show").text_content(), p.child("status").text_content());
    // Bare-JID messages must have one upstream path: the anchor (§3).
    if (available) set_presence_priority(p, -1);
    if (d->upstream()) d->upstream()->send(p);
    update_anchor_presence();
    if (initial && d->profile() == policy::Profile::Legacy) {
      when_account_known([this, d, alive = d->alive_token()] {
        if (!alive.expired()) catch_up_device(d);
      });
    }
    return;
  }
  if (d->upstream()) d->upstream()->send(p);
}

void AccountHub::process_leaving_message(Device* d, Stanza s, const std::string& resend_key,
                                         std::function<void()> handled) {
  strip_claimed_stanza_ids(s, account_, domain_);
  auto f = stanza_features(s);
  const std::string to = s.attr_or("to");
  const bool groupchat = s.attr_or("type") == "groupchat";
  policy::Addressing a;
  a.dir = policy::Direction::FromDevice;
  a.sender = d->profile();
  a.to = target_of(to, groupchat, static_cast<bool>(s.child("x", ns::kMucUser)));
  if (a.to == policy::Target::OwnDevice) a.device_present = device_by_jid(to) != nullptr;
  const auto cls = policy::classify(f);
  const auto dec = policy::route(cls, a, f);
  if (dec.disposition == policy::Disposition::Bounce) {
    if (dec.error) bounce_to_device(d, s, *dec.error);
    handled();
    return;
  }
  if (dec.disposition != policy::Disposition::Deliver) {
    handled();
    return;
  }
  if (dec.rewrites.add_origin_id) {
    // The message's identity is ours to make unique: a client's 'id' may be
    // "1" every time (XEP-0359 §3: the origin-id is what must not repeat).
    // The client's 'id' stays as it is: receipts and corrections refer to it.
    if (!s.attr("id")) s.set_attr("id", new_id());
    ensure_origin_id(s, new_origin_id());
  }
  if (dec.rewrites.add_no_store) add_hint_no_store(s);
  if (dec.rewrites.add_private) add_carbons_private(s);
  // The copy other devices and the mirror see names its sender.
  Stanza stored = s.clone();
  stored.set_attr("from", d->full_jid());

  if (!dec.archive) {
    if (dec.upstream && d->upstream()) d->upstream()->send(s);
    Device* only = dec.devices == policy::Fanout::OneDevice ? device_by_jid(to) : nullptr;
    const bool to_own_device = only != nullptr;
    fan_out(stored, !to_own_device, 0, dec.devices, only, d, nullptr);
    handled();
    return;
  }
  if (dec.upstream && outbox_.full()) {
    // Bounded (ARCHITECTURE.md §10): the upstream is not taking what we
    // send. Refused before it is acknowledged, with an error the client
    // shows: never taken and then dropped.
    bounce_to_device(
        d, s,
        policy::StanzaError{policy::ErrorCondition::ServiceUnavailable, policy::ErrorType::Wait},
        "resource-constraint", "too many messages are waiting for the server");
    handled();
    return;
  }
  auto record = make_record(stored, true, store::msgflag::kPersistent, "", unix_ms());
  // Its origin-id is unique (ours, or the client's): that is its dedup key.
  // A fingerprint would make a reused id with the same text a duplicate.
  record.fingerprint.clear();
  std::optional<store::OutboxItem> outbox;
  const std::string wire = s.to_string();
  const int64_t now = unix_ms();
  if (dec.upstream) outbox = store::OutboxItem{d->resource(), wire, now};
  const std::string resource = d->resource();
  const std::string origin_id = record.origin_id;
  if (!resend_key.empty()) committing_keys_[resource + '\x1f' + resend_key] = d->serial();
  when_account_known([this, record = std::move(record), outbox, stored, resource, wire, origin_id,
                      now, resend_key, handled = std::move(handled), dev = d,
                      dev_alive = d->alive_token(), alive = std::weak_ptr<bool>(alive_)]() mutable {
    store::WriteBatch b;
    store::op::Append append{account_no_, std::move(record), std::move(outbox)};
    append.resend_scope = resource;
    append.resend_key = resend_key;
    b.push_back(std::move(append));
    ctx_.store->submit(std::move(b), [this, stored, resource, wire, origin_id, now, resend_key,
                                      handled, dev, dev_alive, alive](store::WriteResult r) {
      if (alive.expired()) return;
      if (!resend_key.empty()) committing_keys_.erase(resource + '\x1f' + resend_key);
      if (!r.ok() || r.ops.empty()) {
        // Not committed, so not acknowledged. Acks cover a prefix: the
        // device's counter could never move again, so its session ends and
        // the client resends everything it has not seen acknowledged.
        m_commit_failed().inc();
        S2_LOG(LogLevel::Error, "hub.send_not_archived",
               {{"account", account_}, {"error", r.error ? r.error->text : "?"}});
        if (!dev_alive.expired())
          dev->abort("internal-server-error", "a message could not be stored; please resend");
        return;
      }
      handled();
      const auto& op = r.ops[0];
      if (op.duplicate) {
        // The client's own origin-id, seen before: it is this message again.
        m_duplicates().inc();
        return;
      }
      m_archived("outgoing").inc();
      if (op.outbox_seq != 0)
        outbox_.add(Outbox::Entry{op.outbox_seq, op.archive_id, resource, wire, origin_id, now});
      Device* sender = dev_alive.expired() ? nullptr : dev;
      // A message to another of the account's devices arrives there as a
      // message; the others get the <sent/> copy.
      Device* target = device_by_jid(stored.attr_or("to"));
      if (target && target != sender) {
        Stanza m = stored.clone();
        set_stanza_id(m, account_, store::render_archive_id(op.archive_id));
        target->deliver(m, op.archive_id);
      }
      fan_out(stored, true, op.archive_id, policy::Fanout::AllDevices, nullptr, sender, target);
    });
  });
}

// A copy is what an *earlier* session of the same device sent: committed
// (its key is in the mirror, fresh) or committing now. The device itself
// tells apart its own session's sends (Device::is_resent_copy).
bool AccountHub::resend_seen(Device* d, const std::string& key) const {
  if (auto it = committing_keys_.find(d->resource() + '\x1f' + key);
      it != committing_keys_.end() && it->second != d->serial())
    return true;
  if (account_no_ == 0) return false;
  auto id = ctx_.store->resolve_ref(account_no_, d->resource(), store::RefKind::kResendKey, key);
  if (!id.ok() || !id.value()) return false;
  // A client resends right after it reconnects; a key left behind by a
  // crash must not swallow the same words sent much later.
  auto m = ctx_.store->get_message(account_no_, *id.value());
  return m.ok() && m.value() && unix_ms() - m.value()->record.timestamp_ms < kResendWindowMs;
}

void AccountHub::forget_resend_keys(Device* d, std::vector<std::string> keys) {
  if (keys.empty()) return;
  auto& v = forget_keys_[d->resource()];
  for (auto& k : keys) v.push_back(std::move(k));
  schedule_cursor_flush();
}

size_t AccountHub::unsent_backlog() const {
  size_t n = outbox_.unsent_bytes();
  if (anchor_ && anchor_->session()) n += anchor_->session()->write_backlog();
  return n;
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
// Catch-up from the upstream archive (PROTOCOLS.md §7)

void AccountHub::start_catchup() {
  if (!anchor_ || !anchor_->ready() || account_no_ == 0) return;
  if (!anchor_->upstream_has_mam().value_or(false)) {
    finish_catchup(true);  // nothing to replay: what arrives live is all there is
    return;
  }
  catching_up_ = true;
  const uint64_t gen = ++catchup_gen_;
  auto cursor = ctx_.store->get_sync_cursor(account_no_);
  if (cursor.ok() && cursor.value()) {
    catchup_page(*cursor.value(), std::nullopt, gen);
    return;
  }
  // First start for this account: the proxy's history begins now. Remember
  // where the upstream archive ends, without importing it.
  mam::ClientQuery q;
  q.rsm_before_last = true;
  q.max = 1;
  anchor_->query_mam(q, [this, gen, alive = std::weak_ptr<bool>(alive_)](Anchor::MamAnswer a) {
    if (alive.expired() || gen != catchup_gen_) return;
    if (!a.ok) {
      finish_catchup(false);
      return;
    }
    std::string last = a.fin.last;
    if (last.empty() && !a.items.empty()) last = a.items.back().id;
    if (last.empty()) {
      // Empty upstream archive: the first live stanza sets the cursor.
      finish_catchup(true);
      return;
    }
    ctx_.store->submit({store::op::SetSyncCursor{account_no_, last}},
                       [this, gen, alive](store::WriteResult r) {
                         if (!alive.expired() && gen == catchup_gen_) finish_catchup(r.ok());
                       });
  });
}

// `gen`: the catch-up this page belongs to; a page of an earlier catch-up
// (the anchor went down and came back meanwhile) stops its chain.
void AccountHub::catchup_page(std::optional<std::string> after, std::optional<int64_t> start,
                              uint64_t gen) {
  if (!anchor_ || !anchor_->ready()) return;
  mam::ClientQuery q;
  q.rsm_after = after;
  q.start_ms = start;
  q.max = kCatchupPage;
  anchor_->query_mam(
      q, [this, after, start, gen, alive = std::weak_ptr<bool>(alive_)](Anchor::MamAnswer a) {
        if (alive.expired() || !catching_up_ || gen != catchup_gen_) return;
        if (!a.ok) {
          if (a.error_condition == "item-not-found" && after && !start) {
            // The upstream no longer has our cursor (expired archive): catch up
            // by time from the last archived message and record the hole.
            auto b = ctx_.store->bounds(account_no_);
            const int64_t from = b.ok() ? b->last_ms : 0;
            store::Gap gap;
            gap.from_ms = from;
            gap.to_ms = unix_ms();
            gap.reason = "the upstream archive no longer has the last synchronised id";
            m_gaps().inc();
            S2_LOG(LogLevel::Warn, "hub.history_gap", {{"account", account_}});
            ctx_.store->submit({store::op::AddGap{account_no_, gap}}, [](store::WriteResult) {});
            catchup_page(std::nullopt, from, gen);
            return;
          }
          S2_LOG(LogLevel::Warn, "hub.catchup_failed",
                 {{"account", account_}, {"condition", a.error_condition}});
          finish_catchup(false);
          return;
        }
        store::WriteBatch batch;
        struct Pending {
          Stanza inner;
          bool outgoing;
          policy::Fanout fanout;
        };
        auto pending = std::make_shared<std::vector<std::optional<Pending>>>();
        std::string last = a.fin.last;
        for (auto& item : a.items) {
          last = item.id;
          Stanza inner = item.message;
          strip_claimed_stanza_ids(inner, account_, domain_);
          auto f = stanza_features(inner);
          const bool outgoing = bare_jid(inner.attr_or("from")).value_or("") == account_;
          f.forwarded = outgoing ? policy::Forwarded::Sent : policy::Forwarded::Received;
          Entering e;
          e.inner = inner;
          e.forwarded = f.forwarded;
          const auto dec = policy::route(policy::classify(f), entering_addressing(e, outgoing), f);
          if (!dec.archive) continue;
          uint32_t flags = store::msgflag::kPersistent;
          if (f.receipt_request) flags |= store::msgflag::kReceiptRequested;
          batch.push_back(store::op::Append{
              account_no_,
              make_record(inner, outgoing, flags, item.id, item.stamp_ms.value_or(unix_ms())),
              std::nullopt});
          pending->push_back(Pending{inner, outgoing, dec.devices});
        }
        if (!last.empty()) batch.push_back(store::op::SetSyncCursor{account_no_, last});
        const bool done = a.fin.complete || a.items.empty();
        ctx_.store->submit(
            std::move(batch), [this, pending, done, last, start, gen, alive](store::WriteResult r) {
              if (alive.expired()) return;
              const bool current = catching_up_ && gen == catchup_gen_;
              if (!r.ok()) {
                m_commit_failed().inc();
                if (current) finish_catchup(false);
                return;
              }
              size_t fresh = 0;
              for (size_t i = 0; i < pending->size() && i < r.ops.size(); ++i) {
                const auto& op = r.ops[i];
                if (op.duplicate) {
                  // In the upstream archive: an outbox entry for it is done.
                  outbox_.settle_archive_id(op.archive_id);
                  continue;
                }
                ++fresh;
                auto& p = *(*pending)[i];
                fan_out(p.inner, p.outgoing, op.archive_id, p.fanout, nullptr, nullptr, nullptr);
              }
              if (fresh)
                S2_LOG(LogLevel::Info, "hub.catchup_page",
                       {{"account", account_}, {"new", std::to_string(fresh)}});
              // What was committed is delivered either way; only the current
              // catch-up goes on paging.
              if (!current) return;
              if (done || last.empty()) {
                finish_catchup(true);
              } else {
                catchup_page(last, start, gen);
              }
            });
      });
}

void AccountHub::finish_catchup(bool ok, bool retry) {
  catching_up_ = false;
  synced_ = ok;
  // The outbox entries the catch-up did not find in the upstream archive go
  // out again; after a failed catch-up too (resending beats losing), but not
  // when the anchor went down (its next catch-up looks again).
  if (ok || retry) outbox_.release_held();
  held_bytes_ = 0;
  auto held = std::move(held_live_);
  held_live_.clear();
  for (auto& st : held) on_anchor_stanza(std::move(st));
  if (!ok && retry && anchor_ && anchor_->ready()) {
    // Live traffic flows meanwhile, without moving the cursor.
    catchup_retry_.start(30000, [this] {
      if (anchor_ && anchor_->ready() && !catching_up_) start_catchup();
    });
  }
}

}  // namespace s2
