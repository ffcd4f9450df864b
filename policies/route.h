// Message Routing 2.0: where a stanza goes, whether it is history, and what we change on the way.
//
// ARCHITECTURE.md §2 is the rule set: bare JID ⇒ persistent, to every device now or at its next
// sync, archived in the mirror; bare JID + <no-store/>/<no-permanent-store/> (XEP-0334) ⇒ every
// online device, not archived; full JID ⇒ that one device only, never rerouted, an error back if it
// is gone. PROTOCOLS.md §3 contrasts it with RFC 6121 §8.5 (priority-based delivery, rerouting a
// full JID to the bare JID, offline storage for whoever connects first) and §10 gives each traffic
// class its meaning. At the border the rules are read in the sender's terms:
//
// * Entering (Direction::FromLegacy, a stanza the upstream delivered to the anchor or a device
//   link, or the inner message of a carbon or MAM catch-up result): legacy senders expect Carbons +
//   MAM to spread a chat with a body even when they address a full JID ("resource locking"), so
//   body-carrying classes are persistent whatever the addressing; chat states and headlines are
//   ephemeral; receipts, markers, corrections and retractions are persistent because they change
//   archived history; groupchat goes to the occupant device only (its history is the room's MAM);
//   message errors are delivered to every device and archived when they refer to an archived
//   message (§7); an ephemeral stanza at the anchor's own full JID is treated as one for a gone
//   device (ejabberd 23 rewrites `to` to the resource it reroutes an unavailable full JID to);
//   iq and presence go to the one device whose link received them (every link hears its own
//   presence broadcasts, roster pushes and iq; the anchor's copies are the proxy's own).
// * Leaving (Direction::FromDevice): a session2 device means Message Routing 2.0 literally — a
//   body sent to a full JID is ephemeral, and goes out with <no-store/> and Carbons <private/> so
//   the upstream neither archives nor copies it; a persistent message gets an <origin-id/>
//   (XEP-0359) so its echoes (carbons, MAM, MUC reflection) deduplicate against the mirror. A
//   legacy-profile device (RFC 6121 client, ARCHITECTURE.md §7) is itself a legacy sender: its body
//   to a full JID is persistent exactly as it would be entering. MUC private messages (to an
//   Occupant) are persistent for both: a PM has no bare JID to address.
//
// Hints: <store/> makes a body-less message persistent (never a headline: RFC 6121 §5.2.2, and
// Prosody's should_store checks headline first); <no-store/>/<no-permanent-store/> make any
// message ephemeral and win over <store/> when both are present — not storing is the reversible
// choice and the one a privacy-minded sender asked for (Prosody 0.12 checks no-store first too).
// Hints never touch groupchat or subscriptions, whose history the room or roster keeps.
//
// A device that is gone (Addressing::device_present == false) is never replaced by another: the
// stanza is dropped, with the error error_if_device_gone() chooses — service-unavailable, see
// there. route() is called after carbons.h accepted a carbon and after receipts.h let a device's
// receipt or marker through; it does not look at ids (dedup.h) or queues (csi.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "policies/classify.h"
#include "policies/message_features.h"

