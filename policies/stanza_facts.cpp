// stanza_features(), message_ids(), fingerprint_content() and the stanza edits: see stanza_facts.h.
#include "policies/stanza_facts.h"

#include <algorithm>
#include <optional>
#include <string>

#include "policies/dedup.h"
#include "proxy/xmpp_ns.h"

namespace s2 {
namespace {

using policy::CallSignal;
using policy::Encryption;

bool is_content_ns(std::string_view x) { return x.empty() || x == ns::kClient || x == ns::kServer; }

// An element's effective namespace given its parent's ("" = the stream's content namespace).
std::string effective_ns(const Stanza& e, const std::string& parent_ns) {
  std::string x = e.xmlns();
  return x.empty() ? parent_ns : x;
}

struct Child {
  Stanza el;
  std::string name;
  std::string ns;  // effective; "" = content namespace
};

std::vector<Child> children_of(const Stanza& s, const std::string& s_ns) {
  std::vector<Child> out;
  for (Stanza& c : s.children()) {
    std::string name = c.name();
    std::string x = effective_ns(c, s_ns);
    out.push_back(Child{std::move(c), std::move(name), std::move(x)});
  }
  return out;
}

// The children of the stanza itself; a stanza without xmlns is in the content namespace.
std::vector<Child> top_children(const Stanza& s) { return children_of(s, s.xmlns()); }

bool is_omemo_ns(std::string_view x) {
  return x == ns::kOmemoLegacy || x == ns::kOmemo1 || x == ns::kOmemo2;
}

bool is_retract_ns(std::string_view x) { return x == ns::kRetract || x == ns::kRetract0; }

bool is_jmi_ns(std::string_view x) { return x == ns::kJmi || x == ns::kJmi1; }

policy::MessageType message_type(std::string_view t) {
  if (t == "chat") return policy::MessageType::Chat;
  if (t == "groupchat") return policy::MessageType::Groupchat;
  if (t == "headline") return policy::MessageType::Headline;
  if (t == "error") return policy::MessageType::Error;
  return policy::MessageType::Normal;
}

policy::PresenceType presence_type(std::string_view t) {
  using P = policy::PresenceType;
  if (t == "unavailable") return P::Unavailable;
  if (t == "subscribe") return P::Subscribe;
  if (t == "subscribed") return P::Subscribed;
  if (t == "unsubscribe") return P::Unsubscribe;
  if (t == "unsubscribed") return P::Unsubscribed;
  if (t == "probe") return P::Probe;
  if (t == "error") return P::Error;
  return P::Available;
}

policy::IqType iq_type(std::string_view t) {
  using I = policy::IqType;
  if (t == "set") return I::Set;
  if (t == "result") return I::Result;
  if (t == "error") return I::Error;
  return I::Get;
}

CallSignal call_signal(std::string_view name) {
  if (name == "propose") return CallSignal::Propose;
  if (name == "retract") return CallSignal::Retract;
  if (name == "accept") return CallSignal::Accept;
  if (name == "proceed") return CallSignal::Proceed;
  if (name == "reject") return CallSignal::Reject;
  if (name == "finish") return CallSignal::Finish;
  return CallSignal::None;
}

// The scheme an EME <encryption namespace=…> names.
Encryption eme_scheme(std::string_view named) {
  if (is_omemo_ns(named)) return Encryption::Omemo;
  if (named == ns::kOx) return Encryption::Ox;
  if (named == ns::kOtr) return Encryption::Otr;
  return Encryption::Eme;
}

// XEP-0422 <apply-to> wrapping an XEP-0424 (< 0.4) <retract/>.
bool is_fastened_retract(const Child& c) {
  if (c.ns != ns::kFasten || c.name != "apply-to") return false;
  for (const Child& g : children_of(c.el, c.ns)) {
    if (g.name == "retract" && is_retract_ns(g.ns)) return true;
  }
  return false;
}

// Metadata that never makes a stanza "other_payload" (stanza_facts.h).
bool is_metadata_ns(std::string_view x) {
  return x == ns::kHints || x == ns::kSid || x == ns::kDelay || x == ns::kLegacyDelay ||
         x == ns::kAddress || x == ns::kNick || x == ns::kFallback;
}

bool is_whitespace(std::string_view t) {
  return std::all_of(t.begin(), t.end(),
                     [](char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; });
}

// Routing metadata left out of the fingerprint (servers add or strip it on the way).
bool is_fingerprint_metadata(const Child& c) {
  if (is_content_ns(c.ns)) return c.name == "thread";
  if (c.ns == ns::kCarbons) return c.name == "private";
  return c.ns == ns::kSid || c.ns == ns::kDelay || c.ns == ns::kLegacyDelay || c.ns == ns::kHints ||
         c.ns == ns::kAddress;
}

// C0 delimiters: XML 1.0 cannot carry them, so the serialisation is unambiguous.
constexpr char kOpen = '\x01';
constexpr char kName = '\x02';
constexpr char kAttr = '\x03';
constexpr char kValue = '\x04';
constexpr char kText = '\x05';
constexpr char kClose = '\x06';

void canonical(const Stanza& e, const std::string& e_ns, std::string& out) {
  out += kOpen;
  out += is_content_ns(e_ns) ? std::string_view(ns::kClient) : std::string_view(e_ns);
  out += kName;
  out += e.name();
  std::vector<std::pair<std::string, std::string>> attrs;
  if (xmpp_stanza_t* raw = e.get()) {
    const int n = xmpp_stanza_get_attribute_count(raw);
    if (n > 0) {
      std::vector<const char*> kv(2 * static_cast<size_t>(n));
      const int got = xmpp_stanza_get_attributes(raw, kv.data(), 2 * n);
      for (int i = 0; i + 1 < got; i += 2) {
        if (std::string_view(kv[i]) == "xmlns") continue;
        attrs.emplace_back(kv[i], kv[i + 1]);
      }
    }
  }
  std::sort(attrs.begin(), attrs.end());
  for (const auto& [k, v] : attrs) {
    out += kAttr;
    out += k;
    out += kValue;
    out += v;
  }
  const std::string text = e.text_content();
  if (!is_whitespace(text)) {
    out += kText;
    out += text;
  }
  for (const Child& c : children_of(e, e_ns)) canonical(c.el, c.ns, out);
  out += kClose;
}

// Removes every child `name` in `xmlns` for which `drop` holds; the others keep their order.
template <typename Pred>
int remove_children_if(Stanza& s, std::string_view name, std::string_view xmlns, Pred drop) {
  return s.remove_children(name, xmlns, drop);
}

}  // namespace

policy::MessageFeatures stanza_features(const Stanza& s) {
  policy::MessageFeatures f;
  const std::string name = s.name();
  const std::string type = s.attr_or("type");
  if (name == "presence") {
    f.kind = policy::StanzaKind::Presence;
    f.presence = presence_type(type);
  } else if (name == "iq") {
    f.kind = policy::StanzaKind::Iq;
    f.iq = iq_type(type);
  } else {
    f.kind = policy::StanzaKind::Message;
    f.type = message_type(type);
  }

  bool omemo = false;
  bool ox = false;
  bool legacy_pgp = false;
  bool otr_body = false;
  std::optional<Encryption> eme;
  for (const Child& c : top_children(s)) {
    const std::string_view n = c.name;
    const std::string_view x = c.ns;
    if (is_content_ns(x)) {
      if (n == "body") {
        const std::string text = c.el.text_content();
        if (!text.empty()) f.has_body = true;
        if (text.starts_with("?OTR")) otr_body = true;
      } else if (n == "subject") {
        f.has_subject = true;
      } else if (n == "thread" || n == "error") {
      } else if (f.kind == policy::StanzaKind::Presence &&
                 (n == "show" || n == "status" || n == "priority")) {
      } else {
        f.other_payload = true;
      }
    } else if (is_metadata_ns(x)) {
      if (x == ns::kHints) {
        if (n == "store") f.hints.store = true;
        if (n == "no-store") f.hints.no_store = true;
        if (n == "no-permanent-store") f.hints.no_permanent_store = true;
        if (n == "no-copy") f.hints.no_copy = true;
      }
    } else if (x == ns::kChatStates) {
      f.chat_state = true;
    } else if (x == ns::kReceipts && n == "request") {
      f.receipt_request = true;
    } else if (x == ns::kReceipts && n == "received") {
      f.receipt = true;
    } else if (x == ns::kMarkers && n == "displayed") {
      f.marker_displayed = true;
    } else if (x == ns::kMarkers && (n == "markable" || n == "received" || n == "acknowledged")) {
    } else if (x == ns::kCorrect && n == "replace") {
      f.correction = true;
    } else if (is_retract_ns(x) && n == "retract") {
      f.retraction = true;
    } else if (is_fastened_retract(c)) {
      f.retraction = true;
    } else if (is_jmi_ns(x) && call_signal(n) != CallSignal::None) {
      f.call = call_signal(n);
    } else if (x == ns::kCarbons && n == "private") {
      f.carbons_private = true;
    } else if (x == ns::kMucUser && n == "x") {
      f.muc_user_x = true;
      if (c.el.child("invite", ns::kMucUser)) f.muc_invite = true;
    } else if (x == ns::kConference && n == "x") {
      f.muc_invite = true;
    } else if (is_omemo_ns(x) && n == "encrypted") {
      omemo = true;
    } else if (x == ns::kOx && n == "openpgp") {
      ox = true;
    } else if (x == ns::kEme && n == "encryption") {
      const Encryption named = eme_scheme(c.el.attr_or("namespace"));
      // Several declarations: a known scheme beats "another scheme".
      if (!eme || *eme == Encryption::Eme) eme = named;
    } else if (x == ns::kLegacyPgp && n == "x") {
      legacy_pgp = true;
    } else {
      f.other_payload = true;
    }
  }
  if (omemo) {
    f.encryption = Encryption::Omemo;
  } else if (ox) {
    f.encryption = Encryption::Ox;
  } else if (eme) {
    f.encryption = *eme;
  } else if (legacy_pgp) {
    f.encryption = Encryption::Eme;
  } else if (otr_body) {
    f.encryption = Encryption::Otr;
  }
  return f;
}

MessageIds message_ids(const Stanza& s) {
  MessageIds out;
  out.id = s.attr_or("id");
  std::optional<std::string> retract, replace, receipt, displayed;
  for (const Child& c : top_children(s)) {
    if (c.ns == ns::kSid) {
      if (c.name == "stanza-id") {
        out.stanza_ids.emplace_back(c.el.attr_or("id"), c.el.attr_or("by"));
      } else if (c.name == "origin-id" && out.origin_id.empty()) {
        out.origin_id = c.el.attr_or("id");
      }
    } else if (is_retract_ns(c.ns) && c.name == "retract") {
      if (auto id = c.el.attr("id"); id && !retract) retract = std::move(id);
    } else if (is_fastened_retract(c)) {
      if (auto id = c.el.attr("id"); id && !retract) retract = std::move(id);
    } else if (c.ns == ns::kCorrect && c.name == "replace") {
      if (!replace) replace = c.el.attr("id");
    } else if (c.ns == ns::kReceipts && c.name == "received") {
      if (!receipt) receipt = c.el.attr("id");
    } else if (c.ns == ns::kMarkers && c.name == "displayed") {
      if (!displayed) displayed = c.el.attr("id");
    }
  }
  if (s.attr_or("type") == "error") {
    out.ref_id = out.id;
  } else {
    for (const auto* ref : {&retract, &replace, &receipt, &displayed}) {
      if (*ref) {
        out.ref_id = **ref;
        break;
      }
    }
  }
  return out;
}

std::string fingerprint_content(const Stanza& s) {
  std::vector<std::string> parts;
  for (const Child& c : top_children(s)) {
    if (is_content_ns(c.ns) && c.name == "body") {
      std::string text = c.el.text_content();
      if (!text.empty()) return text;
    }
    if (is_fingerprint_metadata(c)) continue;
    std::string part;
    canonical(c.el, c.ns, part);
    parts.push_back(std::move(part));
  }
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const std::string& p : parts) out += p;
  return out;
}

