// See displayed_sync.h.
#include "proxy/displayed_sync.h"

#include "common/store/archive_id.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "proxy/anchor.h"
#include "proxy/proxy_context.h"
#include "proxy/xmpp_ns.h"

namespace s2 {
namespace {
constexpr const char* kMds = "urn:xmpp:mds:displayed:0";
constexpr const char* kMdsAssist = "urn:xmpp:mds:server-assist:0";
constexpr const char* kPubsub = "http://jabber.org/protocol/pubsub";
constexpr const char* kPubsubOwner = "http://jabber.org/protocol/pubsub#owner";
constexpr const char* kData = "jabber:x:data";
constexpr const char* kDiscoInfo = "http://jabber.org/protocol/disco#info";
constexpr uint64_t kPublishTimeoutMs = 30000;

Metric& m_published(const char* result) {
  return counter("s2proxy_mds_published_total",
                 "XEP-0490 displayed states the proxy published to the account's PEP node",
                 std::string("result=\"") + result + "\"");
}

Stanza field(const char* var, const char* value, const char* type = nullptr) {
  Stanza f = Stanza::element("field");
  f.set_attr("var", var);
  if (type) f.set_attr("type", type);
  Stanza v = Stanza::element("value");
  v.add_text(value);
  f.add_child(v);
  return f;
}

// XEP-0490 §"Flagging chat as displayed": persistent, private, one item per
// chat kept for good. Not every server takes every field: ejabberd 23 refuses
// send_last_published_item and max_items=max as publish-options, and keeps
// one item per PEP node unless told otherwise, which would forget every chat
// but the last. Each retry drops what the previous answer refused, keeping
// what matters: private, persistent, many items.
Stanza publish_options(int level) {
  Stanza x = Stanza::element("x", kData);
  x.set_attr("type", "submit");
  x.add_child(field("FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options", "hidden"));
  x.add_child(field("pubsub#persist_items", "true"));
  if (level >= 2) x.add_child(field("pubsub#max_items", "max"));
  if (level == 1) x.add_child(field("pubsub#max_items", "1000"));  // ejabberd's default ceiling
  if (level >= 3) x.add_child(field("pubsub#send_last_published_item", "never"));
  x.add_child(field("pubsub#access_model", "whitelist"));
  Stanza po = Stanza::element("publish-options");
  po.add_child(x);
  return po;
}
}  // namespace

DisplayedSync::DisplayedSync(ProxyContext& ctx, const std::string& account,
                             std::function<Anchor*()> anchor)
    : ctx_(ctx), account_(account), anchor_(std::move(anchor)) {
  (void)ctx_;
}

std::optional<Stanza> DisplayedSync::take_assist(Stanza& message) {
  Stanza d = message.child("displayed", kMds);
  if (!d) return std::nullopt;
  Stanza payload = d.clone();
  message.remove_child("displayed", kMds);
  // A payload without exactly one stanza-id is not a displayed state.
  int ids = 0;
  for (auto& c : payload.children())
    if (c.is("stanza-id", ns::kSid)) ++ids;
  if (ids != 1) return std::nullopt;
  payload.set_attr("xmlns", kMds);
  return payload;
}

void DisplayedSync::advertise(Stanza& iq_result, const std::string& account) {
  (void)account;
  Stanza q = iq_result.child("query", kDiscoInfo);
  if (!q || q.attr("node")) return;
  for (auto& c : q.children())
    if (c.name() == "feature" && c.attr_or("var") == kMdsAssist) return;
  Stanza f = Stanza::element("feature");
  f.set_attr("var", kMdsAssist);
  q.add_child(f);
}

void DisplayedSync::assisted(const std::string& chat, Stanza displayed) {
  if (chat.empty()) return;
  waiting_[chat] = std::move(displayed);  // latest wins
  pump();
}

void DisplayedSync::marker_sent(const std::string& peer_bare, store::ArchiveId id) {
  Stanza d = Stanza::element("displayed", kMds);
  Stanza sid = Stanza::element("stanza-id", ns::kSid);
  sid.set_attr("by", account_);
  sid.set_attr("id", store::render_archive_id(id));
  d.add_child(sid);
  assisted(peer_bare, std::move(d));
}

void DisplayedSync::anchor_ready() { pump(); }

// One publication in flight per account: while a server keeps one item per
// node (ejabberd before configure()), a second one in flight would replace
// the first chat's state.
void DisplayedSync::pump() {
  if (in_flight_ || waiting_.empty()) return;
  Anchor* a = anchor_();
  if (!a || !a->ready()) return;
  auto first = waiting_.begin();
  std::string chat = first->first;
  Stanza d = std::move(first->second);
  waiting_.erase(first);
  in_flight_ = true;
  S2_LOG(LogLevel::Debug, "mds.publishing", {{"account", account_}, {"chat", chat}});
  publish(chat, d, level_);
}

void DisplayedSync::done() {
  in_flight_ = false;
  pump();
}

void DisplayedSync::publish(const std::string& chat, const Stanza& displayed, int level) {
  Anchor* a = anchor_();
  if (!a || !a->ready()) {
    waiting_.try_emplace(chat, displayed);
    in_flight_ = false;
    return;
  }
  Stanza iq = Stanza::element("iq");
  iq.set_attr("type", "set");
  // Addressed to the account: its PEP service answers from the bare JID,
  // which is what Anchor::request matches the answer against.
  iq.set_attr("to", account_);
  Stanza pubsub = Stanza::element("pubsub", kPubsub);
  Stanza pub = Stanza::element("publish");
  pub.set_attr("node", kMds);
  Stanza item = Stanza::element("item");
  item.set_attr("id", chat);
  item.add_child(displayed.clone());
  pub.add_child(item);
  pubsub.add_child(pub);
  pubsub.add_child(publish_options(level));
  iq.add_child(pubsub);
  a->request(
      iq, kPublishTimeoutMs,
      [this, chat, displayed, level, alive = std::weak_ptr<bool>(alive_)](const Stanza* answer) {
        if (alive.expired()) return;
        if (!answer) {
          // The anchor went down (or the server never answered): the
          // state waits for the anchor's next login, unless a newer one does.
          m_published("retry").inc();
          waiting_.try_emplace(chat, displayed);
          in_flight_ = false;
          return;
        }
        if (answer->attr_or("type") == "result") {
          m_published("ok").inc();
          S2_LOG(LogLevel::Debug, "mds.published",
                 {{"account", account_}, {"chat", chat}, {"level", std::to_string(level)}});
          level_ = level;  // what this server takes, from now on
          if (level < 2 && !configured_) {
            configure();
            return;
          }
          done();
          return;
        }
        if (level > 0) {
          // A field this server does not take: retry without it.
          S2_LOG(LogLevel::Debug, "mds.options_refused",
                 {{"account", account_},
                  {"level", std::to_string(level)},
                  {"error", answer->child("error").to_string()}});
          publish(chat, displayed, level - 1);
          return;
        }
        m_published("error").inc();
        S2_LOG(LogLevel::Warn, "mds.publish_failed",
               {{"account", account_}, {"error", answer->child("error").to_string()}});
        done();
      });
}

// The server did not take max_items with the publication: set it on the
// node as its owner, once per account and run.
void DisplayedSync::configure() {
  configured_ = true;
  Anchor* a = anchor_();
  if (!a || !a->ready()) {
    in_flight_ = false;
    return;
  }
  Stanza x = Stanza::element("x", kData);
  x.set_attr("type", "submit");
  x.add_child(field("FORM_TYPE", "http://jabber.org/protocol/pubsub#node_config", "hidden"));
  x.add_child(field("pubsub#max_items", "1000"));
  Stanza conf = Stanza::element("configure");
  conf.set_attr("node", kMds);
  conf.add_child(x);
  Stanza pubsub = Stanza::element("pubsub", kPubsubOwner);
  pubsub.add_child(conf);
  Stanza iq = Stanza::element("iq");
  iq.set_attr("type", "set");
  iq.set_attr("to", account_);
  iq.add_child(pubsub);
  a->request(iq, kPublishTimeoutMs, [this, alive = std::weak_ptr<bool>(alive_)](const Stanza* r) {
    if (alive.expired()) return;
    if (!r || r->attr_or("type") != "result")
      S2_LOG(LogLevel::Warn, "mds.configure_failed",
             {{"account", account_}, {"error", r ? r->child("error").to_string() : "no answer"}});
    done();
  });
}

}  // namespace s2
