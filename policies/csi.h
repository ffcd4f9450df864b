// Client State Indication: what to do with a stanza for a device that may be inactive.
//
// XEP-0352 lets a server hold unimportant traffic while the client says <inactive/>; PROTOCOLS.md
// §8 compares the legacy strategies — Prosody's mod_csi_simple holds in order and flushes on an
// important stanza (queue 256), ejabberd's mod_client_state also coalesces presence per JID (queue
// 100). s2proxy combines them around urgency.h: Silent stanzas are held; anything more urgent
// flushes the queue first and is then delivered, so order is never broken (an iq is never queued,
// but it does not overtake what was held before it either). A Silent stanza that merely supersedes
// a held one of the same key — a contact's newer presence, a newer chat state from the same full
// JID — replaces it: the old one is stale state, not lost information. ARCHITECTURE.md §10: the
// queue is bounded and overflow flushes it, never drops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policies/classify.h"
#include "policies/message_features.h"
#include "policies/urgency.h"

namespace s2::policy {

enum class CsiAction : std::uint8_t {
  DeliverNow,        // send it; nothing is held
  Hold,              // append it to the device's queue
  Replace,           // remove the held stanza with the same coalescing key, append this one
  FlushThenDeliver,  // send everything held, in order, then this one
};

struct CsiQueue {
  bool inactive = false;    // the client's last CSI element was <inactive/>
  std::size_t held = 0;     // stanzas held now
  std::size_t limit = 256;  // per-device bound (config); 0 disables holding
};

// `same_key_held`: a stanza with this stanza's csi_coalesce_key() is in the queue.
CsiAction csi_decide(Urgency u, const CsiQueue& q, bool same_key_held = false);

// The key under which a held stanza may be superseded, or nullopt when it must be kept: presence
// (available/unavailable — not subscriptions, errors or probes: a newer presence is the whole new
// state) and bare chat states (not with <store/> or an unknown payload riding along), per sender
// full JID (`from`, normalised by the daemon).
std::optional<std::string> csi_coalesce_key(MessageClass c, const MessageFeatures& f,
                                            std::string_view from);

std::string_view to_string(CsiAction a);

}  // namespace s2::policy
