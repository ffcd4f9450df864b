// See push_service.h.
#include "proxy/push_service.h"

#include <algorithm>

#include "common/jid/jid.h"
#include "common/session2/errors.h"
#include "common/util/clock.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "policies/classify.h"
#include "policies/stanza_facts.h"
#include "proxy/anchor.h"
#include "proxy/device.h"
#include "proxy/proxy_context.h"

namespace s2 {
namespace {
constexpr const char* kPushNs = "urn:xmpp:push:0";
constexpr const char* kPubsub = "http://jabber.org/protocol/pubsub";
constexpr const char* kXData = "jabber:x:data";
constexpr const char* kSummary = "urn:xmpp:push:summary";
constexpr std::string_view kMagic = "S2P1";
constexpr uint32_t kMaxDecoded = 64;

Metric& m_sent() {
  static Metric& m =
      counter("s2proxy_push_sent_total", "XEP-0357 notifications published to app servers");
  return m;
}
Metric& m_coalesced() {
  static Metric& m = counter("s2proxy_push_coalesced_total",
                             "urgent stanzas counted into a pending notification instead of one");
  return m;
}
Metric& m_failed(const char* reason) {
  return counter("s2proxy_push_failed_total", "notifications not accepted by an app server",
                 std::string("reason=\"") + reason + "\"");
}
Metric& m_disabled() {
  static Metric& m = counter("s2proxy_push_disabled_total",
                             "registrations removed after repeated app-server errors");
  return m;
}

void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

bool get_u32(std::string_view& in, uint32_t* v) {
  if (in.size() < 4) return false;
  *v = 0;
  for (int i = 0; i < 4; ++i) *v = (*v << 8) | static_cast<unsigned char>(in[i]);
  in.remove_prefix(4);
  return true;
}

bool get_str(std::string_view& in, std::string* s) {
  uint32_t n = 0;
  if (!get_u32(in, &n) || in.size() < n) return false;
  s->assign(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}

Stanza field(std::string_view var, std::string_view value) {
  auto f = Stanza::element("field");
  f.set_attr("var", var);
  auto v = Stanza::element("value");
  v.add_text(value);
  f.add_child(v);
  return f;
}

// XEP-0357 §7: the summary form inside the pubsub item, the client's publish-options beside it.
Stanza publish_iq(const PushRegistration& reg, uint32_t count, const std::string& sender,
                  const std::string& body) {
  auto form = Stanza::element("x", kXData);
  form.set_attr("type", "submit");
  form.add_child(field("FORM_TYPE", kSummary));
  form.add_child(field("message-count", std::to_string(count)));
  if (!sender.empty()) form.add_child(field("last-message-sender", sender));
  if (!body.empty()) form.add_child(field("last-message-body", body));
  auto notification = Stanza::element("notification", kPushNs);
  notification.add_child(form);
  auto item = Stanza::element("item");
  item.add_child(notification);
  auto publish = Stanza::element("publish");
  if (!reg.node.empty()) publish.set_attr("node", reg.node);
  publish.add_child(item);
  auto pubsub = Stanza::element("pubsub", kPubsub);
  pubsub.add_child(publish);
  if (!reg.publish_options.empty()) {
    if (auto opts = Stanza::parse(reg.publish_options)) {
      auto po = Stanza::element("publish-options");
      po.add_child(opts);
      pubsub.add_child(po);
    }
  }
  auto iq = Stanza::element("iq");
  iq.set_attr("type", "set").set_attr("to", reg.jid);
  iq.add_child(pubsub);
  return iq;
}

void reply(Device* d, const Stanza& iq, const char* type = nullptr, const char* condition = nullptr,
           const char* text = nullptr) {
  if (!type) {
    auto r = Stanza::element("iq");
    r.set_attr("type", "result").set_attr("id", iq.attr_or("id")).set_attr("to", d->full_jid());
    d->deliver(r, 0);
    return;
  }
  auto err = session2::build_stanza_error(iq, type, condition, text ? text : "");
  if (!err) return;
  err.remove_attr("from");
  err.set_attr("to", d->full_jid());
  d->deliver(err, 0);
}

// The error type of an iq error answer ("" when there is none).
std::string error_type(const Stanza& answer) { return answer.child("error").attr_or("type"); }
}  // namespace

// ---------------------------------------------------------------------------
// Registration blob

std::string encode_push_registrations(const std::vector<PushRegistration>& regs) {
  if (regs.empty()) return {};
  std::string out(kMagic);
  put_u32(out, static_cast<uint32_t>(regs.size()));
  for (const auto& r : regs) {
    for (const std::string* s : {&r.jid, &r.node, &r.publish_options}) {
      put_u32(out, static_cast<uint32_t>(s->size()));
      out += *s;
    }
    put_u32(out, r.errors);
  }
  return out;
}

std::optional<std::vector<PushRegistration>> decode_push_registrations(std::string_view blob) {
  std::vector<PushRegistration> regs;
  if (blob.empty()) return regs;
  if (blob.substr(0, kMagic.size()) != kMagic) return std::nullopt;
  blob.remove_prefix(kMagic.size());
  uint32_t n = 0;
  if (!get_u32(blob, &n) || n == 0 || n > kMaxDecoded) return std::nullopt;
  for (uint32_t i = 0; i < n; ++i) {
    PushRegistration r;
    if (!get_str(blob, &r.jid) || !get_str(blob, &r.node) || !get_str(blob, &r.publish_options) ||
        !get_u32(blob, &r.errors) || r.jid.empty())
      return std::nullopt;
    regs.push_back(std::move(r));
  }
  if (!blob.empty()) return std::nullopt;
  return regs;
}

// ---------------------------------------------------------------------------
// Coalescing

PushCoalescer::Step PushCoalescer::on_stanza(policy::Urgency u, policy::Persistence p,
                                             policy::DeviceState state, bool registered,
                                             uint64_t now_ms, uint64_t window_ms) {
  if (state == policy::DeviceState::Connected) on_connected();
  policy::PushTarget t;
  t.state = state;
  t.registered = registered;
  t.unanswered = unanswered_;
  t.ms_since_last_push = now_ms >= last_push_ms_ ? now_ms - last_push_ms_ : 0;
  t.coalesce_ms = window_ms;
  Step step;
  step.action = policy::push_decide(u, p, t);
  if (step.action == policy::PushAction::Skip) return step;
  ++pending_;
  if (step.action == policy::PushAction::Push) {
    unanswered_ = true;
    last_push_ms_ = now_ms;
    step.message_count = pending_;
  }
  return step;
}

void PushCoalescer::on_connected() {
  unanswered_ = false;
  pending_ = 0;
}

// ---------------------------------------------------------------------------
// Service

PushService::PushService(ProxyContext& ctx, std::string account,
                         std::function<store::AccountNo()> account_no,
                         std::function<Anchor*()> anchor)
    : ctx_(ctx),
      account_(std::move(account)),
      account_no_(std::move(account_no)),
      anchor_(std::move(anchor)) {}

PushService::~PushService() = default;

bool PushService::wants(const Stanza& iq) {
  if (iq.attr_or("type") != "set") return false;
  return static_cast<bool>(iq.child("enable", kPushNs)) ||
         static_cast<bool>(iq.child("disable", kPushNs));
}

// Registrations live in the device records; read once, when the account is known.
bool PushService::ensure_loaded() {
  if (loaded_) return true;
  const store::AccountNo a = account_no_();
  if (a == 0) return false;
  auto devices = ctx_.store->list_devices(a);
  if (!devices.ok()) return false;
  loaded_ = true;
  for (const auto& rec : devices.value()) {
    if (rec.push.empty()) continue;
    auto regs = decode_push_registrations(rec.push);
    if (!regs) {
      S2_LOG(LogLevel::Warn, "push.bad_record", {{"account", account_}, {"device", rec.device_id}});
      continue;
    }
    entries_[rec.device_id].regs = std::move(*regs);
  }
  return true;
}

void PushService::persist(const std::string& resource, std::function<void(bool)> done) {
  store::op::UpdateDevice u;
  u.account = account_no_();
  u.device_id = resource;
  auto it = entries_.find(resource);
  u.push = it == entries_.end() ? std::string() : encode_push_registrations(it->second.regs);
  ctx_.store->submit({std::move(u)}, [done = std::move(done)](store::WriteResult r) {
    if (done) done(r.ok());
  });
}

void PushService::handle_iq(Device* d, const Stanza& iq) {
  if (!ensure_loaded()) {
    // The mirror is still creating the account (its first login, a moment ago).
    reply(d, iq, "wait", "resource-constraint", "the account is not ready yet; try again");
    return;
  }
  const Stanza enable = iq.child("enable", kPushNs);
  const Stanza req = enable ? enable : iq.child("disable", kPushNs);
  auto jid = normalize_jid(req.attr_or("jid"));
  if (!jid) {
    reply(d, iq, "modify", "bad-request", "the push service 'jid' is missing or invalid");
    return;
  }
  const std::optional<std::string> node = req.attr("node");
  auto& regs = entries_[d->resource()].regs;
  if (enable) {
    // The same service and node again replaces the registration (new publish-options).
    std::erase_if(regs, [&](const PushRegistration& r) {
      return r.jid == *jid && r.node == node.value_or("");
    });
    PushRegistration r;
    r.jid = *jid;
    r.node = node.value_or("");
    if (auto form = enable.child("x", kXData)) r.publish_options = form.to_string();
    if (r.publish_options.size() > kMaxFormBytes) {
      reply(d, iq, "modify", "not-acceptable", "publish-options too large");
      return;
    }
    if (regs.size() >= kMaxPerDevice) regs.erase(regs.begin());  // the oldest gives way
    regs.push_back(std::move(r));
  } else {
    // XEP-0357 §6: a disable without node revokes every node of that service.
    std::erase_if(regs, [&](const PushRegistration& r) {
      return r.jid == *jid && (!node || r.node == *node);
    });
  }
  S2_LOG(
      LogLevel::Info, enable ? "push.enabled" : "push.disabled",
      {{"device", d->log_id()}, {"service", *jid}, {"registrations", std::to_string(regs.size())}});
  if (regs.empty()) entries_.erase(d->resource());
  // Answered once it is in the mirror: an acknowledged registration survives a restart.
  persist(d->resource(), [d, iq, alive = d->alive_token()](bool ok) {
    if (alive.expired()) return;
    if (ok) {
      reply(d, iq);
    } else {
      reply(d, iq, "wait", "internal-server-error", "the registration could not be stored");
    }
  });
}

void PushService::device_attached(Device* d) {
  if (std::find(devices_.begin(), devices_.end(), d) == devices_.end()) devices_.push_back(d);
  if (auto it = entries_.find(d->resource()); it != entries_.end())
    it->second.coalescer.on_connected();
}

void PushService::device_detached(Device* d) {
  devices_.erase(std::remove(devices_.begin(), devices_.end(), d), devices_.end());
}

policy::DeviceState PushService::state_of(const std::string& resource) const {
  bool hibernating = false;
  for (auto* d : devices_) {
    if (d->resource() != resource || d->ended()) continue;
    if (!d->hibernating()) return policy::DeviceState::Connected;
    hibernating = true;
  }
  return hibernating ? policy::DeviceState::Hibernated : policy::DeviceState::Offline;
}

// Read at each urgent message (a short LMDB read): `s2proxy accounts
// push-body` changes it while the daemon runs.
bool PushService::body_opted_in() const {
  policy::BodySetting setting = policy::BodySetting::Default;
  auto a = ctx_.store->find_account(account_);
  if (a.ok() && a.value()) {
    const uint32_t bits = a.value()->settings;
    if (bits & store::acctset::kPushBodyOn) setting = policy::BodySetting::On;
    if (bits & store::acctset::kPushBodyOff) setting = policy::BodySetting::Off;
  }
  return policy::push_body_opted_in(setting, ctx_.config.push_body);
}

void PushService::on_committed(const Stanza& inner, const Facts& facts, store::ArchiveId id) {
  consider(inner, facts, id, nullptr);
}

void PushService::on_delivered(const std::string& resource, const Stanza& inner,
                               const Facts& facts) {
  consider(inner, facts, 0, &resource);
}

void PushService::consider(const Stanza& inner, const Facts& facts, store::ArchiveId id,
                           const std::string* only) {
  const policy::Urgency u = facts.urgency;
  const policy::Persistence p = facts.persistence;
  if (u != policy::Urgency::Urgent || !ensure_loaded() || entries_.empty()) return;
  const auto f = stanza_features(inner);
  const auto cls = policy::classify(f);
  // A room (or its occupant) is known by the full JID; a contact by the bare one.
  const std::string from = inner.attr_or("from");
  const bool muc =
      cls == policy::MessageClass::Groupchat || cls == policy::MessageClass::MucPrivate;
  const std::string sender = muc ? from : bare_jid(from).value_or(from);
  const std::string body = policy::push_includes_body(cls, f, body_opted_in())
                               ? inner.child("body").text_content()
                               : std::string();
  const uint64_t now = uv_now(ctx_.loop);
  const auto window = static_cast<uint64_t>(ctx_.config.push_coalesce * 1000);
  for (auto& [resource, entry] : entries_) {
    if (only && resource != *only) continue;
    const auto state = state_of(resource);
    const auto step = entry.coalescer.on_stanza(u, p, state, !entry.regs.empty(), now, window);
    if (step.action == policy::PushAction::Coalesce) {
      m_coalesced().inc();
      continue;
    }
    if (step.action != policy::PushAction::Push) continue;
    S2_LOG(LogLevel::Debug, "push.publish",
           {{"account", account_},
            {"device", resource},
            {"state", state == policy::DeviceState::Hibernated ? "hibernated" : "offline"},
            {"archive_id", std::to_string(id)},
            {"count", std::to_string(step.message_count)}});
    for (const auto& reg : entry.regs) publish(resource, reg, step.message_count, sender, body);
  }
}

void PushService::publish(const std::string& resource, const PushRegistration& reg, uint32_t count,
                          const std::string& sender, const std::string& body) {
  Anchor* anchor = anchor_();
  if (!anchor) {
    if (waiting_anchor_.size() < kMaxWaitingAnchor) {
      S2_LOG(LogLevel::Debug, "push.waits_for_anchor",
             {{"account", account_}, {"device", resource}});
      waiting_anchor_.push_back([this, resource, reg, count, sender, body] {
        if (entries_.count(resource) != 0) publish(resource, reg, count, sender, body);
      });
      return;
    }
    m_failed("anchor-down").inc();
    S2_LOG(LogLevel::Warn, "push.no_anchor", {{"account", account_}, {"device", resource}});
    return;
  }
  m_sent().inc();
  anchor->request(publish_iq(reg, count, sender, body), kPublishTimeoutMs,
                  [this, resource, jid = reg.jid, node = reg.node,
                   alive = std::weak_ptr<bool>(alive_)](const Stanza* answer) {
                    if (!alive.expired()) publish_answered(resource, jid, node, answer);
                  });
}

void PushService::anchor_ready() {
  auto waiting = std::move(waiting_anchor_);
  waiting_anchor_.clear();
  for (auto& fn : waiting) fn();
}

void PushService::publish_answered(const std::string& resource, const std::string& jid,
                                   const std::string& node, const Stanza* answer) {
  auto it = entries_.find(resource);
  PushRegistration* reg = nullptr;
  if (it != entries_.end())
    for (auto& r : it->second.regs)
      if (r.jid == jid && r.node == node) reg = &r;
  if (answer && answer->attr_or("type") == "result") {
    if (reg && reg->errors != 0) {
      reg->errors = 0;
      persist(resource, nullptr);
    }
    return;
  }
  const std::string type = answer ? error_type(*answer) : std::string();
  m_failed(!answer ? "timeout" : "error").inc();
  S2_LOG(LogLevel::Warn, "push.failed",
         {{"account", account_},
          {"device", resource},
          {"service", jid},
          {"error_type", answer ? type : "timeout"}});
  // Only the app server's own refusals count (mod_cloud_notify: every error but `wait`).
  if (!answer || type == "wait" || !reg) return;
  if (++reg->errors < kMaxErrors) {
    persist(resource, nullptr);
    return;
  }
  m_disabled().inc();
  S2_LOG(LogLevel::Warn, "push.registration_disabled",
         {{"account", account_}, {"device", resource}, {"service", jid}});
  auto& regs = it->second.regs;
  std::erase_if(regs, [&](const PushRegistration& r) { return r.jid == jid && r.node == node; });
  if (regs.empty()) entries_.erase(it);
  persist(resource, nullptr);
}

}  // namespace s2
