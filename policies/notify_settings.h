// XEP-0492 Chat Notification Settings, as decisions over small values.
//
// Clients keep a chat's notification setting in its XEP-0402 bookmark: the item (id = the chat's
// JID) of the account's PEP node urn:xmpp:bookmarks:1 carries, under <extensions/>, a
// <notify xmlns='urn:xmpp:notification-settings:1'> (or the :0 namespace of XEP-0492 0.1, which
// slixmpp and others still write) with <always/>, <on-mention/> or <never/> children, each
// optionally scoped to a disco identity (identity-category, identity-type).
//
// The proxy decides for the account's phones — what it decides is push and CSI, both mobile
// concerns — so it reads each chat's setting as an application of identity client/phone would
// (XEP-0492 §4: category and type, then category, then the fallback element). A chat without a
// setting keeps XEP-0492's defaults: 1:1 always, rooms on mention (urgency.h).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policies/urgency.h"

namespace s2::policy {

// One notification element of a <notify/>.
struct NotifyRule {
  MucNotify setting = MucNotify::Always;
  std::string category;  // identity-category, "" when absent
  std::string type;      // identity-type, "" when absent
};

// XEP-0492 §4: the most specific rule for an application of identity category/type — matching
// category and type, then category alone (no type), then the fallback (neither); a rule with a
// type but no category is malformed and never matches. nullopt: no rule applies.
std::optional<MucNotify> resolve_notify(const std::vector<NotifyRule>& rules,
                                        std::string_view category, std::string_view type);

// The identity the proxy reads settings as.
inline constexpr std::string_view kNotifyCategory = "client";
inline constexpr std::string_view kNotifyType = "phone";

// Chat bare JID (lower case) → its resolved setting.
using ChatNotifySettings = std::map<std::string, MucNotify, std::less<>>;

// The preferences for one stanza's chat (`chat_bare`, lower case): the chat's setting for both
// kinds when it has one, else the defaults.
NotifyPrefs notify_prefs_for(const ChatNotifySettings* settings, std::string_view chat_bare);

}  // namespace s2::policy
