// Stanza: RAII over libstrophe's refcounted xmpp_stanza_t tree.
//
// libstrophe's public API has no way to read a node's parent or to unlink a
// child, and it leaves `parent`/`next` of a still-referenced child dangling when
// the parent is freed (so adding such a child elsewhere walks freed memory).
// We therefore mirror its private node layout (identical from 0.12 to 0.14,
// checked once at start-up in strophe_ctx()) and:
//   * release through release_node(), which unlinks children that outlive
//     their parent, so a parent pointer is always null or alive;
//   * add_child() links a node by reference only if it is in no tree yet,
//     otherwise it adds a deep copy (a node can sit in one tree only);
//   * remove_child() unlinks in place;
//   * namespace matching walks up to the nearest xmlns attribute; an element
//     with none in its whole chain is in the stream's content namespace, so it
//     matches "", "jabber:client" and "jabber:server".
// Copies insert attributes in reverse so that libstrophe's hash iterates them
// in the original order: serialise → parse → serialise is byte-stable.
// Stanza::parse reuses XmlStream (expat) instead of xmpp_stanza_new_from_string,
// which would turn xml:lang into "lang" and write xmlns on every element.
#include "common/xml/stanza.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "common/xml/xml_stream.h"

namespace s2 {
namespace {

// Mirror of `struct _xmpp_stanza_t` (libstrophe src/common.h, 0.12–0.14).
struct Node {
  int ref;
  xmpp_ctx_t* ctx;
  int type;  // xmpp_stanza_type_t
  xmpp_stanza_t* prev;
  xmpp_stanza_t* next;
  xmpp_stanza_t* children;
  xmpp_stanza_t* parent;
  char* data;
  void* attributes;
};

Node* node(xmpp_stanza_t* s) { return reinterpret_cast<Node*>(s); }

// Verifies that Node matches the library we run against; a mismatch would
// corrupt memory, so it is a start-up failure.
void check_layout(xmpp_ctx_t* ctx) {
  xmpp_stanza_t* p = xmpp_stanza_new(ctx);
  xmpp_stanza_t* c = xmpp_stanza_new(ctx);
  xmpp_stanza_t* d = xmpp_stanza_new(ctx);
  bool ok = p && c && d;
  if (ok) {
    xmpp_stanza_set_name(p, "p");
    xmpp_stanza_set_name(c, "c");
    xmpp_stanza_set_text(d, "d");
    xmpp_stanza_add_child_ex(p, c, 0);
    xmpp_stanza_add_child_ex(p, d, 1);
    ok = node(p)->ref == 1 && node(d)->ref == 2 && node(p)->ctx == ctx && node(p)->children == c &&
         node(c)->parent == p && node(c)->next == d && node(d)->prev == c &&
         node(d)->next == nullptr && node(p)->parent == nullptr && node(p)->data &&
         std::strcmp(node(p)->data, "p") == 0 && node(d)->data &&
         std::strcmp(node(d)->data, "d") == 0 && node(p)->attributes == nullptr;
    // Undo by hand so that a wrong layout does not free garbage.
    if (ok) {
      node(p)->children = nullptr;
      node(c)->parent = node(c)->next = nullptr;
      node(d)->parent = node(d)->prev = nullptr;
      node(d)->ref = 1;
    }
  }
  if (!ok) {
    std::fprintf(stderr, "s2: libstrophe stanza layout is not the one s2 was written for\n");
    std::abort();
  }
  xmpp_stanza_release(p);
  xmpp_stanza_release(c);
  xmpp_stanza_release(d);
}

// Drops one reference. When the node dies, children that are still referenced
// elsewhere are unlinked first so they never point at freed memory.
void release_node(xmpp_stanza_t* s) {
  Node* n = node(s);
  if (n->ref > 1) {
    --n->ref;
    return;
  }
  xmpp_stanza_t* c = n->children;
  n->children = nullptr;
  while (c) {
    Node* cn = node(c);
    xmpp_stanza_t* next = cn->next;
    cn->next = cn->prev = cn->parent = nullptr;
    release_node(c);
    c = next;
  }
  xmpp_stanza_release(s);  // ref 1, no children: frees name, attributes, node
}

// Nearest explicit xmlns of s or its ancestors; null when inherited from the stream.
const char* effective_ns(xmpp_stanza_t* s) {
  for (; s; s = node(s)->parent) {
    if (const char* ns = xmpp_stanza_get_attribute(s, "xmlns")) return ns;
  }
  return nullptr;
}

bool ns_matches(const char* effective, std::string_view want) {
  if (effective) return want == effective;
  return want.empty() || want == "jabber:client" || want == "jabber:server";
}

bool name_is(xmpp_stanza_t* s, std::string_view name) {
  const char* n = xmpp_stanza_is_tag(s) ? xmpp_stanza_get_name(s) : nullptr;
  return n && name == n;
}

xmpp_stanza_t* find_child(xmpp_stanza_t* s, std::string_view name, std::string_view xmlns,
                          bool any_name) {
  if (!s) return nullptr;
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(s); c; c = xmpp_stanza_get_next(c)) {
    if (!xmpp_stanza_is_tag(c)) continue;
    if (!any_name && !name_is(c, name)) continue;
    if (!xmlns.empty() || any_name) {
      if (!ns_matches(effective_ns(c), xmlns)) continue;
    }
    return c;
  }
  return nullptr;
}

// Deep copy that keeps the serialised attribute order. libstrophe keeps
// attributes in an 8-bucket hash and iterates each bucket newest-first, so
// re-inserting in iteration order (as xmpp_stanza_copy does) would reverse
// colliding attributes; inserting in reverse keeps them.
xmpp_stanza_t* copy_tree(xmpp_stanza_t* s) {
  xmpp_stanza_t* c = xmpp_stanza_new(xmpp_stanza_get_context(s));
  if (!c) return nullptr;
  bool ok = true;
  if (const char* text = xmpp_stanza_get_text_ptr(s)) {
    ok = xmpp_stanza_set_text(c, text) == XMPP_EOK;
  } else if (xmpp_stanza_is_tag(s)) {
    ok = xmpp_stanza_set_name(c, xmpp_stanza_get_name(s)) == XMPP_EOK;
    const int n = xmpp_stanza_get_attribute_count(s);
    if (ok && n > 0) {
      std::vector<const char*> kv(2 * static_cast<size_t>(n));
      const int got = xmpp_stanza_get_attributes(s, kv.data(), 2 * n);
      for (int i = got / 2 - 1; ok && i >= 0; --i) {
        ok = xmpp_stanza_set_attribute(c, kv[2 * i], kv[2 * i + 1]) == XMPP_EOK;
      }
    }
    for (xmpp_stanza_t* ch = xmpp_stanza_get_children(s); ok && ch; ch = xmpp_stanza_get_next(ch)) {
      xmpp_stanza_t* cc = copy_tree(ch);
      ok = cc != nullptr;
      if (ok) xmpp_stanza_add_child_ex(c, cc, 0);
    }
  }
  if (!ok) {
    release_node(c);
    return nullptr;
  }
  return c;
}

bool is_ancestor_or_self(xmpp_stanza_t* candidate, xmpp_stanza_t* s) {
  for (; s; s = node(s)->parent) {
    if (s == candidate) return true;
  }
  return false;
}

}  // namespace

