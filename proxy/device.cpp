// See device.h.
#include "proxy/device.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "common/crypto/encoding.h"
#include "common/jid/jid.h"
#include "common/mam/datetime.h"
#include "common/store/archive_id.h"
#include "common/util/clock.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "policies/dedup.h"
#include "policies/stanza_facts.h"
#include "proxy/account_hub.h"
#include "proxy/delivery_urgency.h"
#include "proxy/proxy_context.h"
#include "proxy/xmpp_ns.h"

namespace s2 {
namespace {
Metric& m_hibernating() {
  static Metric& m = gauge("s2proxy_devices_hibernating", "devices waiting for SM resumption");
  return m;
}
Metric& m_resumed() {
  static Metric& m = counter("s2proxy_sm_resumed_total", "client SM resumptions");
  return m;
}
Metric& m_resends_absorbed() {
  static Metric& m = counter("s2proxy_device_resends_absorbed_total",
                             "messages a client sent again after a lost ack, taken once");
  return m;
}
Metric& m_backpressure() {
  static Metric& m = counter("s2proxy_device_reading_paused_total",
                             "times a client's socket was paused for upstream flow control");
  return m;
}
Metric& m_deliveries(policy::Urgency u) {
  static Metric* m[4] = {};
  auto& slot = m[static_cast<int>(u)];
  if (!slot)
    slot = &counter("s2proxy_deliveries_total", "stanzas delivered to devices, by urgency",
                    "urgency=\"" + std::string(policy::to_string(u)) + "\"");
  return *slot;
}
Metric& m_csi_held() {
  static Metric& m =
      counter("s2proxy_csi_held_total", "stanzas held for a CSI-inactive device (XEP-0352)");
  return m;
}
Metric& m_csi_coalesced() {
  static Metric& m = counter("s2proxy_csi_coalesced_total",
                             "held stanzas superseded by a newer one of the same key (dropped)");
  return m;
}
Metric& m_csi_flushed(CsiQueue::FlushReason r) {
  static Metric* m[6] = {};
  auto& slot = m[static_cast<int>(r)];
  if (!slot)
    slot = &counter("s2proxy_csi_flushed_total",
                    "held stanzas written to the client, by what flushed them (end: dropped "
                    "when the device ended)",
                    "reason=\"" + std::string(to_string(r)) + "\"");
  return *slot;
}
std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}
Metric& m_sm_overflow() {
  static Metric& m =
      counter("s2proxy_sm_queue_overflow_total", "devices ended because their SM queue was full");
  return m;
}
}  // namespace

Device* Device::create(ProxyContext& ctx, DeviceClient* client, std::string log_id,
                       std::unique_ptr<UpstreamSession> warm) {
  auto d = std::unique_ptr<Device>(new Device(ctx, client, std::move(log_id), std::move(warm)));
  Device* raw = d.get();
  ctx.devices.emplace(raw, std::move(d));
  return raw;
}

Device::Device(ProxyContext& ctx, DeviceClient* client, std::string log_id,
               std::unique_ptr<UpstreamSession> warm)
    : ctx_(ctx),
      client_(client),
      log_id_(std::move(log_id)),
      csi_(ctx.config.csi_max_queue),
      hibernate_timer_(ctx.loop),
      ack_timer_(ctx.loop),
      catchup_timer_(ctx.loop),
      pressure_timer_(ctx.loop) {
  static uint64_t next_serial = 1;
  serial_ = next_serial++;
  if (warm && warm->usable()) {
    upstream_ = std::move(warm);
    upstream_->set_listener(this);
  } else {
    upstream_ = std::make_unique<UpstreamSession>(ctx.loop, ctx.upstream, this, log_id_);
  }
}

Device::~Device() {
  if (upstream_) upstream_->close();
}

void Device::login(const std::string& account, const UpstreamSecret& secret) {
  login_account_ = account;
  auto j = parse_jid(account);
  upstream_->login(j ? j->local : account, secret);
}

