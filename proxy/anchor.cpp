// See anchor.h.
#include "proxy/anchor.h"

#include <algorithm>

#include "common/crypto/encoding.h"
#include "common/jid/jid.h"
#include "common/session2/errors.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "policies/stanza_facts.h"
#include "proxy/proxy_context.h"
#include "proxy/xmpp_ns.h"

namespace s2 {
namespace {
constexpr const char* kMamNs = "urn:xmpp:mam:2";
constexpr const char* kDiscoInfo = "http://jabber.org/protocol/disco#info";
constexpr const char* kVersion = "jabber:iq:version";
constexpr const char* kRoster = "jabber:iq:roster";
constexpr double kMaxBackoffS = 60;

Metric& m_anchors() {
  static Metric& m = gauge("s2proxy_anchors_ready", "anchor sessions logged in upstream");
  return m;
}
Metric& m_anchors_kept() {
  static Metric& m =
      gauge("s2proxy_anchors", "accounts keeping an anchor session upstream (ready or not)");
  return m;
}
Metric& m_reconnects() {
  static Metric& m = counter("s2proxy_upstream_reconnects_total", "anchor reconnect attempts");
  return m;
}
}  // namespace

Anchor::Anchor(ProxyContext& ctx, Owner* owner, std::string account)
    : ctx_(ctx),
      owner_(owner),
      account_(std::move(account)),
      log_id_("anchor:" + account_),
      reconnect_timer_(ctx.loop),
      setup_timer_(ctx.loop) {
  if (auto j = parse_jid(account_)) account_domain_ = j->domain;
  presence_show_ = ctx_.config.idle_presence == "unavailable" ? "" : ctx_.config.idle_presence;
  presence_available_ = ctx_.config.idle_presence != "unavailable";
  m_anchors_kept().inc();
}

Anchor::~Anchor() {
  m_anchors_kept().dec();
  if (ready_) m_anchors().dec();
  if (session_) session_->close();
}

void Anchor::adopt(UpstreamSession* link) {
  if (!can_adopt() || !link || !link->ready()) return;
  // A login of our own still in progress (the vault's put raced the device's bind): the link
  // serves instead; its gate ticket is released with it.
  if (session_) retire_session();
  reconnect_timer_.stop();
  stopped_ = false;
  borrowed_ = link;
  moved_ = false;
  full_jid_ = link->full_jid();
  S2_LOG(LogLevel::Info, "anchor.rides_device_link", {{"account", account_}, {"jid", full_jid_}});
  owner_->on_anchor_bound();
  after_bind();
}

std::unique_ptr<UpstreamSession> Anchor::move_onto(UpstreamSession* link) {
  if (!can_move() || !link || !link->ready() || link->full_jid().empty()) return nullptr;
  S2_LOG(LogLevel::Info, "anchor.moves_to_device_link",
         {{"account", account_}, {"from", full_jid_}, {"jid", link->full_jid()}});
  // Quiet (can_move): resetting fails nothing that waits.
  reset_session_state();
  std::unique_ptr<UpstreamSession> old = std::move(session_);
  kept_ = false;
  borrowed_ = link;
  moved_ = true;
  full_jid_ = link->full_jid();
  owner_->on_anchor_bound();
  after_bind();
  return old;
}

void Anchor::release() {
  if (!borrowed_) return;
  S2_LOG(LogLevel::Info, "anchor.leaves_device_link", {{"account", account_}, {"jid", full_jid_}});
  reset_session_state();
  borrowed_ = nullptr;
  ridden_presence_ = Stanza();
  full_jid_.clear();
  // The link is the device's: its unacknowledged sends are the device's drain's business, so
  // the owner is told of no session serial here.
  owner_->on_anchor_down(0);
  backoff_s_ = 1;
  if (!stopped_ && !ctx_.shutting_down) start();
}

void Anchor::keep(std::unique_ptr<UpstreamSession> link) {
  if (!link || borrowed_ != link.get() || !link->ready()) return;
  S2_LOG(LogLevel::Info, "anchor.keeps_device_link", {{"account", account_}, {"jid", full_jid_}});
  borrowed_ = nullptr;
  moved_ = false;
  kept_ = true;
  session_ = std::move(link);
  session_->set_listener(this);
  // The upstream still shows the device's presence (its caps, avatar, nick): the anchor's own
  // goes out at the owner's next update, even when show and status did not change.
  ridden_presence_ = Stanza();
  presence_owed_ = true;
}

bool Anchor::keeps(const std::string& resource) const {
  if (borrowed_ || !kept_ || !session_ || !session_->ready()) return false;
  auto j = parse_jid(full_jid_);
  return j && !resource.empty() && j->resource == resource;
}

std::unique_ptr<UpstreamSession> Anchor::give_back(const std::string& resource) {
  if (!keeps(resource)) return nullptr;
  S2_LOG(LogLevel::Info, "anchor.gives_back_device_link",
         {{"account", account_}, {"jid", full_jid_}});
  std::unique_ptr<UpstreamSession> link = std::move(session_);
  kept_ = false;
  borrowed_ = link.get();
  // It heard everything meanwhile, on this very session: as after a move, no gap.
  moved_ = true;
  return link;
}

bool Anchor::intercept(Stanza& s) {
  if (!borrowed_) return false;
  return take_answer(s);
}

void Anchor::start() {
  if (session() != nullptr) return;
  // New credentials (a fresh PLAIN login) lift a stop after rejection.
  stopped_ = false;
  auto entry = ctx_.vault->get(account_);
  if (!entry) {
    S2_LOG(LogLevel::Info, "anchor.no_credentials", {{"account", account_}});
    return;
  }
  auto j = parse_jid(account_);
  if (!j) return;
  session_ = std::make_unique<UpstreamSession>(ctx_.loop, ctx_.upstream, this, log_id_);
  session_->login(j->local, entry->upstream);
}

void Anchor::stop() {
  stopped_ = true;
  reconnect_timer_.stop();
  if (borrowed_) {
    release();
  } else {
    end_session();
  }
}

void Anchor::on_upstream_authenticated() { session_->bind(ctx_.config.anchor_resource); }

void Anchor::on_upstream_login_failed(const UpstreamFailure& f) {
  if (f.rejected) {
    S2_LOG(LogLevel::Warn, "anchor.rejected", {{"account", account_}, {"condition", f.condition}});
    stopped_ = true;
    retire_session();
    owner_->on_anchor_rejected();
    return;
  }
  went_down("login failed: " + f.text);
}

void Anchor::on_upstream_bind_failed(const std::string& condition, const std::string& text) {
  went_down("bind failed: " + condition + " " + text);
}

void Anchor::on_upstream_bound(const std::string& full_jid) {
  full_jid_ = full_jid;
  owner_->on_anchor_bound();
  after_bind();
}

void Anchor::after_bind() {
  // Live stanzas are held from now until ready: a setup iq that is never
  // answered must not hold them forever.
  setup_timer_.start(30000, [this] {
    if (!ready_) went_down("no answer to the session set-up (Carbons, disco) in 30 s");
  });
  // Carbons before presence and MAM: a message that arrives in between
  // would otherwise reach another resource only.
  auto iq = Stanza::element("iq");
  iq.set_attr("type", "set");
  iq.add_child(Stanza::element("enable", ns::kCarbons));
  send_iq(iq, [this](const Stanza& r) {
    if (r.attr_or("type") != "result")
      S2_LOG(LogLevel::Warn, "anchor.carbons_refused", {{"account", account_}});
    send_presence();
    // Whether the upstream archives (MAM), and whether before it delivers, are properties of
    // its host, the same for every account: one anchor asks (disco#info of its account, the
    // software version of its domain), the others use the answers for kMamKnowledgeTtlMs. Each
    // disco#info cost Prosody ~2-4 ms of CPU per first login at 1,000 sessions
    // (docs/architecture.md §29).
    const uint64_t now = uv_now(ctx_.loop);
    const auto& known = ctx_.upstream_traits;
    if (known.asked_at_ms && now - *known.asked_at_ms < kMamKnowledgeTtlMs) {
      become_ready(known.has_mam, known.archive_timing, "shared");
      return;
    }
    struct Asked {
      std::optional<bool> mam;  // none: no result (an error is not knowledge)
      bool disco_answered = false;
      std::optional<policy::ArchiveTiming> timing;
    };
    auto asked = std::make_shared<Asked>();
    auto both = [this, asked] {
      if (!asked->disco_answered || !asked->timing) return;
      const bool mam = asked->mam.value_or(false);
      // Only a disco#info result is knowledge: an error (a timeout, a refusal for this
      // account) is asked again by the next anchor. A version query without an answer means
      // MaybeLate, the safe side, and that is knowledge enough.
      if (asked->mam) ctx_.upstream_traits = {mam, *asked->timing, uv_now(ctx_.loop)};
      become_ready(mam, *asked->timing, "disco");
    };
    auto disco = Stanza::element("iq");
    disco.set_attr("type", "get").set_attr("to", account_);
    disco.add_child(Stanza::element("query", kDiscoInfo));
    send_iq(disco, [asked, both](const Stanza& r) {
      asked->disco_answered = true;
      if (r.attr_or("type") == "result") {
        asked->mam = false;
        for (auto& f : r.child("query", kDiscoInfo).children())
          if (f.name() == "feature" && f.attr_or("var") == kMamNs) asked->mam = true;
      }
      both();
    });
    auto version = Stanza::element("iq");
    const auto account = parse_jid(account_);
    version.set_attr("type", "get").set_attr("to", account ? account->domain : account_);
    version.add_child(Stanza::element("query", kVersion));
    send_iq(version, [asked, both](const Stanza& r) {
      asked->timing = policy::ArchiveTiming::MaybeLate;
      if (r.attr_or("type") == "result") {
        const Stanza q = r.child("query", kVersion);
        asked->timing = policy::archive_timing(q.child("name").text_content(),
                                               q.child("version").text_content());
      }
      both();
    });
  });
}

void Anchor::become_ready(bool mam, policy::ArchiveTiming timing, const char* known_from) {
  has_mam_ = mam;
  archive_timing_ = timing;
  if (!mam)
    S2_LOG(LogLevel::Warn, "anchor.no_upstream_mam",
           {{"account", account_},
            {"effect", "history is only what the proxy saw live; no catch-up after downtime"}});
  setup_timer_.stop();
  ready_ = true;
  // Only a session that got this far resets the backoff: one that dies
  // right after bind (an outbox stanza the upstream refuses) must not
  // reconnect every second forever.
  backoff_s_ = 1;
  m_anchors().inc();
  S2_LOG(LogLevel::Info, "anchor.ready",
         {{"account", account_},
          {"jid", full_jid_},
          {"mam", mam ? "yes" : "no"},
          {"archives", policy::to_string(timing)},
          {"mam_known_from", known_from}});
  owner_->on_anchor_ready();
}

void Anchor::send_presence() {
  UpstreamSession* out = session();
  if (!out || !out->ready()) return;
  if (borrowed_ && ridden_presence_ && presence_available_) {
    Stanza p = ridden_presence_.clone();
    // Non-negative: the anchor is where bare-JID messages go (devices are −1).
    set_presence_priority(p, 0);
    out->send(p);
    return;
  }
  auto p = Stanza::element("presence");
  if (!presence_available_) {
    p.set_attr("type", "unavailable");
  } else {
    if (!presence_show_.empty()) {
      auto show = Stanza::element("show");
      show.add_text(presence_show_);
      p.add_child(show);
    }
    if (!presence_status_.empty()) {
      auto st = Stanza::element("status");
      st.add_text(presence_status_);
      p.add_child(st);
    }
    // Non-negative: the anchor is where bare-JID messages go (devices are −1).
    auto prio = Stanza::element("priority");
    prio.add_text("0");
    p.add_child(prio);
  }
  out->send(p);
}

bool Anchor::set_presence(bool available, const std::string& show, const std::string& status) {
  if (available == presence_available_ && show == presence_show_ && status == presence_status_ &&
      !presence_owed_)
    return false;
  presence_available_ = available;
  presence_show_ = show;
  presence_status_ = status;
  if (!ready_) {
    // Still setting up: the presence sent after Carbons may be older than this one (a device's
    // initial presence that arrived meanwhile on the link the anchor rides). The owner's update
    // at ready (AccountHub::on_anchor_ready) sends it then.
    presence_owed_ = true;
    return false;
  }
  presence_owed_ = false;
  send_presence();
  return true;
}

void Anchor::send_iq(Stanza iq, std::function<void(const Stanza&)> answer) {
  UpstreamSession* out = session();
  if (!out || !out->ready()) return;
  // Unguessable: anyone may send the anchor an iq result.
  const std::string id = "s2a-" + crypto::random_nonce(12);
  iq.set_attr("id", id);
  pending_iqs_[id] = std::move(answer);
  out->send(iq);
}

void Anchor::query_mam(const mam::ClientQuery& q, std::function<void(MamAnswer)> done) {
  UpstreamSession* out = session();
  if (!out || !out->ready()) {
    done(MamAnswer{});
    return;
  }
  const std::string queryid = "s2q-" + crypto::random_nonce(12);
  const std::string id = "s2a-" + crypto::random_nonce(12);
  auto timer = std::make_shared<Timer>(ctx_.loop);
  timer->start(kMamTimeoutMs, [this, queryid] { fail_mam(queryid, "remote-server-timeout"); });
  mam_[queryid] = PendingMam{std::move(done), {}, id, timer};
  pending_iqs_[id] = [this, queryid](const Stanza& r) {
    auto it = mam_.find(queryid);
    if (it == mam_.end()) return;
    PendingMam pm = std::move(it->second);
    mam_.erase(it);
    if (pm.timeout) pm.timeout->stop();
    if (r.attr_or("type") == "result") {
      auto fin = mam::parse_fin(r);
      pm.answer.ok = fin.has_value();
      if (fin) pm.answer.fin = *fin;
      if (!fin) pm.answer.error_condition = "bad-request";
    } else {
      pm.answer.ok = false;
      pm.answer.error_condition = "undefined-condition";
      for (auto& c : r.child("error").children())
        if (c.xmlns() == ns::kStanzaErrors && c.name() != "text")
          pm.answer.error_condition = c.name();
    }
    pm.done(std::move(pm.answer));
  };
  out->send(mam::build_mam_query_iq(id, queryid, q));
}

void Anchor::request(Stanza iq, uint64_t timeout_ms, std::function<void(const Stanza*)> done) {
  UpstreamSession* out = session();
  if (!out || !out->ready()) {
    defer(ctx_.loop, [done = std::move(done)] { done(nullptr); });
    return;
  }
  // Unguessable, like send_iq's: the answer may come from anyone on the network.
  const std::string id = "s2r-" + crypto::random_nonce(12);
  iq.set_attr("id", id);
  auto timer = std::make_shared<Timer>(ctx_.loop);
  timer->start(timeout_ms, [this, id] { finish_request(id, nullptr); });
  requests_[id] = PendingRequest{iq.attr_or("to"), std::move(done), timer};
  out->send(iq);
}

void Anchor::finish_request(const std::string& id, const Stanza* answer) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  PendingRequest pr = std::move(it->second);
  requests_.erase(it);
  pr.timeout->stop();
  pr.done(answer);
}

