// Catch-up from the upstream archive (PROTOCOLS.md §7): after the anchor
// (re)binds, the account's upstream MAM is paged from the sync cursor (the
// last upstream stanza-id committed, written in the same transaction as the
// stanzas it covers) while live anchor stanzas wait, so the mirror's order
// follows the upstream's.
//
// This file owns the paging, the generation of each catch-up (a page
// answered for an older anchor session cannot continue a chain), the gap
// record when the upstream no longer has the cursor, the 30 s retry and the
// held live stanzas. What a page's messages are and where they go is the
// hub's routing (Host::catchup_commit).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/mam/mam_result.h"
#include "common/net/connection.h"
#include "common/store/store.h"
#include "common/xml/stanza.h"

namespace s2 {

class ProxyContext;
class Anchor;

class ArchiveCatchup {
 public:
  class Host {
   public:
    virtual ~Host() = default;
    // The anchor when it is ready, else null.
    virtual Anchor* catchup_anchor() = 0;
    // Archive one page (and the cursor `last` in the same batch); `done(ok)`
    // after the commit.
    virtual void catchup_commit(std::vector<mam::MamResultItem> items, const std::string& last,
                                std::function<void(bool ok)> done) = 0;
    // The catch-up ended (`ok`: the archive was replayed up to now; else it
    // is retried unless `retry` is false).
    virtual void catchup_finished(bool ok, bool retry) = 0;
    // A live anchor stanza that waited for the catch-up, in arrival order.
    virtual void catchup_release(Stanza s) = 0;
  };

  ArchiveCatchup(ProxyContext& ctx, Host& host, std::string account);

  void set_account_no(store::AccountNo a) { account_no_ = a; }
  // The anchor bound: live stanzas wait from now on.
  void anchor_bound();
  // The anchor is ready: page from the cursor.
  void start();
  // The anchor went down: this catch-up's pages stop their chain; what was
  // held is processed (without moving the cursor).
  void anchor_down();
  // A live stanza could not be committed (the mirror or disk is full): from
  // now on live stanzas do not move the cursor (it stays before the lost one),
  // and a catch-up from the cursor replays it after `after_ms`, then every
  // 30 s until it succeeds. What was committed live meanwhile is deduplicated
  // by its upstream id.
  void resync(uint64_t after_ms);
  // True when the live stanza was held for the catch-up.
  bool hold(Stanza& s);
  bool catching_up() const { return catching_up_; }
  // This anchor session finished a catch-up: live stanzas may move the cursor.
  bool synced() const { return synced_; }

 private:
  void page(std::optional<std::string> after, std::optional<int64_t> start, uint64_t gen);
  void paged_to_end(std::optional<std::string> after, std::optional<int64_t> start, uint64_t gen);
  void finish(bool ok, bool retry = true);

  ProxyContext& ctx_;
  Host& host_;
  std::string account_;
  store::AccountNo account_no_ = 0;
  bool catching_up_ = false;
  bool synced_ = false;
  uint64_t gen_ = 0;
  Timer retry_;
  Timer settle_;
  uint64_t settled_gen_ = 0;  // the catch-up whose settle pass has run
  // ejabberd archives a message in the receiving session's process: one routed to the anchor
  // session being replaced may become visible in MAM after a later one was delivered live to
  // the new session (chaos run, 4,000 messages: one lost). So the end of the archive is read
  // once more this long after the catch-up first reached it, with live stanzas still held.
  // Not on an upstream that archives before it delivers (Anchor::upstream_archive_timing).
  static constexpr uint64_t kSettleMs = 1000;
  std::deque<Stanza> held_live_;
  size_t held_bytes_ = 0;
  static constexpr size_t kMaxHeldLive = 10000;
  static constexpr size_t kMaxHeldBytes = 64 * 1024 * 1024;
  static constexpr size_t kPage = 100;
  // The account's creation is stamped by our clock, the upstream archive by
  // its own: a first catch-up starts this much earlier.
  static constexpr int64_t kClockSlackMs = 2000;
  // The end of a first catch-up on a ridden link (archive_catchup.cpp), past our clock: the
  // upstream's clock may be ahead of ours by this much.
  static constexpr int64_t kRiddenEndSlackMs = 500;
  std::optional<int64_t> end_;
  // When the anchor bound while still synchronised (a move): the catch-up starts there.
  std::optional<int64_t> synced_until_ms_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace s2
