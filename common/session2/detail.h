// Internal helpers for the session2 parsers and builders; not part of the API.
//
// Namespaces follow the tree convention of common/xml/stanza.h: an element carries
// "xmlns" only where it differs from its parent, so a child's namespace is its own
// attribute or else its parent's. Trees straight from libstrophe's parser may also
// repeat an inherited xmlns; ns_of() treats both forms alike.
#pragma once

#include <string>
#include <string_view>

#include "common/session2/result.h"
#include "common/xml/stanza.h"

namespace s2::session2::detail {

inline std::string ns_of(const Stanza& el, std::string_view parent_ns) {
  std::string ns = el.xmlns();
  return ns.empty() ? std::string(parent_ns) : ns;
}

// True when `el` is the element `name` carrying xmlns `ns` itself (a top-level
// element, or a child whose namespace differs from its parent's).
inline bool is_element(const Stanza& el, std::string_view name, std::string_view ns) {
  return el && el.name() == name && el.xmlns() == ns;
}

inline Error err(std::string_view condition, std::string text) {
  return Error{std::string(condition), std::move(text)};
}

inline Stanza text_element(std::string_view name, std::string_view text,
                           std::string_view xmlns = {}) {
  Stanza el = Stanza::element(name, xmlns);
  if (!text.empty()) el.add_text(text);
  return el;
}

}  // namespace s2::session2::detail