// An unanswered MAM page fails the catch-up (which retries later) instead
// of freezing it.
void Anchor::fail_mam(const std::string& queryid, const std::string& condition) {
  auto it = mam_.find(queryid);
  if (it == mam_.end()) return;
  PendingMam pm = std::move(it->second);
  mam_.erase(it);
  pending_iqs_.erase(pm.iq_id);
  S2_LOG(LogLevel::Warn, "anchor.mam_timeout", {{"account", account_}});
  MamAnswer a;
  a.error_condition = condition;
  pm.done(std::move(a));
}

void Anchor::on_upstream_stanza(Stanza s) {
  if (take_answer(s)) return;
  const std::string name = s.name();
  if (name == "iq") {
    const std::string type = s.attr_or("type");
    if (type == "result" || type == "error") return;  // not ours, or no longer awaited
    answer_iq(s);
    return;
  }
  owner_->on_anchor_stanza(std::move(s));
}

// Answers to the anchor's own iqs and the results of its MAM queries: true when `s` was one.
bool Anchor::take_answer(Stanza& s) {
  const std::string name = s.name();
  if (name == "iq") {
    const std::string type = s.attr_or("type");
    if (type != "result" && type != "error") return false;
    // Answers to our requests come from the server or the account itself.
    const std::string from = s.attr_or("from");
    const bool trusted =
        from.empty() || bare_jid(from).value_or("") == account_ || from == account_domain_;
    // request(): the addressee answers, or our server does for it (an error).
    if (auto r = requests_.find(s.attr_or("id")); r != requests_.end()) {
      const auto nf = normalize_jid(from);
      const std::string& to = r->second.to;
      // A request to the account itself (its PEP) is answered without a
      // 'from' by Prosody (RFC 6120 §8.1.2.1: from the user's own account).
      const bool to_self = to.empty() || bare_jid(to).value_or("") == account_;
      const bool from_to = (nf && nf == normalize_jid(to)) ||
                           (from.empty() && to_self && to.find('/') == std::string::npos);
      if (from_to || (type == "error" && trusted)) finish_request(r->first, &s);
      return true;
    }
    auto it = trusted ? pending_iqs_.find(s.attr_or("id")) : pending_iqs_.end();
    if (it == pending_iqs_.end()) return false;
    auto cb = std::move(it->second);
    pending_iqs_.erase(it);
    cb(s);
    return true;
  }
  if (name == "message") {
    // MAM results of our own queries (from the account's archive only).
    if (auto item = mam::parse_result_message(s)) {
      const std::string from = s.attr_or("from");
      auto it = mam_.find(item->queryid);
      if (it != mam_.end() && (from.empty() || bare_jid(from).value_or("") == account_)) {
        it->second.answer.items.push_back(std::move(*item));
        return true;
      }
    }
  }
  return false;
}

