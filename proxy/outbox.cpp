// See outbox.h.
#include "proxy/outbox.h"

#include <algorithm>

#include "common/mam/mam_query.h"
#include "common/util/clock.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "policies/stanza_facts.h"
#include "proxy/anchor.h"
#include "proxy/mirror_metrics.h"
#include "proxy/proxy_context.h"
#include "proxy/upstream_session.h"

namespace s2 {
namespace {
Metric& m_pending() {
  static Metric& m = gauge("s2proxy_outbox_pending", "device messages not yet acked upstream");
  return m;
}
Metric& m_settled(const char* how) {
  return counter("s2proxy_outbox_settled_total",
                 "outbox entries done, by the evidence that the upstream has them",
                 std::string("how=\"") + how + "\"");
}
Metric& m_resent() {
  static Metric& m = counter("s2proxy_outbox_resent_total",
                             "outbox entries sent again: their carrier died and the upstream "
                             "showed no evidence of them");
  return m;
}

// Wait after a carrier died before searching for evidence: the upstream
// may still be reading what the dead session wrote.
constexpr uint64_t kSettleDelayMs = 1000;
// The upstream archive is searched from this long before the oldest entry
// (clock skew between the proxy and the upstream).
constexpr int64_t kSearchSlackMs = 60 * 1000;
constexpr int kMaxSearchPages = 400;
constexpr size_t kSearchPage = 100;
// Without an anchor the search cannot run; held entries go out after this
// many tries anyway (resending beats losing).
constexpr int kMaxAnchorWaits = 30;
// A search that failed (the anchor died under it, the archive answered an
// error) is run again this many times before what it was for goes out
// again: a failed search is no evidence that the upstream lacks a message.
constexpr int kMaxSearchFailures = 5;
// How long settled entries' removals wait to be written together (outbox.h).
constexpr uint64_t kRemovalDelayMs = 50;
}  // namespace

Outbox::Outbox(ProxyContext& ctx, Host& host, std::string account)
    : ctx_(ctx),
      host_(host),
      account_(std::move(account)),
      verify_timer_(ctx.loop),
      pump_timer_(ctx.loop),
      removal_timer_(ctx.loop) {}

Outbox::~Outbox() { flush_removals(); }

void Outbox::insert(Entry e, bool held) {
  const uint64_t seq = e.seq;
  auto [it, fresh] = entries_.try_emplace(seq);
  if (!fresh) return;
  if (!e.origin_id.empty()) by_origin_[e.origin_id] = seq;
  if (e.archive_id) by_archive_[e.archive_id] = seq;
  it->second.e = std::move(e);
  it->second.held = held;
  m_pending().set(static_cast<int64_t>(entries_.size()));
  if (!held) queue(seq);
}

void Outbox::queue(uint64_t seq) {
  auto it = entries_.find(seq);
  if (it == entries_.end() || !unsent_.insert(seq).second) return;
  unsent_bytes_ += it->second.e.stanza.size();
}

void Outbox::add(Entry e) {
  insert(std::move(e), false);
  pump();
}

void Outbox::load_held() {
  if (account_no_ == 0) return;
  uint64_t after = 0;
  for (;;) {
    auto items = ctx_.store->list_outbox(account_no_, after, 500);
    if (!items.ok() || items->empty()) break;
    for (auto& s : *items) {
      after = s.seq;
      if (entries_.count(s.seq)) continue;
      Entry e;
      e.seq = s.seq;
      e.archive_id = s.archive_id;
      e.route = s.item.route;
      e.stanza = s.item.stanza;
      e.created_ms = s.item.created_ms;
      if (auto parsed = Stanza::parse(e.stanza)) e.origin_id = message_ids(parsed).origin_id;
      const uint64_t seq = e.seq;
      insert(std::move(e), true);
      // Sent before the restart or not: the upstream archive tells (the
      // catch-up from the sync cursor may not reach back to it — the cursor
      // can be past what was sent before the anchor first started).
      stranded_.insert(seq);
    }
  }
  if (!stranded_.empty()) schedule_verify();
}

void Outbox::anchor_ready() {
  // Held entries are searched for now rather than at the next retry.
  if (stranded_.empty() || verifying_) return;
  verify_timer_.stop();
  anchor_waits_ = 0;
  verify();
}

bool Outbox::settle_origin_id(const std::string& origin_id) {
  if (origin_id.empty()) return false;
  auto it = by_origin_.find(origin_id);
  if (it == by_origin_.end()) return false;
  settle(it->second, "carbon");
  return true;
}

bool Outbox::settle_archive_id(store::ArchiveId id) {
  auto it = by_archive_.find(id);
  if (it == by_archive_.end()) return false;
  settle(it->second, "archive");
  return true;
}

void Outbox::settle(uint64_t seq, const char* how) {
  auto it = entries_.find(seq);
  if (it == entries_.end()) return;
  auto& e = it->second.e;
  if (!e.origin_id.empty()) by_origin_.erase(e.origin_id);
  if (e.archive_id) by_archive_.erase(e.archive_id);
  if (unsent_.erase(seq)) unsent_bytes_ -= e.stanza.size();
  stranded_.erase(seq);
  entries_.erase(it);
  m_pending().set(static_cast<int64_t>(entries_.size()));
  m_settled(how).inc();
  removals_.push_back(seq);
  if (!removal_timer_.active())
    removal_timer_.start(kRemovalDelayMs, [this, alive = std::weak_ptr<bool>(alive_)] {
      if (!alive.expired()) flush_removals();
    });
}

void Outbox::flush_removals() {
  removal_timer_.stop();
  if (removals_.empty() || !ctx_.store) return;
  store::WriteBatch batch;
  batch.reserve(removals_.size());
  for (uint64_t seq : removals_) batch.push_back(store::op::RemoveOutbox{account_no_, seq});
  removals_.clear();
  // Not deferrable (writer.h): a removal still unwritten at a kill -9 makes its entry "held" at
  // the next start, and when the archive search for it fails the entry is resent — a second copy
  // at the peer (the ASan chaos run on ejabberd saw one while removals waited up to 100 ms more).
  ctx_.store->submit(std::move(batch), [](store::WriteResult r) {
    if (!r.ok()) mirror_metrics::write_errors().inc();
  });
}

void Outbox::pump() {
  while (!unsent_.empty()) {
    const uint64_t seq = *unsent_.begin();
    auto it = entries_.find(seq);
    if (it == entries_.end()) {
      unsent_.erase(unsent_.begin());
      continue;
    }
    UpstreamSession* via = host_.outbox_carrier(it->second.e.route);
    if (!via) return;  // pump() again when a carrier is up
    if (via->write_backlog() > kCarrierHigh) {
      // Paced: continue when the carrier has taken what it has.
      if (!pump_timer_.active())
        pump_timer_.start(5, [this, alive = std::weak_ptr<bool>(alive_)] {
          if (!alive.expired()) pump();
        });
      return;
    }
    unsent_.erase(unsent_.begin());
    unsent_bytes_ -= it->second.e.stanza.size();
    send_one(seq, it->second, via);
  }
}

void Outbox::send_one(uint64_t seq, Flight& f, UpstreamSession* via) {
  auto parsed = Stanza::parse(f.e.stanza);
  if (!parsed || f.attempts > kMaxAttempts) {
    // A stanza that took down every session it was sent on (the upstream
    // refuses it with a stream error) must not keep the account offline.
    S2_LOG(LogLevel::Warn, "hub.outbox_given_up", {{"account", account_}, {"seq", seq}});
    if (parsed) host_.outbox_refused(f.e.route, parsed);
    settle(seq, "refused");
    return;
  }
  f.via = via->serial();
  via->send_tracked(parsed, [this, seq, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) settle(seq, "ack");
  });
}