bool Device::login_kept(const std::string& account, const std::string& resource,
                        const UpstreamSecret& secret) {
  auto* hub = AccountHub::find(ctx_, account);
  if (!hub || !hub->keeps_link_for(resource)) return false;
  login_account_ = account;
  deferred_secret_ = secret;
  // Not from inside the caller's SASL exchange: the client session finishes its step first.
  defer(ctx_.loop, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired() && !ended_) on_upstream_authenticated();
  });
  return true;
}

void Device::bind(const std::string& resource) {
  AccountHub* hub = login_account_.empty() ? nullptr : AccountHub::find(ctx_, login_account_);
  if (auto link = hub ? hub->take_kept_link(resource) : nullptr) {
    // The link this device had before, bound to the same resource, kept up by the anchor while
    // the device was gone: it is the device's again. A session of our own that logged in
    // meanwhile (a password login, checked upstream) is not needed; its callback may be on
    // the stack, so it is freed on the next turn.
    S2_LOG(LogLevel::Info, "device.takes_kept_link",
           {{"session", log_id_}, {"jid", link->full_jid()}});
    deferred_secret_.reset();
    UpstreamSession::retire(ctx_.loop, std::move(upstream_));
    upstream_ = std::move(link);
    upstream_->set_listener(this);
    on_upstream_bound(upstream_->full_jid());
    return;
  }
  if (deferred_secret_) {
    // The kept link went away between login_kept and now: log in after all, then bind.
    bind_after_login_ = resource;
    UpstreamSecret secret = std::move(*deferred_secret_);
    deferred_secret_.reset();
    login(login_account_, secret);
    return;
  }
  upstream_->bind(resource);
}

void Device::on_upstream_authenticated() {
  if (!bind_after_login_.empty()) {  // the client was told already (login_kept)
    upstream_->bind(std::exchange(bind_after_login_, {}));
    return;
  }
  if (client_) client_->on_device_authenticated();
}

void Device::on_upstream_login_failed(const UpstreamFailure& f) {
  auto* c = client_;
  end();
  if (c) c->on_device_login_failed(f);
}

void Device::on_upstream_bound(const std::string& full_jid) {
  full_jid_ = full_jid;
  if (auto j = parse_jid(full_jid)) {
    account_ = j->bare();
    resource_ = j->resource;
  }
  if (client_) client_->on_device_bound(full_jid);
  if (ended_ || account_.empty()) return;
  // After the client learned its JID: the hub may start delivering.
  hub_ = &AccountHub::of(ctx_, account_);
  hub_->attach(this);
}

void Device::on_upstream_bind_failed(const std::string& condition, const std::string& text) {
  if (client_) client_->on_device_bind_failed(condition, text);
}

namespace {
// Flow control marks (bytes an upstream session has not written yet;
// stanzas taken from the client but not handled yet). Above the high mark
// the client's socket is not read; reading resumes below the low mark.
constexpr size_t kBacklogHigh = 256 * 1024;
constexpr size_t kBacklogLow = 64 * 1024;
constexpr uint64_t kPendingHigh = 256;
constexpr uint64_t kPendingLow = 64;

// Only persistent messages are worth recognising when resent; the key of
// anything else is never looked at.
std::string resend_key_of(const Stanza& s) {
  if (s.name() != "message") return {};
  auto ids = message_ids(s);
  return policy::resend_key(s.attr_or("to"), s.attr_or("type"), ids.id, ids.origin_id,
                            fingerprint_content(s));
}
}  // namespace

