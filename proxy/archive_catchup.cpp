// See archive_catchup.h.
#include "proxy/archive_catchup.h"

#include "common/mam/mam_query.h"
#include "common/util/clock.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "proxy/anchor.h"
#include "proxy/proxy_context.h"

namespace s2 {
namespace {
Metric& m_gaps() {
  static Metric& m = counter("s2proxy_history_gaps_total", "history gaps recorded");
  return m;
}
}  // namespace

ArchiveCatchup::ArchiveCatchup(ProxyContext& ctx, Host& host, std::string account)
    : ctx_(ctx), host_(host), account_(std::move(account)), retry_(ctx.loop), settle_(ctx.loop) {}

// From bind on, live stanzas wait for the catch-up: our presence releases
// the upstream's offline storage, and none of it may move the sync cursor
// past what MAM has not replayed yet.
void ArchiveCatchup::anchor_bound() {
  // Still synchronised at this bind: the anchor moves from a session that stayed up (a move
  // onto a device's link). Everything that session received is in the mirror, including what
  // carried no upstream id and so never moved the cursor (Prosody's sent Carbons): the
  // catch-up needs to cover only the handover, not everything since the last id.
  synced_until_ms_ = synced_ ? std::optional<int64_t>(unix_ms()) : std::nullopt;
  catching_up_ = true;
  synced_ = false;
}

void ArchiveCatchup::anchor_down() {
  retry_.stop();
  settle_.stop();
  ++gen_;  // pages of this session's catch-up stop their chain
  // What was held stays held, in arrival order, until the next catch-up
  // (after reconnect) has replayed what came before it from the upstream
  // archive. Released now, it would be archived ahead of that range: the
  // chaos suite saw 25 live messages land before the 115 that the failed
  // catch-up had not paged yet. The replay brings the held ones too (the
  // upstream archived them), so their held copies are then duplicates.
  catching_up_ = false;
  synced_ = false;
  host_.catchup_finished(false, false);
}

void ArchiveCatchup::resync(uint64_t after_ms) {
  synced_ = false;
  if (catching_up_ || retry_.active()) return;  // its own failure retries
  retry_.start(after_ms, [this] {
    if (host_.catchup_anchor() && !catching_up_) start();
  });
}

bool ArchiveCatchup::hold(Stanza& s) {
  // Between an anchor outage and the next catch-up, what was held waits (anchor_down); a live
  // stanza that arrives then (on a link the anchor rode, drained during its hand-over) waits
  // behind it, or it would be archived ahead of older messages. The lone-device churn test saw
  // that on ejabberd: one message archived before the 15 held ahead of it.
  if ((!catching_up_ && held_live_.empty()) || s.name() != "message" ||
      held_live_.size() >= kMaxHeldLive || held_bytes_ >= kMaxHeldBytes)
    return false;
  held_bytes_ += s.to_string().size();
  held_live_.push_back(std::move(s));
  return true;
}

void ArchiveCatchup::start() {
  Anchor* anchor = host_.catchup_anchor();
  if (!anchor || account_no_ == 0) return;
  if (!anchor->upstream_has_mam().value_or(false)) {
    finish(true);  // nothing to replay: what arrives live is all there is
    return;
  }
  catching_up_ = true;
  const uint64_t gen = ++gen_;
  end_.reset();
  // On a device's link that the anchor rides (anchor.h), its Carbons and presence went out a
  // moment ago: from then on the account's traffic comes live. The catch-up covers what came
  // before, up to now. Unbounded, it would chase the end of an archive that the device may be
  // filling through the same link, each page queued behind the device's own sends (the
  // 5,000-message burst: 50 pages of 0.2-2 s, the upstream re-reading the growing archive for
  // each). Bounded: a first catch-up, and one after the anchor moved from a session of its own
  // that stayed up meanwhile. Every catch-up still reads its end twice where the upstream may
  // archive late (paged_to_end).
  const auto bound = [&] { end_ = unix_ms() + kRiddenEndSlackMs; };
  auto cursor = ctx_.store->get_sync_cursor(account_no_);
  if (cursor.ok() && cursor.value()) {
    if (anchor->moved()) {
      bound();
      // From the handover (less the clocks' slack), by time, not from the cursor: an account
      // that only sends moves no cursor (its Carbons carry no upstream id), and re-reading all
      // it sent since its last incoming message chased a 5,000-message burst for 30 s with live
      // messages held (bench_relay, the anchor moving mid-burst). Not the cursor and the time
      // together: Prosody's storage drops the RSM <after/> item by the start filter first.
      if (synced_until_ms_) {
        S2_LOG(LogLevel::Debug, "hub.catchup_start", {{"account", account_}, {"from", "handover"}});
        page(std::nullopt, *synced_until_ms_ - kClockSlackMs, gen);
        return;
      }
    }
    S2_LOG(LogLevel::Debug, "hub.catchup_start", {{"account", account_}, {"from", "cursor"}});
    page(*cursor.value(), std::nullopt, gen);
    return;
  }
  // First start for this account: the proxy's history begins when the
  // account was first seen here (its first login), not when the anchor got
  // to ask. Between the two, the first device's link is online at priority
  // -1 and the upstream archives bare-JID messages for nobody: starting at
  // the archive's newest id would skip them (seen on ejabberd: a message
  // sent 20 ms after the first login never reached any device). Paged by
  // time from then; what the devices already handled is matched, not
  // archived twice. Nothing upstream after it: the first live stanza sets
  // the cursor.
  auto info = ctx_.store->find_account(account_);
  const int64_t created = info.ok() && info.value() ? info.value()->created_ms : unix_ms();
  if (anchor->riding()) bound();
  S2_LOG(LogLevel::Debug, "hub.catchup_start", {{"account", account_}, {"from", "first_login"}});
  page(std::nullopt, created - kClockSlackMs, gen);
}

// `gen`: the catch-up this page belongs to; a page of an earlier catch-up
// (the anchor went down and came back meanwhile) stops its chain.
void ArchiveCatchup::page(std::optional<std::string> after, std::optional<int64_t> start,
                          uint64_t gen) {
  Anchor* anchor = host_.catchup_anchor();
  if (!anchor) return;
  mam::ClientQuery q;
  q.rsm_after = after;
  q.start_ms = start;
  q.end_ms = end_;
  q.max = kPage;
  const int64_t asked = unix_ms();
  anchor->query_mam(q, [this, after, start, gen, asked,
                        alive = std::weak_ptr<bool>(alive_)](Anchor::MamAnswer a) {
    if (alive.expired() || !catching_up_ || gen != gen_) return;
    // How long the upstream takes per page is what a slow catch-up is made of.
    S2_LOG(LogLevel::Debug, "hub.catchup_answer",
           {{"account", account_},
            {"ok", a.ok ? "true" : "false"},
            {"items", std::to_string(a.items.size())},
            {"ms", std::to_string(unix_ms() - asked)}});
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
        page(std::nullopt, from, gen);
        return;
      }
      S2_LOG(LogLevel::Warn, "hub.catchup_failed",
             {{"account", account_}, {"condition", a.error_condition}});
      if (!host_.catchup_anchor()) {
        // The page failed because the anchor's session went down (a cut, a kick): anchor_down
        // follows at once and keeps what is held until the next catch-up. Released here, the
        // held live messages were archived ahead of those the failed catch-up had not paged
        // yet (the chaos suite on ejabberd under ASan: a cut during a 15 s page, 127 released,
        // MAM then held 315 before 314).
        return;
      }
      finish(false);
      return;
    }
    std::string last = a.fin.last;
    if (!a.items.empty()) last = a.items.back().id;
    const bool done = a.fin.complete || a.items.empty();
    host_.catchup_commit(std::move(a.items), last,
                         [this, done, last, after, start, gen, alive](bool ok) {
                           if (alive.expired()) return;
                           // What was committed is delivered either way; only
                           // the current catch-up goes on paging.
                           if (!catching_up_ || gen != gen_) return;
                           if (!ok) {
                             finish(false);
                           } else if (done || last.empty()) {
                             paged_to_end(last.empty() ? after : last, start, gen);
                           } else {
                             page(last, start, gen);
                           }
                         });
  });
}