// The carrier died with these unacknowledged: held until the upstream shows
// whether it has them.
void Outbox::carrier_down(uint64_t serial) {
  if (serial == 0) return;
  bool any = false;
  for (auto& [seq, f] : entries_) {
    if (f.via != serial) continue;
    f.via = 0;
    ++f.attempts;  // one strike: a stanza the upstream refuses kills every carrier
    f.held = true;
    stranded_.insert(seq);
    any = true;
  }
  if (any) schedule_verify();
}

void Outbox::schedule_verify() {
  if (verifying_ || verify_timer_.active()) return;
  verify_timer_.start(kSettleDelayMs, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) verify();
  });
}

void Outbox::verify() {
  if (verifying_) return;
  std::vector<uint64_t> batch;
  int64_t oldest = INT64_MAX;
  for (auto seq : stranded_) {
    auto it = entries_.find(seq);
    if (it == entries_.end() || !it->second.held) continue;
    batch.push_back(seq);
    oldest = std::min(oldest, it->second.e.created_ms);
  }
  if (batch.empty()) return;
  Anchor* anchor = host_.outbox_anchor();
  if (!anchor) {
    // The anchor's readiness restarts the search (anchor_ready); if it
    // stays away, resend after a while rather than never.
    if (++anchor_waits_ >= kMaxAnchorWaits) {
      anchor_waits_ = 0;
      finish_verify(batch);
      return;
    }
    verify_timer_.start(2000, [this, alive = std::weak_ptr<bool>(alive_)] {
      if (!alive.expired()) verify();
    });
    return;
  }
  anchor_waits_ = 0;
  if (!anchor->upstream_has_mam().value_or(false)) {
    // No archive to search: the Carbons copy (already waited for) was the
    // only evidence there could be.
    finish_verify(batch);
    return;
  }
  verifying_ = true;
  auto shared = std::make_shared<std::vector<uint64_t>>(std::move(batch));
  verify_page(std::nullopt, oldest - kSearchSlackMs, 0, shared);
}