void Device::from_client(Stanza s) {
  if (ended_ || !upstream_) return;
  // XEP-0198: the proxy has taken responsibility once the hub handled it —
  // for a persistent message, once it is committed to the mirror. Acks
  // cover a prefix, so a later stanza handled sooner waits for earlier ones.
  const uint64_t seq = in_seq_++;
  if (s.name() == "presence") note_room_presence(s);
  if (!hub_) {
    upstream_->send(s);
    handled(seq);
    return;
  }
  // Without SM a client never resends: nothing to recognise.
  std::string key = sm_ ? resend_key_of(s) : std::string();
  if (!key.empty()) {
    if (is_resent_copy(key)) {
      // Taken before (committed, sent upstream): acknowledge the copy only.
      S2_LOG(LogLevel::Debug, "device.resend_absorbed", {{"session", log_id_}});
      m_resends_absorbed().inc();
      handled(seq);
      return;
    }
    own_keys_.insert(key);
    seq_keys_[seq] = key;
  }
  hub_->from_device(this, std::move(s), key, [this, seq, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) handled(seq);
  });
  apply_backpressure();
}

bool Device::is_resent_copy(const std::string& key) {
  // Unannounced at a resumption: the client resends these first.
  if (auto it = resend_candidates_.find(key); it != resend_candidates_.end()) {
    resend_candidates_.erase(it);
    hub_->forget_resend_keys(this, {key});
    return true;
  }
  // Sent again within this session: a second message, not a copy.
  if (own_keys_.count(key)) return false;
  // A new session: a copy of what an earlier session of this device sent
  // (the proxy or the connection died before the client saw the ack).
  return hub_->resend_seen(this, key);
}

void Device::handled(uint64_t seq) {
  // Below next_handled_: dropped at a resumption (the client resends it).
  if (seq < next_handled_) return;
  handled_ahead_.insert(seq);
  static const Stanza counted = Stanza::element("message");
  while (!handled_ahead_.empty() && *handled_ahead_.begin() == next_handled_) {
    handled_ahead_.erase(handled_ahead_.begin());
    if (auto it = seq_keys_.find(next_handled_); it != seq_keys_.end()) {
      counted_keys_.push_back(std::move(it->second));
      seq_keys_.erase(it);
    }
    if (sm_ && next_handled_ >= sm_base_) sm_->on_inbound(counted);
    ++next_handled_;
  }
  if (reading_paused_) apply_backpressure();
}

void Device::announce_handled() {
  if (counted_keys_.empty()) return;
  for (const auto& k : counted_keys_)
    if (auto it = own_keys_.find(k); it != own_keys_.end()) own_keys_.erase(it);
  if (hub_) hub_->forget_resend_keys(this, std::move(counted_keys_));
  counted_keys_.clear();
}

bool Device::under_pressure(bool resuming) const {
  const size_t backlog = upstream_ ? upstream_->write_backlog() : 0;
  const uint64_t pending = in_seq_ - std::min(in_seq_, next_handled_);
  const size_t carrier = hub_ ? hub_->unsent_backlog() : 0;
  if (resuming) return backlog > kBacklogLow || pending > kPendingLow || carrier > kBacklogLow;
  return backlog > kBacklogHigh || pending > kPendingHigh || carrier > kBacklogHigh;
}

void Device::apply_backpressure() {
  if (ended_) return;
  if (!reading_paused_) {
    if (!under_pressure(false)) return;
    reading_paused_ = true;
    m_backpressure().inc();
    S2_LOG(LogLevel::Debug, "device.reading_paused", {{"session", log_id_}});
    if (client_) client_->device_set_reading(false);
    // Upstream writes drain without an event of ours: look again shortly.
    pressure_timer_.start(
        5, [this] { apply_backpressure(); }, 5);
    return;
  }
  if (under_pressure(true)) return;
  reading_paused_ = false;
  pressure_timer_.stop();
  if (client_) client_->device_set_reading(true);
}

void Device::csi_from_client(const Stanza& s) {
  if (ended_) return;
  const bool inactive = s.name() == "inactive";
  S2_LOG(LogLevel::Debug, "device.csi",
         {{"session", log_id_},
          {"state", inactive ? "inactive" : "active"},
          {"held", std::to_string(csi_.size())}});
  auto held = csi_.set_inactive(inactive);
  if (!held.empty()) flush_held(std::move(held), CsiQueue::FlushReason::Active);
}