int strip_claimed_stanza_ids(Stanza& s, std::string_view account_bare, std::string_view domain) {
  return remove_children_if(s, "stanza-id", ns::kSid, [&](const Stanza& c) {
    return policy::should_strip_stanza_id(c.attr_or("by"), account_bare, domain);
  });
}

void set_stanza_id(Stanza& s, std::string_view by, std::string_view id) {
  remove_children_if(s, "stanza-id", ns::kSid,
                     [&](const Stanza& c) { return policy::jid_equal(c.attr_or("by"), by); });
  Stanza sid = Stanza::element("stanza-id", ns::kSid);
  sid.set_attr("by", by).set_attr("id", id);
  s.add_child(sid);
}

std::string ensure_origin_id(Stanza& s, std::string_view fresh_id) {
  for (const Child& c : top_children(s)) {
    if (c.ns == ns::kSid && c.name == "origin-id") {
      std::string id = c.el.attr_or("id");
      if (!id.empty()) return id;
    }
  }
  s.remove_children("origin-id", ns::kSid);
  Stanza oid = Stanza::element("origin-id", ns::kSid);
  oid.set_attr("id", fresh_id);
  s.add_child(oid);
  return std::string(fresh_id);
}

void add_delay(Stanza& s, std::string_view from, std::string_view stamp) {
  if (s.child("delay", ns::kDelay)) return;
  Stanza d = Stanza::element("delay", ns::kDelay);
  if (!from.empty()) d.set_attr("from", from);
  d.set_attr("stamp", stamp);
  s.add_child(d);
}

void add_hint_no_store(Stanza& s) {
  if (!s.child("no-store", ns::kHints)) s.add_child(Stanza::element("no-store", ns::kHints));
}

void add_carbons_private(Stanza& s) {
  if (!s.child("private", ns::kCarbons)) s.add_child(Stanza::element("private", ns::kCarbons));
}

void set_presence_priority(Stanza& s, int priority) {
  // A <priority> without xmlns is in the stanza's namespace; Stanza matches a stream-inherited
  // one against "jabber:client".
  std::string own = s.xmlns();
  const std::string content = own.empty() ? std::string(ns::kClient) : own;
  s.remove_children("priority", content);
  Stanza p = Stanza::element("priority");
  p.add_text(std::to_string(priority));
  s.add_child(p);
}

MessageFacts read_message_facts(const Stanza& s) {
  MessageFacts m;
  m.features = stanza_features(s);
  m.ids = message_ids(s);
  m.from = s.attr_or("from");
  m.to = s.attr_or("to");
  m.type = s.attr_or("type");
  return m;
}

}  // namespace s2
