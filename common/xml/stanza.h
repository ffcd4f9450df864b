// RAII and small helpers around libstrophe's stanza model (xmpp_stanza_t).
//
// libstrophe supplies the refcounted element tree, builders and serialisation
// for both sides of the proxy (ARCHITECTURE.md §3); its connection layer is not
// used. A Stanza owns one reference; copying adds a reference (shallow), clone()
// makes a deep copy. Namespaces: an element carries an "xmlns" attribute only
// where its namespace differs from its parent's (top-level stanzas of the
// jabber:client stream carry none), which is exactly how libstrophe serialises.
#pragma once

#include <strophe.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace s2 {

// One libstrophe context for the whole process (it only carries the allocator
// and logger; stanzas from any connection may be mixed).
xmpp_ctx_t* strophe_ctx();

class Stanza {
 public:
  Stanza() = default;
  // Takes ownership of one reference of `s` (may be null).
  static Stanza adopt(xmpp_stanza_t* s) { return Stanza(s); }
  // Adds a reference.
  static Stanza ref(xmpp_stanza_t* s);
  // New element with the given name (and namespace if non-empty).
  static Stanza element(std::string_view name, std::string_view xmlns = {});
  static Stanza text(std::string_view text);
  // Parses one XML element from a string (tests and builders; never remote input).
  // Namespaces are normalised as XmlStream does; empty on any error.
  static Stanza parse(std::string_view xml);
  // Parses a sequence of elements with one parser (many stored stanzas at
  // once: a MAM page); empty on any error.
  static std::vector<Stanza> parse_all(std::string_view xml);

  Stanza(const Stanza& o);
  Stanza& operator=(const Stanza& o);
  Stanza(Stanza&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stanza& operator=(Stanza&& o) noexcept;
  ~Stanza();

  explicit operator bool() const { return s_ != nullptr; }
  xmpp_stanza_t* get() const { return s_; }
  xmpp_stanza_t* release() {
    auto* s = s_;
    s_ = nullptr;
    return s;
  }
  Stanza clone() const;

  std::string name() const;   // "" for text nodes
  std::string xmlns() const;  // the xmlns attribute ("" when inherited)
  // Namespace matching (is, child, child_ns, remove_child): an element's
  // namespace is its xmlns, else its nearest ancestor's; with none up to the
  // top it is the stream's content namespace and matches "", "jabber:client"
  // and "jabber:server".
  bool is(std::string_view name, std::string_view xmlns) const;
  std::optional<std::string> attr(std::string_view key) const;
  std::string attr_or(std::string_view key, std::string_view dflt = {}) const;
  Stanza& set_attr(std::string_view key, std::string_view value);
  Stanza& remove_attr(std::string_view key);

  // First child element with this name (and xmlns if non-empty), or empty.
  Stanza child(std::string_view name, std::string_view xmlns = {}) const;
  // First child element in this namespace, any name.
  Stanza child_ns(std::string_view xmlns) const;
  std::vector<Stanza> children() const;  // element children only
  // Adds a reference to c; a deep copy if c already sits in a tree (a libstrophe
  // node has one parent) or is an ancestor of this element.
  Stanza& add_child(const Stanza& c);
  Stanza& add_text(std::string_view text);
  // Removes the first child element matching name (and xmlns if non-empty); true if removed.
  bool remove_child(std::string_view name, std::string_view xmlns = {});
  // Concatenated text of this element's direct text children.
  std::string text_content() const;

  // Serialised XML of this element (as libstrophe writes it).
  std::string to_string() const;

 private:
  explicit Stanza(xmpp_stanza_t* s) : s_(s) {}
  xmpp_stanza_t* s_ = nullptr;
};

// XML escaping for attribute values and text (for hand-written stream headers).
std::string xml_escape(std::string_view in);

}  // namespace s2