xmpp_ctx_t* strophe_ctx() {
  static xmpp_ctx_t* const ctx = [] {
    xmpp_initialize();
    xmpp_ctx_t* c = xmpp_ctx_new(nullptr, nullptr);
    if (!c) {
      std::fprintf(stderr, "s2: cannot create libstrophe context\n");
      std::abort();
    }
    check_layout(c);
    return c;
  }();
  return ctx;
}

Stanza Stanza::ref(xmpp_stanza_t* s) {
  if (s) xmpp_stanza_clone(s);
  return Stanza(s);
}

Stanza Stanza::element(std::string_view name, std::string_view xmlns) {
  Stanza st(xmpp_stanza_new(strophe_ctx()));
  if (!st.s_) return st;
  xmpp_stanza_set_name(st.s_, std::string(name).c_str());
  if (!xmlns.empty()) xmpp_stanza_set_ns(st.s_, std::string(xmlns).c_str());
  return st;
}

Stanza Stanza::text(std::string_view text) {
  Stanza st(xmpp_stanza_new(strophe_ctx()));
  if (st.s_) xmpp_stanza_set_text_with_size(st.s_, text.data(), text.size());
  return st;
}

std::vector<Stanza> Stanza::parse_all(std::string_view xml) {
  struct All : XmlStreamHandler {
    std::vector<Stanza> got;
    bool closed = false;
    void on_stream_open(const StreamHeader&) override {}
    void on_stanza(Stanza s) override { got.push_back(std::move(s)); }
    void on_stream_close() override { closed = true; }
    void on_xml_error(const XmlError&) override {}
  } all;
  // A wrapper stream whose content namespace nobody uses: each element keeps
  // exactly the xmlns it declares (none, "", or a URI), and descendants are
  // normalised as on the wire.
  static constexpr std::string_view kWrapperNs = kInternalParseNs;  // refused from peers
  static constexpr std::string_view kOpen =
      "<stream:stream xmlns='urn:s2:stanza-parse' "
      "xmlns:stream='http://etherx.jabber.org/streams'>";
  static constexpr std::string_view kClose = "</stream:stream>";
  XmlLimits limits;
  limits.max_stanza_bytes = std::numeric_limits<size_t>::max();
  limits.max_depth = 1024;
  XmlStream stream(all, limits, std::string(kWrapperNs));
  bool ok = stream.feed(kOpen.data(), kOpen.size()) && stream.feed(xml.data(), xml.size()) &&
            stream.feed(kClose.data(), kClose.size());
  if (!ok || !all.closed) return {};
  return std::move(all.got);
}

Stanza Stanza::parse(std::string_view xml) {
  auto all = parse_all(xml);
  if (all.size() != 1) return {};
  return std::move(all.front());
}

