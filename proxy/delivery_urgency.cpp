// delivery_facts(): see delivery_urgency.h.
#include "proxy/delivery_urgency.h"

#include "policies/csi.h"
#include "policies/dedup.h"
#include "policies/stanza_facts.h"
#include "proxy/xmpp_ns.h"

namespace s2 {
namespace {

// Namespaces read only here (not in xmpp_ns.h while the hub is being split in another branch).
constexpr std::string_view kNsReference = "urn:xmpp:reference:0";  // XEP-0372
constexpr std::string_view kNsMamPrefix = "urn:xmpp:mam:";         // XEP-0313 (any version)

char fold(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool word_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-';
}

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (fold(a[i]) != fold(b[i])) return false;
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = fold(c);
  return out;
}

bool is_mam_result(const Stanza& s) {
  if (s.name() != "message") return false;
  for (const auto& c : s.children())
    if (c.name() == "result" && c.xmlns().starts_with(kNsMamPrefix)) return true;
  return false;
}

std::string_view resource_of(std::string_view jid) {
  const auto slash = jid.find('/');
  return slash == std::string_view::npos ? std::string_view{} : jid.substr(slash + 1);
}

}  // namespace

bool contains_word(std::string_view text, std::string_view word) {
  if (word.empty() || word.size() > text.size()) return false;
  for (size_t i = 0; i + word.size() <= text.size(); ++i) {
    if (!iequal(text.substr(i, word.size()), word)) continue;
    const bool left = i == 0 || !word_char(text[i - 1]);
    const size_t end = i + word.size();
    const bool right = end == text.size() || !word_char(text[end]);
    if (left && right) return true;
  }
  return false;
}

bool mentions(const Stanza& message, std::string_view account, std::string_view room,
              std::string_view nick) {
  const std::string me = "xmpp:" + std::string(account);
  const std::string occupant = "xmpp:" + std::string(room) + "/" + std::string(nick);
  for (const auto& c : message.children()) {
    if (c.is("reference", kNsReference) && c.attr_or("type") == "mention") {
      const std::string uri = c.attr_or("uri");
      if (iequal(uri, me) || (!nick.empty() && uri == occupant)) return true;
    }
  }
  for (const auto& c : message.children()) {
    if (c.name() != "body") continue;
    const std::string ns = c.xmlns();
    if (!ns.empty() && ns != ns::kClient && ns != ns::kServer) continue;
    const std::string text = c.text_content();
    if (contains_word(text, nick) || contains_word(text, account)) return true;
  }
  return false;
}

DeliveryFacts delivery_facts(const Stanza& s, const DeliveryView& v) {
  DeliveryFacts out;
  if (is_mam_result(s)) {
    out.urgency = policy::Urgency::Immediate;
    return out;
  }
  // A Carbons copy: the facts are the inner message's (stanza_facts.h).
  Stanza inner = s;
  policy::Forwarded fwd = policy::Forwarded::None;
  if (s.name() == "message") {
    for (auto [wrap, kind] : {std::pair{"sent", policy::Forwarded::Sent},
                              std::pair{"received", policy::Forwarded::Received}}) {
      if (auto c = s.child(wrap, ns::kCarbons)) {
        if (auto m = c.child("forwarded", ns::kForward).child("message")) {
          inner = m;
          fwd = kind;
        }
        break;
      }
    }
  }
  policy::MessageFeatures f = stanza_features(inner);
  f.forwarded = fwd;
  const std::string from = inner.attr_or("from");
  const std::string_view from_bare = policy::bare_of(from);
  auto dir = policy::Direction::FromLegacy;
  if (!from.empty() && policy::jid_equal(from_bare, v.account)) dir = policy::Direction::FromDevice;

  if (f.kind == policy::StanzaKind::Message && f.type == policy::MessageType::Groupchat &&
      !from.empty()) {
    const std::string room = lower(from_bare);
    std::string nick;
    if (v.room_nicks) {
      if (auto it = v.room_nicks->find(room); it != v.room_nicks->end()) nick = it->second;
    }
    if (nick.empty()) nick = std::string(v.account.substr(0, v.account.find('@')));
    const std::string_view from_nick = resource_of(from);
    f.muc_own_reflection = !from_nick.empty() && from_nick == nick;
    f.mentions_user = !f.muc_own_reflection && mentions(inner, v.account, from_bare, nick);
  }

  out.cls = policy::classify(f);
  const std::string chat =
      lower(fwd == policy::Forwarded::Sent ? policy::bare_of(inner.attr_or("to")) : from_bare);
  out.urgency = policy::urgency(out.cls, f, dir, policy::notify_prefs_for(v.notify, chat));
  // A chat state I sent (a sibling's, as a carbon) is the state of the conversation with its
  // addressee; one I received, of the conversation with its sender.
  const std::string peer =
      fwd == policy::Forwarded::Sent ? ">" + lower(inner.attr_or("to")) : lower(from);
  out.coalesce_key = policy::csi_coalesce_key(out.cls, f, peer);
  return out;
}

}  // namespace s2
