// See notification_settings.h.
#include "proxy/notification_settings.h"

#include "common/util/log.h"
#include "common/util/metrics.h"
#include "proxy/anchor.h"
#include "proxy/proxy_context.h"

namespace s2 {
namespace {
constexpr std::string_view kBookmarks = "urn:xmpp:bookmarks:1";
constexpr std::string_view kNotify1 = "urn:xmpp:notification-settings:1";
constexpr std::string_view kNotify0 = "urn:xmpp:notification-settings:0";  // XEP-0492 0.1
constexpr const char* kPubsub = "http://jabber.org/protocol/pubsub";
constexpr const char* kPubsubEvent = "http://jabber.org/protocol/pubsub#event";
constexpr uint64_t kRequestTimeoutMs = 30000;
// After a device's change, before reading: its publish travels on the device's own upstream
// session, the read on the anchor's; the upstream must have applied the first.
constexpr uint64_t kRefetchDelayMs = 500;

Metric& m_reads(const char* result) {
  return counter("s2proxy_notify_settings_reads_total",
                 "reads of the account's XEP-0492 notification settings (bookmarks node)",
                 std::string("result=\"") + result + "\"");
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::optional<policy::MucNotify> setting_named(std::string_view name) {
  if (name == "always") return policy::MucNotify::Always;
  if (name == "on-mention") return policy::MucNotify::OnMention;
  if (name == "never") return policy::MucNotify::Never;
  return std::nullopt;
}

// The node of a pubsub element's publish/retract/items child, if it is the bookmarks node.
bool names_bookmarks(const Stanza& pubsub) {
  for (const auto& c : pubsub.children())
    if ((c.name() == "publish" || c.name() == "retract" || c.name() == "items") &&
        c.attr_or("node") == kBookmarks)
      return true;
  return false;
}
}  // namespace

NotificationSettings::NotificationSettings(ProxyContext& ctx, const std::string& account,
                                           std::function<Anchor*()> anchor)
    : account_(account), anchor_(std::move(anchor)), refetch_(ctx.loop) {}

policy::NotifyPrefs NotificationSettings::for_chat(std::string_view chat_bare) const {
  return policy::notify_prefs_for(&settings_, lower(chat_bare));
}

policy::ChatNotifySettings NotificationSettings::parse_items(const Stanza& iq_result) {
  policy::ChatNotifySettings out;
  Stanza items = iq_result.child("pubsub", kPubsub).child("items");
  if (!items || items.attr_or("node") != kBookmarks) return out;
  for (const auto& item : items.children()) {
    if (item.name() != "item") continue;
    const std::string chat = item.attr_or("id");
    if (chat.empty()) continue;
    Stanza conf = item.child("conference", kBookmarks);
    Stanza ext = conf ? conf.child("extensions", kBookmarks) : Stanza();
    if (!ext) continue;
    std::string_view ns = kNotify1;
    Stanza notify = ext.child("notify", ns);
    if (!notify) notify = ext.child("notify", ns = kNotify0);
    if (!notify) continue;
    std::vector<policy::NotifyRule> rules;
    for (const auto& el : notify.children()) {
      auto s = setting_named(el.name());
      if (!s || !el.is(el.name(), ns)) continue;
      rules.push_back({*s, el.attr_or("identity-category"), el.attr_or("identity-type")});
    }
    if (auto s = policy::resolve_notify(rules, policy::kNotifyCategory, policy::kNotifyType))
      out[lower(chat)] = *s;
  }
  return out;
}

bool NotificationSettings::touches_bookmarks(const Stanza& s) {
  if (s.name() == "iq") {
    if (s.attr_or("type") != "set") return false;
    Stanza ps = s.child("pubsub", kPubsub);
    return ps && names_bookmarks(ps);
  }
  if (s.name() == "message") {
    Stanza ev = s.child("event", kPubsubEvent);
    return ev && names_bookmarks(ev);
  }
  return false;
}

void NotificationSettings::anchor_ready() { fetch(); }

void NotificationSettings::observe(const Stanza& s) {
  if (!touches_bookmarks(s)) return;
  if (refetch_.active()) return;  // one read covers every change until then
  refetch_.start(kRefetchDelayMs, [this] { fetch(); });
}

void NotificationSettings::fetch() {
  if (in_flight_) {
    again_ = true;
    return;
  }
  Anchor* a = anchor_();
  if (!a || !a->ready()) return;  // anchor_ready() reads them
  Stanza iq = Stanza::element("iq");
  iq.set_attr("type", "get");
  iq.set_attr("to", account_);  // the account's PEP (Anchor::request matches from-less answers)
  Stanza ps = Stanza::element("pubsub", kPubsub);
  Stanza items = Stanza::element("items");
  items.set_attr("node", std::string(kBookmarks));
  ps.add_child(items);
  iq.add_child(ps);
  in_flight_ = true;
  a->request(iq, kRequestTimeoutMs, [this, alive = std::weak_ptr<bool>(alive_)](const Stanza* r) {
    if (alive.expired()) return;
    in_flight_ = false;
    if (r && r->attr_or("type") == "result") {
      settings_ = parse_items(*r);
      m_reads("ok").inc();
      S2_LOG(LogLevel::Debug, "notify.settings",
             {{"account", account_}, {"chats", std::to_string(settings_.size())}});
    } else if (r && r->child("error").child("item-not-found")) {
      settings_.clear();  // no bookmarks: every chat has XEP-0492's defaults
      m_reads("ok").inc();
      S2_LOG(LogLevel::Debug, "notify.settings", {{"account", account_}, {"chats", "0"}});
    } else {
      // Keep what was read before: a failed read is not "no settings".
      m_reads(r ? "error" : "timeout").inc();
      S2_LOG(LogLevel::Warn, "notify.settings_failed",
             {{"account", account_}, {"error", r ? r->child("error").to_string() : "no answer"}});
    }
    if (again_) {
      again_ = false;
      fetch();
    }
  });
}

}  // namespace s2