// The chain reached the end of the upstream archive: once per catch-up on an upstream that may
// archive late, read the end again after kSettleMs (what a replaced session archived late is there
// by then, in the upstream's order, before the held live stanzas that came after it); the second
// time, it is done.
void ArchiveCatchup::paged_to_end(std::optional<std::string> after, std::optional<int64_t> start,
                                  uint64_t gen) {
  // Bounded by time too (a ridden link): what ejabberd archives late within the bound is
  // still only in its archive (docs §21: it archives in the receiving session's process; the
  // first-login window lost 3 of 33 on ejabberd under ASan without this), and the bound keeps
  // the second read one short page instead of a chase.
  // An upstream that archives before it delivers (Prosody 0.x, policies/archive_timing.h) has
  // nothing to show late: what the read did not see was delivered to nobody yet and comes live.
  Anchor* anchor = host_.catchup_anchor();
  const bool late =
      !anchor || anchor->upstream_archive_timing() != policy::ArchiveTiming::BeforeDelivery;
  if (settled_gen_ == gen || !late) {
    finish(true);
    return;
  }
  settled_gen_ = gen;
  settle_.start(kSettleMs, [this, after, start, gen] {
    if (!catching_up_ || gen != gen_) return;
    page(after, start, gen);
  });
}

void ArchiveCatchup::finish(bool ok, bool retry) {
  S2_LOG(LogLevel::Debug, "hub.catchup_finished",
         {{"account", account_},
          {"ok", ok ? "true" : "false"},
          {"released", std::to_string(held_live_.size())}});
  catching_up_ = false;
  synced_ = ok;
  host_.catchup_finished(ok, retry);
  held_bytes_ = 0;
  auto held = std::move(held_live_);
  held_live_.clear();
  for (auto& st : held) host_.catchup_release(std::move(st));
  if (!ok && retry && host_.catchup_anchor()) {
    // Live traffic flows meanwhile, without moving the cursor.
    retry_.start(30000, [this] {
      if (host_.catchup_anchor() && !catching_up_) start();
    });
  }
}

}  // namespace s2