// What the server and contacts may ask of the anchor's full JID.
void Anchor::answer_iq(const Stanza& iq) {
  UpstreamSession* out = session();
  if (!out) return;
  auto reply = Stanza::element("iq");
  reply.set_attr("type", "result").set_attr("id", iq.attr_or("id"));
  if (auto from = iq.attr("from")) reply.set_attr("to", *from);
  const auto children = iq.children();
  const Stanza payload = children.empty() ? Stanza() : children.front();
  const std::string from_bare = bare_jid(iq.attr_or("from")).value_or("");
  if (payload && payload.is("ping", ns::kPing)) {
    out->send(reply);
    return;
  }
  if (payload && payload.is("query", kRoster) && iq.attr_or("type") == "set" &&
      (from_bare.empty() || from_bare == account_)) {
    out->send(reply);  // roster push (RFC 6121 §2.1.6): acknowledge
    return;
  }
  if (payload && payload.is("query", kDiscoInfo) && iq.attr_or("type") == "get") {
    auto q = Stanza::element("query", kDiscoInfo);
    auto id = Stanza::element("identity");
    id.set_attr("category", "client").set_attr("type", "bot").set_attr("name", "s2proxy");
    q.add_child(id);
    for (const char* f : {kDiscoInfo, ns::kPing}) {
      auto feat = Stanza::element("feature");
      feat.set_attr("var", f);
      q.add_child(feat);
    }
    reply.add_child(q);
    out->send(reply);
    return;
  }
  if (auto e = session2::build_stanza_error(iq, "cancel", "service-unavailable")) out->send(e);
}

