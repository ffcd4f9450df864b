// XEP-0280 carbons and XEP-0297 forwarding envelopes.
#include "common/mam/carbons.h"

#include "common/mam/datetime.h"

namespace s2::mam {
namespace {

bool is_stanza_ns(const Stanza& el, std::string_view name) {
  return el.is(name, "jabber:client") || el.is(name, "jabber:server");
}

}  // namespace

Stanza build_forwarded(const Stanza& inner, std::optional<int64_t> stamp_ms) {
  Stanza fwd = Stanza::element("forwarded", kNsForward);
  if (stamp_ms) {
    Stanza delay = Stanza::element("delay", kNsDelay);
    delay.set_attr("stamp", format_datetime(*stamp_ms));
    fwd.add_child(delay);
  }
  Stanza copy = inner.clone();
  if (copy) {
    copy.set_attr("xmlns", kNsClient);
    fwd.add_child(copy);
  }
  return fwd;
}

std::optional<Forwarded> parse_forwarded(const Stanza& fwd) {
  if (!fwd.is("forwarded", kNsForward)) return std::nullopt;
  Forwarded out;
  bool have_delay = false;
  for (const Stanza& el : fwd.children()) {
    if (el.name() == "message") {
      if (out.message || !is_stanza_ns(el, "message")) return std::nullopt;
      out.message = el.clone();
    } else if (!have_delay && el.is("delay", kNsDelay)) {
      have_delay = true;
      if (auto stamp = el.attr("stamp")) out.stamp_ms = parse_datetime(trim_ascii(*stamp));
    }
  }
  if (!out.message) return std::nullopt;
  out.message.remove_attr("xmlns");
  return out;
}

std::optional<Carbon> unwrap_carbon(const Stanza& message) {
  if (!is_stanza_ns(message, "message")) return std::nullopt;
  Stanza wrapper;
  CarbonKind kind = CarbonKind::Received;
  for (const Stanza& el : message.children()) {
    const bool received = el.is("received", kNsCarbons);
    if (!received && !el.is("sent", kNsCarbons)) continue;
    if (wrapper) return std::nullopt;  // both kinds, or one twice
    wrapper = el;
    kind = received ? CarbonKind::Received : CarbonKind::Sent;
  }
  if (!wrapper) return std::nullopt;
  auto fwd = parse_forwarded(wrapper.child("forwarded", kNsForward));
  if (!fwd) return std::nullopt;
  return Carbon{kind, std::move(fwd->message)};
}

Stanza wrap_carbon(CarbonKind kind, std::string_view from_bare, std::string_view to_full,
                   const Stanza& inner) {
  Stanza m = Stanza::element("message");
  if (!from_bare.empty()) m.set_attr("from", from_bare);
  if (!to_full.empty()) m.set_attr("to", to_full);
  m.set_attr("type", inner.attr_or("type", "chat"));
  Stanza w = Stanza::element(kind == CarbonKind::Sent ? "sent" : "received", kNsCarbons);
  w.add_child(build_forwarded(inner));
  m.add_child(w);
  return m;
}

}  // namespace s2::mam
