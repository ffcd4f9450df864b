// Receipts and markers from several devices: one answer per message, not one per device.
//
// ARCHITECTURE.md §7: the first device that acknowledges a message sends the receipt upstream;
// later ones are dropped; the receipt state is archived with the message (mirror `messages` flags).
// XEP-0184 §5.5 already forbids acking a message on a later view ("only when first receiving the
// message"), and an ack answers a <request/> (§7) — so a receipt for a message that asked for none,
// or for a message the account sent itself, is dropped too. When the original is not known (never
// archived, or expired), the receipt goes through: a duplicate receipt is harmless, a missing one
// is exactly the "receipts sent by three devices or by none" bug this rule exists to fix.
//
// Displayed markers (XEP-0333) are cumulative — marking a message displayed marks everything
// before it in the conversation — so the rule there is monotonic: send a marker only when it points
// past the last one sent to that peer, by archive order. An unknown target goes through.
//
// The hub calls these for a device's stanza before route(); a Drop means the stanza is neither
// archived, reflected nor sent.
#pragma once

#include <cstdint>
#include <optional>

#include "policies/message_features.h"

namespace s2::policy {

enum class ReceiptState : std::uint8_t {
  NotRequested,  // the original carried no <request/>
  Requested,     // it did, and no device has acknowledged it yet
  Sent,          // a device's receipt went upstream; any later one is a duplicate
};

enum class ReceiptAction : std::uint8_t { SendUpstream, Drop };

// What the mirror knows about the message a receipt refers to.
struct ReceiptOriginal {
  bool incoming = true;  // the account received it (false: the account sent it)
  ReceiptState state = ReceiptState::NotRequested;
};

struct ReceiptVerdict {
  ReceiptAction action;
  ReceiptState state;  // the state to archive afterwards
};

// The state an incoming message is archived with.
constexpr ReceiptState initial_receipt_state(const MessageFeatures& f) {
  return f.receipt_request ? ReceiptState::Requested : ReceiptState::NotRequested;
}

// A device sent <received id=…/>; `original` is nullopt when the id resolves to nothing archived.
constexpr ReceiptVerdict decide_device_receipt(const std::optional<ReceiptOriginal>& original) {
  if (!original) return {ReceiptAction::SendUpstream, ReceiptState::Sent};
  if (!original->incoming || original->state != ReceiptState::Requested) {
    return {ReceiptAction::Drop, original->state};
  }
  return {ReceiptAction::SendUpstream, ReceiptState::Sent};
}

struct MarkerVerdict {
  ReceiptAction action;
  std::optional<std::uint64_t> last_sent;  // archive id to remember for the peer afterwards
};

// A device sent <displayed id=…/>. `marked`: archive id of the message it names (nullopt: not
// archived); `last_sent`: archive id of the newest message a marker already went upstream for,
// in this conversation.
constexpr MarkerVerdict decide_device_marker(std::optional<std::uint64_t> marked,
                                             std::optional<std::uint64_t> last_sent) {
  if (!marked) return {ReceiptAction::SendUpstream, last_sent};
  if (last_sent && *marked <= *last_sent) return {ReceiptAction::Drop, last_sent};
  return {ReceiptAction::SendUpstream, marked};
}

}  // namespace s2::policy