// XEP-0045 §7.2: joining is presence to room/nick with a muc <x/>; a later
// available presence to room/other-nick is a nick change (§7.6).
void Device::note_room_presence(const Stanza& presence) {
  if (const std::string to = presence.attr_or("to"); !to.empty()) {
    const std::string type = presence.attr_or("type");
    if (type == "unavailable") {
      directed_presence_.erase(to);
    } else if (type.empty() && directed_presence_.size() < 1000) {
      directed_presence_.insert(to);
    }
  }
  auto j = parse_jid(presence.attr_or("to"));
  if (!j || j->resource.empty() || j->local.empty()) return;
  const std::string room = ascii_lower(j->bare());
  const std::string type = presence.attr_or("type");
  auto it = room_nicks_.find(room);
  if (type == "unavailable") {
    if (it != room_nicks_.end()) room_nicks_.erase(it);
    return;
  }
  if (!type.empty()) return;
  if (it != room_nicks_.end()) {
    it->second = j->resource;
  } else if (presence.child("x", "http://jabber.org/protocol/muc") && room_nicks_.size() < 1000) {
    room_nicks_.emplace(room, j->resource);
  }
}

namespace {
// Ids of iqs the proxy sends upstream on a device's behalf; their answers are
// consumed here and never reach the client.
constexpr std::string_view kInternalIqPrefix = "s2-internal-";
}  // namespace

// Carbons are the proxy's: links never enable them upstream (the anchor
// hears every copy once and the hub fans out).
void Device::enable_carbons_inline() { carbons_ = true; }

void Device::on_upstream_stanza(Stanza s) {
  if (s.name() == "iq" && s.attr_or("id").starts_with(kInternalIqPrefix)) {
    const std::string type = s.attr_or("type");
    if (type == "result" || type == "error") {
      if (type == "error")
        S2_LOG(LogLevel::Warn, "device.internal_iq_failed",
               {{"session", log_id_}, {"id", s.attr_or("id")}});
      return;
    }
  }
  if (hub_) {
    hub_->from_link(this, std::move(s));
  } else {
    deliver(s, 0);
  }
}

// Our own <stanza-id by=account>, directly or inside a carbon.
store::ArchiveId Device::archive_id_in(const Stanza& s) const {
  Stanza m = s;
  for (const char* wrap : {"sent", "received"}) {
    if (auto c = s.child(wrap, ns::kCarbons)) {
      m = c.child("forwarded", ns::kForward).child("message");
      break;
    }
  }
  if (!m) return 0;
  for (auto& c : m.children())
    if (c.is("stanza-id", ns::kSid) && c.attr_or("by") == account_)
      return store::parse_archive_id(c.attr_or("id")).value_or(0);
  return 0;
}

DeliveryView Device::delivery_view() const {
  return DeliveryView{account_, &room_nicks_, hub_ ? &hub_->notify_settings() : nullptr};
}

void Device::deliver(const Stanza& s, store::ArchiveId archive_id) {
  if (ended_) return;
  const DeliveryFacts facts = delivery_facts(s, delivery_view());
  m_deliveries(facts.urgency).inc();
  if (!csi_.inactive() && csi_.size() == 0) {
    write_out(s, archive_id);
    return;
  }
  auto u = facts.urgency;
  // Without SM the hub counts an archived stanza delivered when it is written
  // (and a legacy catch-up marks its whole range at its end): holding one
  // could let the device's cursor pass it. Such a stanza flushes instead.
  if (!sm_ && archive_id != 0 && u == policy::Urgency::Silent) u = policy::Urgency::Normal;
  auto out = csi_.offer(CsiQueue::Item{s.clone(), archive_id, unix_ms(), facts.coalesce_key}, u);
  if (!out.now) {
    m_csi_held().inc();
    if (out.coalesced) m_csi_coalesced().inc();
    return;
  }
  if (out.reason) flush_held(std::move(out.flushed), *out.reason);
  if (!ended_) write_out(out.now->stanza, archive_id);
}

