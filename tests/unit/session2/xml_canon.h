// Test helper: a canonical text form of an element tree, so builders can be compared
// with expected XML independently of attribute order and of whether a namespace is
// written or inherited. Whitespace-only text between elements is ignored.
#pragma once

#include <strophe.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/xml/stanza.h"

namespace s2::session2::test {

inline void canon_into(xmpp_stanza_t* s, const std::string& parent_ns, std::string* out) {
  if (xmpp_stanza_is_text(s)) {
    const char* t = xmpp_stanza_get_text_ptr(s);
    std::string_view text = t ? t : "";
    if (text.find_first_not_of(" \t\r\n") != std::string_view::npos) {
      *out += "\"";
      *out += text;
      *out += "\"";
    }
    return;
  }
  const char* ns_attr = xmpp_stanza_get_attribute(s, "xmlns");
  const std::string ns = ns_attr ? ns_attr : parent_ns;
  *out += "<{" + ns + "}" + xmpp_stanza_get_name(s);
  const int n = xmpp_stanza_get_attribute_count(s);
  std::vector<const char*> raw(static_cast<size_t>(2 * n));
  xmpp_stanza_get_attributes(s, raw.data(), 2 * n);
  std::vector<std::pair<std::string, std::string>> attrs;
  for (int i = 0; i + 1 < 2 * n; i += 2) {
    if (std::string_view(raw[i]) == "xmlns") continue;
    attrs.emplace_back(raw[i], raw[i + 1]);
  }
  std::sort(attrs.begin(), attrs.end());
  for (const auto& [k, v] : attrs) *out += " " + k + "='" + v + "'";
  *out += ">";
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(s); c; c = xmpp_stanza_get_next(c)) {
    canon_into(c, ns, out);
  }
  *out += "</>";
}

inline std::string canon(const Stanza& s) {
  if (!s) return "(null)";
  std::string out;
  canon_into(s.get(), "", &out);
  return out;
}

// Canonical form of expected XML text (parsed with Stanza::parse).
inline std::string canon(std::string_view xml) {
  Stanza s = Stanza::parse(xml);
  if (!s) return "(unparseable: " + std::string(xml) + ")";
  return canon(s);
}

// The built element must survive serialisation: compare what to_string() writes.
inline std::string canon_serialised(const Stanza& s) { return canon(s.to_string()); }

}  // namespace s2::session2::test
