// Outbox (ARCHITECTURE.md §3, "sent messages exactly once"): the messages an
// account's devices sent, committed to the mirror and acknowledged to their
// device, on their way to the upstream. An entry leaves when the upstream
// has it: its XEP-0198 ack on the session that carried it, or evidence that
// the upstream accepted it anyway — the anchor's Carbons <sent/> copy, or an
// upstream archive copy (live or in a MAM page) that the mirror recognised
// as this entry's message.
//
// An entry whose carrier died unacknowledged is *held*, not resent: the
// carrier may have delivered it just before it died (a send-and-close
// client, a link cut after the upstream routed the message). It goes out
// again only when the upstream shows no evidence of it: the anchor's MAM is
// searched from just before the oldest held entry's time (live, after a
// restart and when the anchor is back; the catch-up from the sync cursor
// also settles what it replays, but the cursor may be past an entry).
// Without an upstream archive the Carbons copy is the only evidence and a
// held entry is resent after a short wait for it. A search that fails (the
// anchor died under it) is no evidence: it is run again, a few times,
// before the entries go out anyway.
//
// Sending is paced: nothing is written to a carrier whose unsent bytes are
// above the high-water mark; the pump continues when it drained, so a burst
// or a resend of thousands never makes a session buffer without bound.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/net/connection.h"
#include "common/store/store.h"
#include "common/xml/stanza.h"

namespace s2 {

class ProxyContext;
class Anchor;
class UpstreamSession;

class Outbox {
 public:
  class Host {
   public:
    virtual ~Host() = default;
    // The session that should carry a send of device `route` now (its own
    // link when it is up, else the anchor); null when none is up.
    virtual UpstreamSession* outbox_carrier(const std::string& route) = 0;
    // The anchor, when it is ready (evidence searches run through it).
    virtual Anchor* outbox_anchor() = 0;
    // The upstream refused an entry on every carrier: tell its device.
    virtual void outbox_refused(const std::string& route, const Stanza& s) = 0;
  };

  struct Entry {
    uint64_t seq = 0;
    store::ArchiveId archive_id = 0;
    std::string route;   // the device resource that sent it
    std::string stanza;  // as sent upstream
    std::string origin_id;
    int64_t created_ms = 0;
  };

  Outbox(ProxyContext& ctx, Host& host, std::string account);
  ~Outbox();
  void set_account_no(store::AccountNo a) { account_no_ = a; }

  // A message committed just now: send it.
  void add(Entry e);
  // The mirror's entries, once per process, before anything else is added:
  // held until the upstream archive was searched for them.
  void load_held();
  // The anchor is ready (its catch-up is over): search for what is held.
  void anchor_ready();
  // Evidence that the upstream has the message: the entry is done.
  bool settle_origin_id(const std::string& origin_id);
  bool settle_archive_id(store::ArchiveId id);
  // The session `serial` ended with entries unacknowledged.
  void carrier_down(uint64_t serial);
  // Sends what waits for a carrier (a device link came up, the anchor is ready).
  void pump();

  size_t size() const { return entries_.size(); }
  bool full() const { return entries_.size() >= kMaxEntries; }
  // Bytes of entries waiting for a carrier with room (flow control upstream).
  size_t unsent_bytes() const { return unsent_bytes_; }

  static constexpr size_t kMaxEntries = 10000;
  static constexpr size_t kCarrierHigh = 256 * 1024;

 private:
  struct Flight {
    Entry e;
    uint64_t via = 0;  // serial of the session carrying it (0: none)
    int attempts = 0;
    bool held = false;
  };
  void insert(Entry e, bool held);
  void queue(uint64_t seq);  // ready to send
  void settle(uint64_t seq, const char* how);
  // Writes the removals of settled entries, all in one batch.
  void flush_removals();
  void send_one(uint64_t seq, Flight& f, UpstreamSession* via);
  void schedule_verify();
  void verify();
  void verify_page(std::optional<std::string> after, int64_t start_ms, int pages,
                   std::shared_ptr<std::vector<uint64_t>> batch);
  void finish_verify(const std::vector<uint64_t>& batch);

  ProxyContext& ctx_;
  Host& host_;
  std::string account_;
  store::AccountNo account_no_ = 0;
  std::map<uint64_t, Flight> entries_;
  std::set<uint64_t> unsent_;  // not held, not carried: waiting for the pump
  size_t unsent_bytes_ = 0;
  std::unordered_map<std::string, uint64_t> by_origin_;
  std::unordered_map<store::ArchiveId, uint64_t> by_archive_;
  std::set<uint64_t> stranded_;  // held after their carrier died, to verify live
  bool verifying_ = false;
  int anchor_waits_ = 0;
  int search_failures_ = 0;  // consecutive searches that got no evidence either way
  Timer verify_timer_;
  Timer pump_timer_;
  // Settled entries whose store records are still to be removed. A removal
  // is on no message's path, but committed alone (one per acknowledged
  // message) it held the writer just when the next message's commit came:
  // the upstream's <a/> and the message it routed back arrive together.
  // Written kRemovalDelayMs later in one batch instead; an entry whose
  // removal a crash lost is held at the next start and settled by the
  // evidence search, as one acknowledged just before a crash always was.
  std::vector<uint64_t> removals_;
  Timer removal_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  static constexpr int kMaxAttempts = 6;
};

}  // namespace s2