void Device::flush_held(std::vector<CsiQueue::Item> items, CsiQueue::FlushReason reason) {
  m_csi_flushed(reason).inc(static_cast<int64_t>(items.size()));
  S2_LOG(LogLevel::Debug, "device.csi_flush",
         {{"session", log_id_},
          {"reason", std::string(to_string(reason))},
          {"stanzas", std::to_string(items.size())}});
  for (auto& it : items) {
    if (ended_) return;  // SM overflow ended it: the rest is dropped (see end())
    // XEP-0203: when the proxy got it, not when the client does.
    add_delay(it.stanza, ctx_.config.domain, mam::format_datetime(it.held_at_ms));
    write_out(it.stanza, it.archive_id);
  }
}

void Device::write_out(const Stanza& s, store::ArchiveId archive_id) {
  if (sm_) {
    if (sm_->on_outbound(s) == session2::SmState::Outbound::QueueFull) {
      // Bounded: a device that neither reads nor acks must not grow without
      // limit. Ending it lets the upstream's own SM handling (offline storage
      // or bounce) take over what was not acknowledged to us.
      m_sm_overflow().inc();
      S2_LOG(LogLevel::Warn, "device.sm_queue_full", {{"session", log_id_}});
      auto* c = client_;
      end();
      if (c) c->on_device_ended("policy-violation", "too many unacknowledged stanzas");
      return;
    }
    request_ack_soon();
  } else if (archive_id != 0 && client_ && hub_) {
    hub_->delivered(this, archive_id);  // no SM: written is all we will know
  }
  if (client_) client_->device_write(s);
}

// One <r/> per burst of outbound stanzas, so acks keep up without doubling
// the traffic.
void Device::request_ack_soon() {
  if (!client_ || ack_timer_.active()) return;
  ack_timer_.start(100, [this] {
    if (client_ && sm_ && sm_->unacked_count() > 0)
      client_->device_write(session2::build_sm_request());
  });
}

Stanza Device::enable_sm(const session2::SmEnable& req) {
  if (sm_) return session2::build_sm_failed("unexpected-request");
  sm_.emplace(ctx_.config.sm_max_queue);
  sm_base_ = in_seq_;  // counting starts with the next stanza
  sm_resumable_ = req.resume;
  resume_window_s_ = static_cast<uint32_t>(ctx_.config.sm_resume_timeout);
  if (req.max && *req.max < resume_window_s_) resume_window_s_ = std::max<uint32_t>(*req.max, 1);
  session2::SmEnabled e;
  if (sm_resumable_) {
    sm_id_ = crypto::random_nonce(18);
    ctx_.resumable[sm_id_] = this;
    e.id = sm_id_;
    e.resume = true;
    e.max = resume_window_s_;
  }
  S2_LOG(LogLevel::Debug, "device.sm_enabled",
         {{"session", log_id_}, {"resume", sm_resumable_ ? "true" : "false"}});
  return session2::build_sm_enabled(e);
}

void Device::sm_request() {
  if (sm_ && client_) {
    client_->device_write(sm_->build_ack());
    announce_handled();
  }
}

bool Device::sm_ack(uint32_t h, std::string* error_text) {
  if (!sm_) return true;
  auto r = sm_->on_ack(h);
  if (!r) {
    *error_text = r.error().text;
    return false;
  }
  if (hub_) {
    store::ArchiveId top = 0;
    for (auto& st : r.value()) top = std::max(top, archive_id_in(st));
    if (top) hub_->delivered(this, top);
  }
  return true;
}

