// Urgency: how soon a device must see a stanza, which decides CSI flushing and push.
//
// ARCHITECTURE.md §2 and PROTOCOLS.md §9/§10: persistent content is urgent by default; groupchat is
// urgent only when it mentions the user or the account's preferences say so; chat states, presence
// and markers never are; iq is immediate and never queued. No XEP carries urgency, so s2proxy
// derives it here and keeps it internal (CSI, push). The four levels:
//
//   Immediate  never queued: delivered at once (csi.h flushes what was held first, to keep order);
//              never pushed. Iq only — a request waits for its answer.
//   Urgent     flushes the CSI queue and wakes sleeping devices through push (push.h).
//   Normal     flushes the CSI queue so the UI is right when the user looks, but never wakes a
//              device: corrections, errors, room subject changes, call signalling after the
//              propose, subscription answers, and anything the account itself sent.
//   Silent     waits in the CSI queue for the next flush — the stanzas XEP-0352 lets a server hold
//              for an inactive client, as Prosody's mod_csi_simple does — and never pushes.
//
// Hints move persistence (route.h), not urgency: <store/> on a body-less marker makes it persistent
// but it stays silent; a body with <no-store/> is ephemeral but still urgent (push.h only wakes a
// device that will still receive it). Two refinements of the §10 table: XEP-0353 call proposals are
// urgent (a call that does not ring is a missed call, though it is body-less), and what the account
// sent itself — a device's message reflected to its siblings, a sent carbon, a room's reflection of
// our own groupchat message — is at most Normal: nobody needs a buzz for their own words.
#pragma once

#include <cstdint>
#include <string_view>

#include "policies/classify.h"
#include "policies/message_features.h"
#include "policies/route.h"

namespace s2::policy {

enum class Urgency : std::uint8_t { Immediate, Urgent, Normal, Silent };

// Per-chat notification setting (XEP-0492's three), resolved by the daemon from the account's
// preferences (notify_settings.h).
enum class MucNotify : std::uint8_t {
  Never,      // muted: even mentions wait
  OnMention,  // urgent only when the message mentions the user (default for rooms)
  Always,     // every message with content is urgent (default for 1:1 chats)
};

// The settings that apply to one stanza's chat. A room's groupchat follows `groupchat`; a 1:1
// chat's content (chat/normal bodies, encrypted messages) follows `direct`, where `on-mention`
// means "only when mentioned" as in a room and `never` holds the message like a busy room's.
// Preferences change urgency, never persistence (route.h).
struct NotifyPrefs {
  MucNotify groupchat = MucNotify::OnMention;
  MucNotify direct = MucNotify::Always;
};

Urgency urgency(MessageClass c, const MessageFeatures& f, Direction dir,
                const NotifyPrefs& prefs = {});

std::string_view to_string(Urgency u);

}  // namespace s2::policy