void Outbox::verify_page(std::optional<std::string> after, int64_t start_ms, int pages,
                         std::shared_ptr<std::vector<uint64_t>> batch) {
  Anchor* anchor = host_.outbox_anchor();
  if (!anchor) {
    verifying_ = false;
    schedule_verify();
    return;
  }
  mam::ClientQuery q;
  q.start_ms = start_ms;
  q.rsm_after = after;
  q.max = kSearchPage;
  anchor->query_mam(
      q, [this, start_ms, pages, batch, alive = std::weak_ptr<bool>(alive_)](Anchor::MamAnswer a) {
        if (alive.expired()) return;
        if (!a.ok) {
          verifying_ = false;
          const bool retry = ++search_failures_ < kMaxSearchFailures;
          S2_LOG(LogLevel::Warn, "outbox.search_failed",
                 {{"account", account_},
                  {"condition", a.error_condition.empty() ? "no-answer" : a.error_condition},
                  {"next", retry ? "search-again" : "resend"}});
          if (!retry) {
            search_failures_ = 0;
            finish_verify(*batch);
            return;
          }
          // Still held (stranded_ keeps them): searched again when the
          // anchor is next ready, or after the settle delay.
          schedule_verify();
          return;
        }
        search_failures_ = 0;
        for (auto& item : a.items) settle_origin_id(message_ids(item.message).origin_id);
        std::string last = a.fin.last;
        if (last.empty() && !a.items.empty()) last = a.items.back().id;
        const bool done = a.fin.complete || a.items.empty() || last.empty();
        if (!done && pages + 1 < kMaxSearchPages) {
          verify_page(last, start_ms, pages + 1, batch);
          return;
        }
        verifying_ = false;
        finish_verify(*batch);
      });
}

// What the search did not find goes out again.
void Outbox::finish_verify(const std::vector<uint64_t>& batch) {
  size_t n = 0;
  for (auto seq : batch) {
    stranded_.erase(seq);
    auto it = entries_.find(seq);
    if (it == entries_.end() || !it->second.held) continue;  // settled meanwhile
    it->second.held = false;
    queue(seq);
    ++n;
  }
  if (n) {
    m_resent().inc(static_cast<int64_t>(n));
    S2_LOG(LogLevel::Info, "outbox.resend", {{"account", account_}, {"entries", n}});
  }
  pump();
  // Entries stranded while this search ran get their own.
  if (!stranded_.empty()) schedule_verify();
}

}  // namespace s2
