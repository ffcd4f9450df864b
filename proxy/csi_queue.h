// Client State Indication (XEP-0352) served by the proxy: one queue per device.
//
// CSI used to be passed through to the device's upstream session, so what a phone saw while
// inactive depended on the legacy server (Prosody's mod_csi_simple holds in order, ejabberd's
// mod_client_state coalesces presence) and on the proxy's own fan-out, which the upstream cannot
// see. Now the proxy answers <active/>/<inactive/> itself (top-level or inline in Bind2) and never
// forwards them: the device links stay "active" upstream and this queue decides, from the
// urgency every delivery gets (delivery_urgency.h), by policies/csi.h:
//
// * inactive: a Silent stanza is held; one that supersedes a held stanza of the same coalescing
//   key (a contact's newer presence, a newer chat state in the same conversation) replaces it and
//   goes to the end of the queue — the old one is stale state, not lost information;
// * an Urgent, Normal or Immediate stanza flushes everything held, in order, then goes itself (an
//   iq is never held and never overtakes what was held before it);
// * <active/> flushes; a full queue (`--csi-max-queue`, default 256, 0 holds nothing) flushes
//   instead of dropping.
//
// The queue is a plain value: it never writes, it returns what to write, in order (the Device
// counts those for SM and writes them). Held stanzas are therefore not in the SM queue: SM counts
// what was actually sent. Kept with each held stanza: its archive id (reported to the hub when it
// is acknowledged, as for any delivery) and the wall-clock time it was held (the Device stamps a
// <delay/> on it when it is flushed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/store/store.h"
#include "common/xml/stanza.h"
#include "policies/urgency.h"

namespace s2 {

class CsiQueue {
 public:
  enum class FlushReason : std::uint8_t { Urgent, Normal, Immediate, Active, Overflow, End };

  struct Item {
    Stanza stanza;
    store::ArchiveId archive_id = 0;
    int64_t held_at_ms = 0;                   // unix ms when it was offered
    std::optional<std::string> coalesce_key;  // policy::csi_coalesce_key
  };

  // What to do now with an offered stanza.
  struct Outcome {
    std::vector<Item> flushed;  // held stanzas to write first, in order (they get a <delay/>)
    std::optional<Item> now;    // the offered stanza, to write after them (empty when held)
    std::optional<FlushReason> reason;  // set when `flushed` is not empty
    bool coalesced = false;             // the offered stanza replaced a held one
  };

  explicit CsiQueue(std::size_t limit = 256) : limit_(limit) {}

  bool inactive() const { return inactive_; }
  std::size_t size() const { return held_.size(); }
  std::size_t limit() const { return limit_; }

  // <inactive/>: starts holding. <active/>: stops, and returns what was held (to write, in order).
  std::vector<Item> set_inactive(bool inactive);

  Outcome offer(Item item, policy::Urgency u);

  // Everything held, in order; the queue is empty afterwards (the device ended).
  std::vector<Item> take_all();

 private:
  std::deque<Item> held_;
  std::size_t limit_;
  bool inactive_ = false;
};

std::string_view to_string(CsiQueue::FlushReason r);

}  // namespace s2
