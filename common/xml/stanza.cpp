// Stanza: RAII over libstrophe's refcounted xmpp_stanza_t tree, through
// libstrophe's public API only (stanza.h says what each handle means).
//
// What the public API lacks, and what we do instead:
//   * no parent pointer: a child handle remembers the nearest ancestor that
//     carries an xmlns attribute (holding a reference to it), which is all that
//     namespace matching needs; an element with none in its whole chain is in
//     the stream's content namespace, so it matches "", "jabber:client" and
//     "jabber:server";
//   * no unlink: remove_child() copies the element without the removed child
//     and the handle moves to the copy (cost: one deep copy of that element,
//     measured in bench/stanza; only paid when something is actually removed);
//   * add_child_ex() leaves the child's old sibling link in place, so a node
//     that was ever in a tree must never be linked again: only root handles
//     whose element is in no tree are linked by reference (the flag is shared
//     by all copies of the handle), everything else is deep-copied;
//   * a child that outlives its parent keeps dangling sibling/parent fields
//     inside libstrophe; we never follow them (children are only ever reached
//     from their live parent), and xmpp_stanza_release() does not read them.
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

const char* own_ns(xmpp_stanza_t* s) {
  return xmpp_stanza_is_tag(s) ? xmpp_stanza_get_attribute(s, "xmlns") : nullptr;
}

bool ns_matches(const char* effective, std::string_view want) {
  if (effective) return want == effective;
  return want.empty() || want == "jabber:client" || want == "jabber:server";
}

bool name_is(xmpp_stanza_t* s, std::string_view name) {
  const char* n = xmpp_stanza_is_tag(s) ? xmpp_stanza_get_name(s) : nullptr;
  return n && name == n;
}

// Does child element `c` of a parent whose namespace is `parent_ns` match?
bool child_matches(xmpp_stanza_t* c, const char* parent_ns, std::string_view name,
                   std::string_view xmlns, bool any_name) {
  if (!xmpp_stanza_is_tag(c)) return false;
  if (!any_name && !name_is(c, name)) return false;
  if (!xmlns.empty() || any_name) {
    const char* ns = own_ns(c);
    if (!ns_matches(ns ? ns : parent_ns, xmlns)) return false;
  }
  return true;
}

xmpp_stanza_t* find_child(xmpp_stanza_t* s, const char* s_ns, std::string_view name,
                          std::string_view xmlns, bool any_name) {
  if (!s) return nullptr;
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(s); c; c = xmpp_stanza_get_next(c)) {
    if (child_matches(c, s_ns, name, xmlns, any_name)) return c;
  }
  return nullptr;
}

// A copy of s without its children. libstrophe keeps attributes in an 8-bucket
// hash and iterates each bucket newest-first, so re-inserting in iteration
// order (as xmpp_stanza_copy does) would reverse colliding attributes;
// inserting in reverse keeps them.
xmpp_stanza_t* copy_shallow(xmpp_stanza_t* s) {
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
  }
  if (!ok) {
    xmpp_stanza_release(c);
    return nullptr;
  }
  return c;
}

xmpp_stanza_t* copy_tree(xmpp_stanza_t* s) {
  xmpp_stanza_t* c = copy_shallow(s);
  for (xmpp_stanza_t* ch = xmpp_stanza_get_children(s); c && ch; ch = xmpp_stanza_get_next(ch)) {
    xmpp_stanza_t* cc = copy_tree(ch);
    if (!cc) {
      xmpp_stanza_release(c);
      return nullptr;
    }
    xmpp_stanza_add_child_ex(c, cc, 0);
  }
  return c;
}

bool subtree_contains(xmpp_stanza_t* top, xmpp_stanza_t* target) {
  if (top == target) return true;
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(top); c; c = xmpp_stanza_get_next(c)) {
    if (subtree_contains(c, target)) return true;
  }
  return false;
}

xmpp_stanza_t* add_ref(xmpp_stanza_t* s) { return s ? xmpp_stanza_clone(s) : nullptr; }

void drop_ref(xmpp_stanza_t* s) {
  if (s) xmpp_stanza_release(s);
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
    return c;
  }();
  return ctx;
}

Stanza::Root::~Root() {
  drop_ref(node);
  drop_ref(ns_owner);
}

Stanza Stanza::make_root(xmpp_stanza_t* node, xmpp_stanza_t* ns_owner) {
  Stanza st;
  if (!node) {
    drop_ref(ns_owner);
    return st;
  }
  st.root_ = std::make_shared<Root>(node, ns_owner);
  return st;
}

