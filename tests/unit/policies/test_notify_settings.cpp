// XEP-0492 resolution (notify_settings.h): the most specific notification element for the proxy's
// identity, and how a chat's setting reaches urgency for rooms and 1:1 chats.
#include <doctest/doctest.h>

#include "policies/notify_settings.h"
#include "tests/unit/policies/shapes.h"

namespace s2::policy {
namespace {

using namespace test;
constexpr auto kNever = MucNotify::Never, kMention = MucNotify::OnMention,
               kAlways = MucNotify::Always;

NotifyRule rule(MucNotify s, std::string cat = "", std::string type = "") {
  return NotifyRule{s, std::move(cat), std::move(type)};
}

TEST_CASE("resolve_notify: XEP-0492 specificity for client/phone") {
  struct Row {
    std::vector<NotifyRule> rules;
    std::optional<MucNotify> want;
    std::string_view why;
  };
  const Row rows[] = {
      {{}, std::nullopt, "no rule: defaults apply"},
      {{rule(kNever)}, kNever, "fallback only"},
      {{rule(kAlways), rule(kNever, "client", "phone")}, kNever, "category+type beats fallback"},
      {{rule(kNever, "client", "phone"), rule(kAlways)}, kNever, "order does not matter"},
      {{rule(kMention, "client"), rule(kAlways)}, kMention, "category beats fallback"},
      {{rule(kMention, "client"), rule(kNever, "client", "phone")}, kNever, "type beats category"},
      {{rule(kNever, "client", "pc"), rule(kAlways)}, kAlways, "another device type: fallback"},
      {{rule(kNever, "client", "pc")}, std::nullopt, "only another type: nothing applies"},
      {{rule(kNever, "gateway"), rule(kMention)}, kMention, "another category: fallback"},
      {{rule(kNever, "", "phone")}, std::nullopt, "type without category is malformed"},
      {{rule(kNever, "", "phone"), rule(kMention)}, kMention, "malformed ignored, fallback used"},
      {{rule(kAlways), rule(kNever)}, kAlways, "duplicate fallback: the first"},
  };
  for (const auto& r : rows) {
    INFO(r.why);
    CHECK(resolve_notify(r.rules, kNotifyCategory, kNotifyType) == r.want);
  }
}

TEST_CASE("notify_prefs_for: a chat's setting, else XEP-0492's defaults") {
  const ChatNotifySettings s{
      {"muted@muc.example", kNever}, {"bob@example", kNever}, {"loud@muc.example", kAlways}};
  struct Row {
    S shape;
    const ChatNotifySettings* settings;
    std::string_view chat;
    Urgency want;
    std::string_view why;
  };
  const Row rows[] = {
      {S::chat().body(), nullptr, "bob@example", Urgency::Urgent, "no settings: 1:1 always"},
      {S::chat().body(), &s, "carol@example", Urgency::Urgent, "other chat: default"},
      {S::chat().body(), &s, "bob@example", Urgency::Silent, "1:1 set to never"},
      {S::chat().omemo(), &s, "bob@example", Urgency::Silent, "encrypted, never"},
      {S::groupchat().body().mention(), &s, "muted@muc.example", Urgency::Silent,
       "muted room ignores mentions"},
      {S::groupchat().body(), &s, "loud@muc.example", Urgency::Urgent, "room set to always"},
      {S::groupchat().body(), &s, "quiet@muc.example", Urgency::Silent, "default room: mention"},
      {S::groupchat().body().mention(), &s, "quiet@muc.example", Urgency::Urgent,
       "default room, mentioned"},
      {S::chat().state(), &s, "carol@example", Urgency::Silent, "preferences never raise"},
      {S::iq(), &s, "bob@example", Urgency::Immediate, "iq stays immediate"},
      {S::chat().body().replace(), &s, "bob@example", Urgency::Normal, "correction unchanged"},
  };
  for (const auto& r : rows) {
    INFO(r.why);
    CHECK(urgency(classify(r.shape), r.shape, In, notify_prefs_for(r.settings, r.chat)) == r.want);
  }
}

TEST_CASE("urgency: 1:1 on-mention") {
  const NotifyPrefs p{kMention, kMention};
  CHECK(urgency(MessageClass::ChatBody, S::chat().body(), In, p) == Urgency::Silent);
  CHECK(urgency(MessageClass::ChatBody, S::chat().body().mention(), In, p) == Urgency::Urgent);
}

}  // namespace
}  // namespace s2::policy
