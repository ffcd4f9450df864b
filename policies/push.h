// Push (XEP-0357): whether to wake a device, and what a notification may say.
//
// ARCHITECTURE.md §7: the proxy pushes through the anchor when an urgent stanza arrives for a
// device that is disconnected or hibernated and registered; coalesced; no body unless the account
// opts in. Two refinements keep pushes honest:
// * Only wake a device that will find the stanza when it wakes. A hibernated device (TCP gone, SM
//   session resumable) gets everything from its SM queue, so any urgent stanza qualifies. A device
//   with no session at all catches up from the mirror (or, for groupchat and subscriptions, from
//   the room or roster upstream) — so only stanzas with that kind of persistence qualify; an
//   ephemeral one would wake it for nothing (PROTOCOLS.md §10 push column: never for ephemeral).
// * Coalesce: while an earlier push is unanswered (the device has not connected since) and younger
//   than the configured window, do not push again; the hub counts the stanza into the next
//   summary's message-count instead.
// A connected device is never pushed: CSI flushing (csi.h) delivers urgent stanzas on its socket.
// The body goes into the summary only when the account opted in and there is a plain-text body to
// show: never an encrypted message's fallback text, never for a stanza without a body.
#pragma once

#include <cstdint>
#include <string_view>

#include "policies/classify.h"
#include "policies/message_features.h"
#include "policies/route.h"
#include "policies/urgency.h"

namespace s2::policy {

enum class DeviceState : std::uint8_t {
  Connected,   // a live stream, whatever its CSI state
  Hibernated,  // stream gone, XEP-0198 session resumable: stanzas wait in its SM queue
  Offline,     // no session: it syncs from the mirror (MAM) when it comes back
};

struct PushTarget {
  DeviceState state = DeviceState::Offline;
  bool registered = false;               // XEP-0357 <enable/> is in force for this device
  bool unanswered = false;               // a push went out and the device has not connected since
  std::uint64_t ms_since_last_push = 0;  // meaningful when `unanswered`; from the hub's clock
  std::uint64_t coalesce_ms = 30'000;    // config
};

enum class PushAction : std::uint8_t {
  Skip,      // no push for this stanza
  Push,      // publish a notification now
  Coalesce,  // a push is already pending: count it into the next summary instead
};

PushAction push_decide(Urgency u, Persistence p, const PushTarget& t);

// May the notification carry `last-message-body` (PROTOCOLS.md §8)?
bool push_includes_body(MessageClass c, const MessageFeatures& f, bool account_opted_in);

// The account's own choice (`s2proxy accounts push-body JID on|off|default`)
// over the daemon's default (--push-body).
enum class BodySetting : uint8_t { Default, On, Off };
bool push_body_opted_in(BodySetting account, bool daemon_default);

std::string_view to_string(PushAction a);

}  // namespace s2::policy