Stanza Stanza::make_child(xmpp_stanza_t* node, xmpp_stanza_t* ns_owner) {
  Stanza st;
  if (!node) return st;
  st.s_ = add_ref(node);
  st.ns_owner_ = add_ref(ns_owner);
  return st;
}

Stanza Stanza::adopt(xmpp_stanza_t* s) { return make_root(s, nullptr); }

const char* Stanza::effective_ns() const {
  xmpp_stanza_t* n = node();
  if (!n) return nullptr;
  if (const char* ns = own_ns(n)) return ns;
  xmpp_stanza_t* owner = ns_owner();
  return owner ? own_ns(owner) : nullptr;
}

void Stanza::replace_node(xmpp_stanza_t* rebuilt) {
  if (root_) {
    drop_ref(root_->node);
    root_->node = rebuilt;
    root_->linked = false;
    return;
  }
  // A child handle detaches from its tree and becomes a root.
  root_ = std::make_shared<Root>(rebuilt, ns_owner_);
  ns_owner_ = nullptr;
  drop_ref(s_);
  s_ = nullptr;
}

Stanza Stanza::element(std::string_view name, std::string_view xmlns) {
  xmpp_stanza_t* s = xmpp_stanza_new(strophe_ctx());
  if (!s) return {};
  xmpp_stanza_set_name(s, std::string(name).c_str());
  if (!xmlns.empty()) xmpp_stanza_set_ns(s, std::string(xmlns).c_str());
  return make_root(s, nullptr);
}

