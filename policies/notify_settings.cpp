// resolve_notify() / notify_prefs_for(): see notify_settings.h.
#include "policies/notify_settings.h"

namespace s2::policy {

std::optional<MucNotify> resolve_notify(const std::vector<NotifyRule>& rules,
                                        std::string_view category, std::string_view type) {
  // Specificity: 3 = category and type, 2 = category only, 1 = fallback. First of the best wins
  // (XEP-0492 forbids duplicates; a repeated one changes nothing).
  int best = 0;
  std::optional<MucNotify> out;
  for (const auto& r : rules) {
    int rank = 0;
    if (r.category.empty())
      rank = r.type.empty() ? 1 : 0;  // a type without a category: malformed
    else if (r.category == category)
      rank = r.type.empty() ? 2 : (r.type == type ? 3 : 0);
    if (rank > best) {
      best = rank;
      out = r.setting;
    }
  }
  return out;
}

NotifyPrefs notify_prefs_for(const ChatNotifySettings* settings, std::string_view chat_bare) {
  NotifyPrefs p;
  if (!settings || chat_bare.empty()) return p;
  auto it = settings->find(chat_bare);
  if (it == settings->end()) return p;
  p.groupchat = it->second;
  p.direct = it->second;
  return p;
}

}  // namespace s2::policy