Stanza::Stanza(const Stanza& o) : s_(o.s_) {
  if (s_) xmpp_stanza_clone(s_);
}

Stanza& Stanza::operator=(const Stanza& o) {
  if (o.s_) xmpp_stanza_clone(o.s_);
  if (s_) release_node(s_);
  s_ = o.s_;
  return *this;
}

Stanza& Stanza::operator=(Stanza&& o) noexcept {
  if (this != &o) {
    if (s_) release_node(s_);
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}

Stanza::~Stanza() {
  if (s_) release_node(s_);
}

Stanza Stanza::clone() const { return Stanza(s_ ? copy_tree(s_) : nullptr); }

std::string Stanza::name() const {
  const char* n = s_ && xmpp_stanza_is_tag(s_) ? xmpp_stanza_get_name(s_) : nullptr;
  return n ? n : "";
}

std::string Stanza::xmlns() const {
  const char* ns = s_ ? xmpp_stanza_get_attribute(s_, "xmlns") : nullptr;
  return ns ? ns : "";
}

bool Stanza::is(std::string_view name, std::string_view xmlns) const {
  return s_ && name_is(s_, name) && ns_matches(effective_ns(s_), xmlns);
}

std::optional<std::string> Stanza::attr(std::string_view key) const {
  if (!s_) return std::nullopt;
  const char* v = xmpp_stanza_get_attribute(s_, std::string(key).c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

std::string Stanza::attr_or(std::string_view key, std::string_view dflt) const {
  if (s_) {
    if (const char* v = xmpp_stanza_get_attribute(s_, std::string(key).c_str())) return v;
  }
  return std::string(dflt);
}

Stanza& Stanza::set_attr(std::string_view key, std::string_view value) {
  if (s_) xmpp_stanza_set_attribute(s_, std::string(key).c_str(), std::string(value).c_str());
  return *this;
}

Stanza& Stanza::remove_attr(std::string_view key) {
  if (s_) xmpp_stanza_del_attribute(s_, std::string(key).c_str());
  return *this;
}

Stanza Stanza::child(std::string_view name, std::string_view xmlns) const {
  return ref(find_child(s_, name, xmlns, false));
}

Stanza Stanza::child_ns(std::string_view xmlns) const {
  return ref(find_child(s_, {}, xmlns, true));
}

std::vector<Stanza> Stanza::children() const {
  std::vector<Stanza> out;
  if (!s_) return out;
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(s_); c; c = xmpp_stanza_get_next(c)) {
    if (xmpp_stanza_is_tag(c)) out.push_back(ref(c));
  }
  return out;
}

Stanza& Stanza::add_child(const Stanza& c) {
  if (!s_ || !c.s_ || !xmpp_stanza_is_tag(s_)) return *this;
  Node* cn = node(c.s_);
  if (cn->parent || cn->prev || cn->next || is_ancestor_or_self(c.s_, s_)) {
    // Already in a tree (or would make a cycle): link a private copy.
    if (xmpp_stanza_t* copy = copy_tree(c.s_)) xmpp_stanza_add_child_ex(s_, copy, 0);
  } else {
    xmpp_stanza_add_child_ex(s_, c.s_, 1);
  }
  return *this;
}

Stanza& Stanza::add_text(std::string_view text) {
  if (!s_ || text.empty() || !xmpp_stanza_is_tag(s_)) return *this;
  xmpp_stanza_t* t = xmpp_stanza_new(strophe_ctx());
  if (!t) return *this;
  xmpp_stanza_set_text_with_size(t, text.data(), text.size());
  xmpp_stanza_add_child_ex(s_, t, 0);
  return *this;
}

bool Stanza::remove_child(std::string_view name, std::string_view xmlns) {
  xmpp_stanza_t* c = find_child(s_, name, xmlns, false);
  if (!c) return false;
  Node* cn = node(c);
  if (cn->prev) {
    node(cn->prev)->next = cn->next;
  } else {
    node(s_)->children = cn->next;
  }
  if (cn->next) node(cn->next)->prev = cn->prev;
  cn->prev = cn->next = cn->parent = nullptr;
  release_node(c);
  return true;
}

std::string Stanza::text_content() const {
  std::string out;
  if (!s_) return out;
  if (const char* t = xmpp_stanza_get_text_ptr(s_)) return t;  // a text node itself
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(s_); c; c = xmpp_stanza_get_next(c)) {
    if (const char* t = xmpp_stanza_get_text_ptr(c)) out += t;
  }
  return out;
}

std::string Stanza::to_string() const {
  if (!s_) return {};
  char* buf = nullptr;
  size_t len = 0;
  if (xmpp_stanza_to_text(s_, &buf, &len) != XMPP_EOK || !buf) return {};
  std::string out(buf, len);
  xmpp_free(xmpp_stanza_get_context(s_), buf);
  return out;
}

std::string xml_escape(std::string_view in) {
  std::string out;
  out.reserve(in.size() + in.size() / 8);
  for (char ch : in) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

}  // namespace s2
