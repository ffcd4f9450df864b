// RAII and small helpers around libstrophe's stanza model (xmpp_stanza_t).
//
// libstrophe supplies the refcounted element tree, builders and serialisation
// for both sides of the proxy (ARCHITECTURE.md §3); its connection layer is not
// used, and only its public API is (docs/architecture.md §3: no private layout,
// so any libstrophe Debian ships keeps working).
//
// Two kinds of handle:
//   * a root handle (element(), text(), parse(), clone(), adopt()) owns a tree's
//     top element; its copies are aliases of one element;
//   * a child handle (child(), children(), child_ns()) holds one reference to an
//     element inside a tree and remembers the namespace it inherits there.
// Edits libstrophe can make in place (attributes, appending children or text)
// show through every handle. libstrophe cannot unlink a child, so remove_child()
// and remove_children() rebuild the element without it: a root handle and its
// aliases move to the rebuilt element; a handle to an element that sits in a
// tree detaches from that tree (the tree keeps the original).
// add_child() links a root handle's element by reference while it is in no tree
// (later edits through that handle show in the tree); anything already in a tree
// is added as a deep copy, because a libstrophe node has one parent.
// Namespaces: an element carries an "xmlns" attribute only where its namespace
// differs from its parent's (top-level stanzas of the jabber:client stream
// carry none), which is exactly how libstrophe serialises.
#pragma once

#include <strophe.h>

#include <functional>
#include <memory>
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
  // Takes ownership of one reference of `s` (may be null), which must be the
  // top of a tree that no other handle owns (XmlStream's freshly built stanzas).
  static Stanza adopt(xmpp_stanza_t* s);
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
  Stanza(Stanza&& o) noexcept;
  Stanza& operator=(Stanza&& o) noexcept;
  ~Stanza();

  explicit operator bool() const { return node() != nullptr; }
  // The element, for libstrophe's read-only getters (attribute lists).
  xmpp_stanza_t* get() const { return node(); }
  // A deep copy as a new top-level element: in the stream's namespace unless it
  // carries its own xmlns.
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
  // Links c's element by reference if c is a root handle whose element is in
  // no tree yet (and not this element or one of its ancestors); otherwise adds
  // a deep copy.
  Stanza& add_child(const Stanza& c);
  Stanza& add_text(std::string_view text);
  // Removes the first child element matching name (and xmlns if non-empty),
  // rebuilding this element (see above); true if removed.
  bool remove_child(std::string_view name, std::string_view xmlns = {});
  // Removes every child element matching name (and xmlns if non-empty) for
  // which `drop` holds (every match if `drop` is empty), keeping the others in
  // their order; one rebuild at most. Returns how many were removed.
  int remove_children(std::string_view name, std::string_view xmlns,
                      const std::function<bool(const Stanza&)>& drop = {});
  // Concatenated text of this element's direct text children.
  std::string text_content() const;

  // Serialised XML of this element (as libstrophe writes it).
  std::string to_string() const;

 private:
  // Shared by a root handle and its aliases.
  struct Root {
    xmpp_stanza_t* node = nullptr;      // one reference
    xmpp_stanza_t* ns_owner = nullptr;  // one reference; see ns_owner_
    bool linked = false;                // added to a tree by reference
    Root(xmpp_stanza_t* n, xmpp_stanza_t* owner) : node(n), ns_owner(owner) {}
    Root(const Root&) = delete;
    Root& operator=(const Root&) = delete;
    ~Root();
  };
  static Stanza make_root(xmpp_stanza_t* node, xmpp_stanza_t* ns_owner);
  static Stanza make_child(xmpp_stanza_t* node, xmpp_stanza_t* ns_owner);
  xmpp_stanza_t* node() const { return root_ ? root_->node : s_; }
  xmpp_stanza_t* ns_owner() const { return root_ ? root_->ns_owner : ns_owner_; }
  // The namespace this element's children inherit (null: the stream's).
  const char* effective_ns() const;
  // Replaces this handle's element by `rebuilt` (one reference, taken over).
  void replace_node(xmpp_stanza_t* rebuilt);

  std::shared_ptr<Root> root_;         // root handles
  xmpp_stanza_t* s_ = nullptr;         // child handles: the element (one reference)
  xmpp_stanza_t* ns_owner_ = nullptr;  // child handles: the nearest ancestor carrying an
                                       // xmlns attribute (one reference), null when the
                                       // namespace comes from the stream
};

// XML escaping for attribute values and text (for hand-written stream headers).
std::string xml_escape(std::string_view in);

}  // namespace s2