Stanza Stanza::text(std::string_view text) {
  xmpp_stanza_t* s = xmpp_stanza_new(strophe_ctx());
  if (!s) return {};
  xmpp_stanza_set_text_with_size(s, text.data(), text.size());
  return make_root(s, nullptr);
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

Stanza::Stanza(const Stanza& o)
    : root_(o.root_), s_(add_ref(o.s_)), ns_owner_(add_ref(o.ns_owner_)) {}

Stanza::Stanza(Stanza&& o) noexcept : root_(std::move(o.root_)), s_(o.s_), ns_owner_(o.ns_owner_) {
  o.s_ = o.ns_owner_ = nullptr;
}

Stanza& Stanza::operator=(const Stanza& o) {
  if (this != &o) *this = Stanza(o);
  return *this;
}

Stanza& Stanza::operator=(Stanza&& o) noexcept {
  if (this != &o) {
    drop_ref(s_);
    drop_ref(ns_owner_);
    root_ = std::move(o.root_);
    s_ = o.s_;
    ns_owner_ = o.ns_owner_;
    o.s_ = o.ns_owner_ = nullptr;
  }
  return *this;
}

Stanza::~Stanza() {
  drop_ref(s_);
  drop_ref(ns_owner_);
}

Stanza Stanza::clone() const {
  xmpp_stanza_t* n = node();
  return n ? make_root(copy_tree(n), nullptr) : Stanza();
}

std::string Stanza::name() const {
  xmpp_stanza_t* n = node();
  const char* name = n && xmpp_stanza_is_tag(n) ? xmpp_stanza_get_name(n) : nullptr;
  return name ? name : "";
}

std::string Stanza::xmlns() const {
  xmpp_stanza_t* n = node();
  const char* ns = n ? own_ns(n) : nullptr;
  return ns ? ns : "";
}

bool Stanza::is(std::string_view name, std::string_view xmlns) const {
  xmpp_stanza_t* n = node();
  return n && name_is(n, name) && ns_matches(effective_ns(), xmlns);
}

std::optional<std::string> Stanza::attr(std::string_view key) const {
  xmpp_stanza_t* n = node();
  if (!n) return std::nullopt;
  const char* v = xmpp_stanza_get_attribute(n, std::string(key).c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

std::string Stanza::attr_or(std::string_view key, std::string_view dflt) const {
  if (xmpp_stanza_t* n = node()) {
    if (const char* v = xmpp_stanza_get_attribute(n, std::string(key).c_str())) return v;
  }
  return std::string(dflt);
}

Stanza& Stanza::set_attr(std::string_view key, std::string_view value) {
  if (xmpp_stanza_t* n = node()) {
    xmpp_stanza_set_attribute(n, std::string(key).c_str(), std::string(value).c_str());
  }
  return *this;
}

Stanza& Stanza::remove_attr(std::string_view key) {
  if (xmpp_stanza_t* n = node()) xmpp_stanza_del_attribute(n, std::string(key).c_str());
  return *this;
}

Stanza Stanza::child(std::string_view name, std::string_view xmlns) const {
  xmpp_stanza_t* n = node();
  if (!n) return {};
  return make_child(find_child(n, effective_ns(), name, xmlns, false), own_ns(n) ? n : ns_owner());
}

Stanza Stanza::child_ns(std::string_view xmlns) const {
  xmpp_stanza_t* n = node();
  if (!n) return {};
  return make_child(find_child(n, effective_ns(), {}, xmlns, true), own_ns(n) ? n : ns_owner());
}

std::vector<Stanza> Stanza::children() const {
  std::vector<Stanza> out;
  xmpp_stanza_t* n = node();
  if (!n) return out;
  xmpp_stanza_t* owner = own_ns(n) ? n : ns_owner();
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(n); c; c = xmpp_stanza_get_next(c)) {
    if (xmpp_stanza_is_tag(c)) out.push_back(make_child(c, owner));
  }
  return out;
}

Stanza& Stanza::add_child(const Stanza& c) {
  xmpp_stanza_t* p = node();
  xmpp_stanza_t* cn = c.node();
  if (!p || !cn || !xmpp_stanza_is_tag(p)) return *this;
  const bool c_free = c.root_ && !c.root_->linked;
  const bool this_top = root_ && !root_->linked;
  const bool cycle = cn == p || (!this_top && subtree_contains(cn, p));
  if (c_free && !cycle) {
    xmpp_stanza_add_child_ex(p, cn, 1);
    c.root_->linked = true;
    // It now inherits this element's namespace.
    xmpp_stanza_t* owner = add_ref(own_ns(p) ? p : ns_owner());
    drop_ref(c.root_->ns_owner);
    c.root_->ns_owner = owner;
  } else if (xmpp_stanza_t* copy = copy_tree(cn)) {
    xmpp_stanza_add_child_ex(p, copy, 0);
  }
  return *this;
}

Stanza& Stanza::add_text(std::string_view text) {
  xmpp_stanza_t* p = node();
  if (!p || text.empty() || !xmpp_stanza_is_tag(p)) return *this;
  xmpp_stanza_t* t = xmpp_stanza_new(strophe_ctx());
  if (!t) return *this;
  xmpp_stanza_set_text_with_size(t, text.data(), text.size());
  xmpp_stanza_add_child_ex(p, t, 0);
  return *this;
}

int Stanza::remove_children(std::string_view name, std::string_view xmlns,
                            const std::function<bool(const Stanza&)>& drop) {
  xmpp_stanza_t* p = node();
  if (!p || !xmpp_stanza_is_tag(p)) return 0;
  const char* p_ns = effective_ns();
  xmpp_stanza_t* owner = own_ns(p) ? p : ns_owner();
  std::vector<xmpp_stanza_t*> dropped;
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(p); c; c = xmpp_stanza_get_next(c)) {
    if (!child_matches(c, p_ns, name, xmlns, false)) continue;
    if (!drop || drop(make_child(c, owner))) dropped.push_back(c);
  }
  if (dropped.empty()) return 0;
  xmpp_stanza_t* rebuilt = copy_shallow(p);
  if (!rebuilt) return 0;
  size_t next_drop = 0;
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(p); c; c = xmpp_stanza_get_next(c)) {
    if (next_drop < dropped.size() && c == dropped[next_drop]) {
      ++next_drop;
      continue;
    }
    xmpp_stanza_t* cc = copy_tree(c);
    if (!cc) {
      xmpp_stanza_release(rebuilt);
      return 0;
    }
    xmpp_stanza_add_child_ex(rebuilt, cc, 0);
  }
  replace_node(rebuilt);
  return static_cast<int>(dropped.size());
}

bool Stanza::remove_child(std::string_view name, std::string_view xmlns) {
  bool first = true;
  return remove_children(name, xmlns, [&first](const Stanza&) {
           const bool take = first;
           first = false;
           return take;
         }) > 0;
}

std::string Stanza::text_content() const {
  std::string out;
  xmpp_stanza_t* n = node();
  if (!n) return out;
  if (const char* t = xmpp_stanza_get_text_ptr(n)) return t;  // a text node itself
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(n); c; c = xmpp_stanza_get_next(c)) {
    if (const char* t = xmpp_stanza_get_text_ptr(c)) out += t;
  }
  return out;
}

std::string Stanza::to_string() const {
  xmpp_stanza_t* n = node();
  if (!n) return {};
  char* buf = nullptr;
  size_t len = 0;
  if (xmpp_stanza_to_text(n, &buf, &len) != XMPP_EOK || !buf) return {};
  std::string out(buf, len);
  xmpp_free(xmpp_stanza_get_context(n), buf);
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