namespace s2::policy {

enum class Direction : std::uint8_t {
  FromDevice,  // leaving: a device behind the proxy sent it, towards upstream or another device
  FromLegacy,  // entering: the upstream delivered it (to the anchor or a device link)
};

// Who the stanza is addressed to, as the account sees it. FromLegacy: where it arrived — the anchor
// (OwnBare / Anchor) or one device's link (OwnDevice) — or, for a copy (carbon, MAM result), the
// forwarded message's `to`. The daemon resolves JIDs to this; a missing `to` is OwnBare.
enum class Target : std::uint8_t {
  OwnBare,     // the account's bare JID (or no `to`)
  Anchor,      // the anchor's full JID (alice@example/s2proxy): it stands for the account
  OwnDevice,   // the full JID of one of the account's devices behind the proxy
  OwnForeign,  // the full JID of an account resource not behind the proxy (logged in upstream)
  OtherBare,   // another account's bare JID, a server or a component
  OtherFull,   // another account's full JID
  Room,        // a MUC room the account has joined (room bare JID)
  Occupant,    // an occupant of such a room (room@service/nick)
};

// The sending device's session profile (ARCHITECTURE.md §7). Only matters FromDevice.
enum class Profile : std::uint8_t { Session2, Legacy };

struct Addressing {
  Direction dir = Direction::FromLegacy;
  Target to = Target::OwnBare;
  Profile sender = Profile::Session2;  // FromDevice only
  bool device_present = true;          // Target::OwnDevice: connected or SM-resumable right now
};

enum class Persistence : std::uint8_t {
  Persistent,          // one history: archived, every device now or at its next sync
  EphemeralAllOnline,  // every device online now; never archived
  EphemeralOneDevice,  // exactly one device (or one remote resource); never archived, never
                       // rerouted
  KeptUpstream,        // history the legacy world keeps, not the mirror: the room's MAM (groupchat)
                       // or the roster's pending subscriptions (RFC 6121 §3.1.3)
};

// Which of the account's devices receive it.
enum class Fanout : std::uint8_t {
  None,
  AllDevices,        // online ones now, the others at their next sync (needs archive)
  AllOnlineDevices,  // online (connected or SM-hibernated) ones only
  OneDevice,         // the addressed device only
};

enum class Disposition : std::uint8_t {
  Deliver,  // act on the decision's fields
  Drop,     // deliver nowhere, say nothing
  Bounce,   // deliver nowhere, return `error` to the sender
};

// RFC 6120 §8.3.3 conditions the router produces (only one: see error_if_device_gone).
enum class ErrorCondition : std::uint8_t { ServiceUnavailable };
enum class ErrorType : std::uint8_t { Cancel, Continue, Modify, Auth, Wait };

struct StanzaError {
  ErrorCondition condition = ErrorCondition::ServiceUnavailable;
  ErrorType type = ErrorType::Cancel;
  bool operator==(const StanzaError&) const = default;
};

// Changes to the copy that leaves towards the upstream (and is archived, if it is).
struct Rewrites {
  bool add_no_store = false;       // <no-store xmlns='urn:xmpp:hints'/>: upstream MAM skips it
  bool add_private = false;        // <private xmlns='urn:xmpp:carbons:2'/>: upstream won't copy it
  bool add_origin_id = false;      // <origin-id xmlns='urn:xmpp:sid:0' id=…/> when absent
  bool negative_priority = false;  // presence: <priority>-1</priority>, so bare-JID messages reach
                                   // the anchor only (ARCHITECTURE.md §3 DeviceLink)
  bool strip_claimed_stanza_ids = false;  // remove <stanza-id> whose `by` claims the account, the
                                          // domain or the proxy (dedup.h should_strip_stanza_id)
  bool operator==(const Rewrites&) const = default;
};

struct RouteDecision {
  Disposition disposition = Disposition::Drop;
  Persistence persistence = Persistence::EphemeralAllOnline;
  bool archive = false;  // write to the mirror; it gets an archive id
  Fanout devices = Fanout::None;
  bool include_sender = false;  // FromDevice: the sender is among `devices` (session2 devices learn
                                // their own message's archive id from the reflection, §7)
  bool upstream = false;        // FromDevice: send it upstream through the sender's device link
  bool proxy = false;           // the proxy consumes it (the anchor's own traffic, MAM, Carbons…)
  Rewrites rewrites;
  std::optional<StanzaError> error;  // set iff disposition == Bounce
};

// The persistence rule alone (ARCHITECTURE.md §2 table plus the border rules above).
Persistence persistence(MessageClass c, const MessageFeatures& f, const Addressing& a);

// The whole decision.
RouteDecision route(MessageClass c, Addressing a, const MessageFeatures& f);

// What to answer when a stanza for exactly one device cannot reach it (the device is gone now, or
// its SM resumption window closed with the stanza unacknowledged). nullopt = drop silently.
//
// service-unavailable (type cancel), never recipient-unavailable: RFC 6121 §8.5.3.2 prescribes
// service-unavailable for an unavailable full JID (iq §8.5.3.2.3; normal/groupchat/headline may
// bounce with it, §8.5.3.2.1), it is exactly what the upstream itself would answer so contacts
// cannot tell the proxy apart from the server, and RFC 6120 §8.3.3.13 forbids recipient-unavailable
// wherever it would reveal the recipient's availability to an entity not entitled to its presence —
// which the router cannot know. Where RFC 6121 would reroute a chat to the bare JID, we bounce
// instead: the error is what makes the sender's client unlock the resource (RFC 6121 §5.1) and
// resend to the bare JID, where the message is persistent. Silent: errors (RFC 6120 §8.3.1: never
// answer an error with an error), iq results (§8.2.3), presence (RFC 6121 §8.5.3.2.2) and headlines
// (fire-and-forget, §5.2.2). Groupchat bounces: the room learns that the occupant is a ghost.
std::optional<StanzaError> error_if_device_gone(MessageClass c, const MessageFeatures& f);

std::string_view to_string(Direction d);
std::string_view to_string(Target t);
std::string_view to_string(Persistence p);
std::string_view to_string(Fanout f);
std::string_view to_string(Disposition d);
std::string_view to_string(ErrorCondition c);  // RFC 6120 element name, e.g. "service-unavailable"
std::string_view to_string(ErrorType t);       // RFC 6120 type attribute, e.g. "cancel"

}  // namespace s2::policy