Device* Device::find_resumable(ProxyContext& ctx, const std::string& sm_id,
                               const std::string& account) {
  auto it = ctx.resumable.find(sm_id);
  if (it == ctx.resumable.end()) return nullptr;
  Device* d = it->second;
  // A resumption id is only good for the account that created it.
  if (d->ended_ || d->account_ != account) return nullptr;
  return d;
}

bool Device::resume(DeviceClient* client, uint32_t client_h, std::vector<Stanza>* resend,
                    std::string* error_text) {
  auto r = sm_->on_resume(client_h);
  if (!r) {
    *error_text = r.error().text;
    return false;
  }
  // Stanzas still waiting for their commit are not in <resumed h/>: the
  // client resends them. The originals are carried out (committed, sent
  // upstream) but no longer counted; their copies are recognised by their
  // resend keys, taken once and counted instead.
  next_handled_ = in_seq_;
  handled_ahead_.clear();
  seq_keys_.clear();
  announce_handled();  // <resumed h/> tells the client what was counted
  for (const auto& k : own_keys_) resend_candidates_.insert(k);
  own_keys_.clear();
  if (client_ && client_ != client) {
    // The old connection is still open (half-dead TCP): it loses the device.
    auto* old = client_;
    client_ = nullptr;
    old->on_device_ended("conflict", "the session was resumed on another connection");
  }
  set_hibernating(false);
  client_ = client;
  if (reading_paused_) client_->device_set_reading(false);
  *resend = std::move(r.value());
  m_resumed().inc();
  S2_LOG(LogLevel::Info, "device.resumed",
         {{"session", log_id_}, {"jid", full_jid_}, {"resent", resend->size()}});
  return true;
}

// The gauge follows a flag, not the timer: a one-shot timer is no longer
// active inside its own callback.
void Device::set_hibernating(bool on) {
  if (on == hibernating_) return;
  hibernating_ = on;
  if (on) {
    m_hibernating().inc();
  } else {
    m_hibernating().dec();
    hibernate_timer_.stop();
  }
}

// A user who logs in, enables resumption and drops the connection in a loop
// would otherwise pile up devices (each with an upstream connection) for
// the resumption window: past the cap, the longest-hibernating one ends.
void Device::limit_hibernating_per_account() {
  std::vector<Device*> mine;
  for (auto& [d, owned] : ctx_.devices)
    if (d->hibernating_ && !d->ended_ && d->account_ == account_) mine.push_back(d);
  while (mine.size() > kMaxHibernatingPerAccount) {
    auto oldest = std::min_element(mine.begin(), mine.end(), [](Device* a, Device* b) {
      return a->hibernated_at_ < b->hibernated_at_;
    });
    S2_LOG(LogLevel::Info, "device.hibernation_evicted", {{"session", (*oldest)->log_id_}});
    (*oldest)->end();
    mine.erase(oldest);
  }
}

void Device::detach(DeviceClient* client) {
  if (client_ != client || ended_) return;
  client_ = nullptr;
  ack_timer_.stop();
  if (sm_ && sm_resumable_ && upstream_ && upstream_->ready() && !ctx_.shutting_down) {
    set_hibernating(true);
    hibernated_at_ = uv_now(ctx_.loop);
    limit_hibernating_per_account();
    S2_LOG(LogLevel::Info, "device.hibernating",
           {{"session", log_id_}, {"jid", full_jid_}, {"window_s", resume_window_s_}});
    hibernate_timer_.start(uint64_t{resume_window_s_} * 1000, [this] {
      S2_LOG(LogLevel::Info, "device.resume_window_over", {{"session", log_id_}});
      end();
    });
    return;
  }
  end();
}

void Device::on_upstream_closed(const std::string& stream_error, const std::string& text) {
  auto* c = client_;
  end();
  if (!c) return;
  // The device's stream cannot outlive its upstream session: pass the reason on.
  if (stream_error == "conflict") {
    c->on_device_ended("conflict", text.empty() ? "this resource was replaced" : text);
  } else {
    c->on_device_ended("reset", "the upstream session ended" + (text.empty() ? "" : ": " + text));
  }
}