void Anchor::on_upstream_closed(const std::string& stream_error, const std::string& text) {
  went_down(stream_error.empty() ? text : stream_error + " " + text);
}

void Anchor::went_down(const std::string& why) {
  S2_LOG(LogLevel::Info, "anchor.down", {{"account", account_}, {"reason", why}});
  if (borrowed_) {  // the ridden link did not answer the set-up: a session of our own
    release();
    return;
  }
  end_session();
  schedule_reconnect();
}

// The session is over (gone, or stopped): forget its state, fail what waited
// for it — the owner restarts catch-up after a reconnect — and tell the owner
// which session's unacknowledged stanzas must go out again.
void Anchor::end_session() {
  const uint64_t serial = session_ ? session_->serial() : 0;
  reset_session_state();
  retire_session();
  owner_->on_anchor_down(serial);
}

void Anchor::reset_session_state() {
  setup_timer_.stop();
  if (ready_) m_anchors().dec();
  ready_ = false;
  has_mam_.reset();
  archive_timing_ = policy::ArchiveTiming::MaybeLate;
  pending_iqs_.clear();
  auto mams = std::move(mam_);
  mam_.clear();
  auto requests = std::move(requests_);
  requests_.clear();
  for (auto& [qid, pm] : mams) {
    if (pm.timeout) pm.timeout->stop();
    pm.done(MamAnswer{});
  }
  for (auto& [id, pr] : requests) {
    pr.timeout->stop();
    pr.done(nullptr);
  }
}

void Anchor::retire_session() {
  kept_ = false;
  UpstreamSession::retire(ctx_.loop, std::move(session_));
}

void Anchor::schedule_reconnect() {
  if (stopped_ || ctx_.shutting_down) return;
  const double delay = backoff_s_;
  backoff_s_ = std::min(backoff_s_ * 2, kMaxBackoffS);
  reconnect_timer_.start(static_cast<uint64_t>(delay * 1000), [this] {
    if (stopped_) return;
    m_reconnects().inc();
    start();
  });
}

}  // namespace s2
