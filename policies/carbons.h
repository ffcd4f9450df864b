// Accepting a carbon (XEP-0280) on the anchor, before its inner message is routed.
//
// Security first (XEP-0280 "Security Considerations", PROTOCOLS.md §4): a <received>/<sent> wrapper
// is trusted only when its `from` is the account's own bare JID — anyone else can wrap anything,
// and a forged carbon would put words in the user's mouth. The inner message must also involve the
// account on the side the wrapper claims: a <sent> copy is of a message one of our resources sent,
// a <received> copy of one a resource of ours received.
//
// Then echoes: the anchor has Carbons enabled, so it is also copied what the device links send and
// receive. A carbon whose inner message left or reached one of our device links is a copy of a
// stanza the hub already routed when it passed through that link (reflected to the devices,
// archived, deduplicated); delivering it again would double chat states and other ephemeral
// traffic that no dedup key catches. Only carbons of the account's non-proxy clients
// (Target::OwnForeign) carry news.
#pragma once

#include <cstdint>
#include <string_view>

#include "policies/message_features.h"

namespace s2::policy {

enum class CarbonVerdict : std::uint8_t {
  Accept,  // route the inner message (Direction::FromLegacy, features.forwarded set)
  Reject,  // forged or inconsistent: drop and count it
  Echo,    // already routed when it passed through one of our device links: drop quietly
};

struct CarbonCheck {
  Forwarded kind = Forwarded::None;
  std::string_view wrapper_from;  // `from` of the outer <message>
  std::string_view inner_from;    // `from` of the forwarded message
  std::string_view inner_to;      // `to` of the forwarded message
  std::string_view account_bare;
  bool inner_from_own_device = false;  // inner `from` is the full JID of one of our device links
  bool inner_to_own_device = false;    // inner `to` is
};

CarbonVerdict check_carbon(const CarbonCheck& c);

std::string_view to_string(CarbonVerdict v);

}  // namespace s2::policy