size_t Device::catchup_room() const {
  if (ended_) return 0;
  if (sm_) {
    // Leave room for a full MAM page and a presence burst on top of the
    // catch-up: the queue is bounded and overflowing it ends the device.
    const size_t q = ctx_.config.sm_max_queue;
    const size_t reserve = ctx_.config.mam_max_page + 32;
    const size_t limit = q > reserve + 8 ? q - reserve : std::max<size_t>(q / 4, 1);
    const size_t unacked = sm_->unacked_count();
    return unacked >= limit ? 0 : std::min<size_t>(limit - unacked, 200);
  }
  if (!client_) return 0;
  return client_->device_write_backlog() < 256 * 1024 ? 200 : 0;
}

size_t Device::queue_room() const {
  if (!sm_) return SIZE_MAX;
  const size_t q = ctx_.config.sm_max_queue, unacked = sm_->unacked_count();
  return unacked >= q ? 0 : q - unacked;
}

void Device::poll_catchup(std::function<void()> more) {
  catchup_timer_.start(
      20,
      [this, more = std::move(more)] {
        if (ended_ || !catching_up_) {
          catchup_timer_.stop();
          return;
        }
        if (catchup_room() == 0) {
          // A client that acks only when asked (after a resume, say).
          if (sm_ && client_ && sm_->unacked_count() > 0) request_ack_soon();
          return;
        }
        catchup_timer_.stop();
        // Not from inside this callback: `more` may start the timer again.
        defer(ctx_.loop, [more, alive = std::weak_ptr<bool>(alive_)] {
          if (!alive.expired()) more();
        });
      },
      20);
}

// The link stays up without this device (the anchor keeps it, or holds it until its own session
// is ready): the rooms it joined and the contacts it sent presence to see it leave now, as they
// would when its stream ended.
void Device::leave_directed_presence() {
  if (!upstream_ || !upstream_->ready()) return;
  for (const auto& to : directed_presence_) {
    auto p = Stanza::element("presence");
    p.set_attr("to", to).set_attr("type", "unavailable");
    upstream_->send(p);
  }
  directed_presence_.clear();
  room_nicks_.clear();
}

void Device::abort(const std::string& condition, const std::string& text) {
  auto* c = client_;
  end();
  if (c) c->on_device_ended(condition, text);
}

void Device::end() {
  if (ended_) return;
  ended_ = true;
  client_ = nullptr;
  set_hibernating(false);
  ack_timer_.stop();
  catchup_timer_.stop();
  pressure_timer_.stop();
  catching_up_ = false;
  // Held stanzas are dropped: the persistent ones are in the mirror (the
  // device's next session catches up), the rest is stale presence/state.
  if (auto held = csi_.take_all(); !held.empty())
    m_csi_flushed(CsiQueue::FlushReason::End).inc(static_cast<int64_t>(held.size()));
  if (!sm_id_.empty()) ctx_.resumable.erase(sm_id_);
  if (hub_) {
    // A link with sends the upstream has not acknowledged yet is drained by
    // the hub (ack or timeout) instead of being cut: resending them through
    // the anchor at once would deliver them twice. A link the anchor rides
    // stays until the anchor's own session is ready, then drains the same way.
    if (hub_->anchor_rides(this)) {
      leave_directed_presence();
      hub_->release_link(std::move(upstream_));
    } else if (upstream_ && upstream_->ready() && upstream_->unacked_tracked() > 0) {
      hub_->drain_link(std::move(upstream_));
    }
    hub_->detach(this);
  }
  hub_ = nullptr;
  if (upstream_) upstream_->close();
  // Callbacks of this device may be on the stack: free it on the next turn.
  defer(ctx_.loop, [&ctx = ctx_, self = this] { ctx.devices.erase(self); });
}

}  // namespace s2
