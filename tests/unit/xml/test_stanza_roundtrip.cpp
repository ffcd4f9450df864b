// The stanza tree through libstrophe's public API, against a model: 10,000
// random trees (names, attributes with every character XML escapes, nested
// namespace declarations, mixed text) are rendered, parsed, serialised,
// re-parsed, cloned and edited (remove_children on the root and on a child
// handle, add_child of a subtree), and after each step the Stanza is compared
// with the model by walking it through the public Stanza API only. Under the
// ASan tree this is also the memory-safety check of every edit path.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/xml/stanza.h"

namespace s2 {
namespace {

struct Model {
  std::string name;
  std::string ns;  // declared xmlns; "" = inherited
  std::vector<std::pair<std::string, std::string>> attrs;
  std::vector<std::variant<Model, std::string>> children;
};

struct Gen {
  std::mt19937 rng;
  explicit Gen(uint32_t seed) : rng(seed) {}
  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); }
  bool chance(int percent) { return pick(100) < static_cast<size_t>(percent); }

  std::string text() {
    static const char* const kPieces[] = {"a", "B",  "7", " ", "&", "<",
                                          ">", "\"", "'", "ü", "😀", "x y"};
    std::string out;
    const size_t n = 1 + pick(6);
    for (size_t i = 0; i < n; ++i) out += kPieces[pick(std::size(kPieces))];
    if (out.find_first_not_of(' ') == std::string::npos) out += "t";  // no whitespace-only text
    return out;
  }

  Model tree(int depth) {
    static const char* const kNames[] = {"message", "body", "x", "item", "query", "s", "t"};
    static const char* const kAttrs[] = {"to", "from", "id", "type", "a", "b", "c", "xml:lang"};
    static const char* const kNs[] = {"urn:a", "urn:b:c", "jabber:client", "urn:xmpp:sid:0"};
    Model m;
    m.name = kNames[pick(std::size(kNames))];
    if (chance(30)) m.ns = kNs[pick(std::size(kNs))];
    for (const char* k : kAttrs) {
      if (chance(25)) m.attrs.emplace_back(k, chance(10) ? std::string() : text());
    }
    const size_t n = depth > 0 ? pick(5) : 0;
    for (size_t i = 0; i < n; ++i) {
      if (chance(25)) {
        m.children.emplace_back(text());
      } else {
        m.children.emplace_back(tree(depth - 1));
      }
    }
    return m;
  }
};

std::string render(const Model& m) {
  std::string out = "<" + m.name;
  if (!m.ns.empty()) out += " xmlns='" + xml_escape(m.ns) + "'";
  for (const auto& [k, v] : m.attrs) out += " " + k + "='" + xml_escape(v) + "'";
  if (m.children.empty()) return out + "/>";
  out += ">";
  for (const auto& c : m.children) {
    if (const auto* t = std::get_if<std::string>(&c)) {
      out += xml_escape(*t);
    } else {
      out += render(std::get<Model>(c));
    }
  }
  return out + "</" + m.name + ">";
}

// `s` equals `m`, whose namespace inherited from above is `inherited` ("" = the stream's).
bool same(const Stanza& s, const Model& m, const std::string& inherited, std::string& why) {
  const std::string eff = m.ns.empty() ? inherited : m.ns;
  if (s.name() != m.name) return why = "name " + s.name() + " != " + m.name, false;
  if (!s.is(m.name, eff)) return why = "namespace of " + m.name + " is not '" + eff + "'", false;
  const std::string want_xmlns = m.ns.empty() || m.ns == inherited ? "" : m.ns;
  if (s.xmlns() != want_xmlns && !(inherited.empty() && s.xmlns() == m.ns)) {
    return why = "xmlns '" + s.xmlns() + "' on " + m.name, false;
  }
  const int have = xmpp_stanza_get_attribute_count(s.get()) - (s.attr("xmlns") ? 1 : 0);
  if (have != static_cast<int>(m.attrs.size())) return why = "attribute count on " + m.name, false;
  for (const auto& [k, v] : m.attrs) {
    if (s.attr(k) != v) return why = "attribute " + k + " on " + m.name, false;
  }
  std::string text;
  std::vector<const Model*> elements;
  for (const auto& c : m.children) {
    if (const auto* t = std::get_if<std::string>(&c)) {
      text += *t;
    } else {
      elements.push_back(&std::get<Model>(c));
    }
  }
  if (s.text_content() != text) return why = "text of " + m.name, false;
  const auto kids = s.children();
  if (kids.size() != elements.size()) return why = "child count of " + m.name, false;
  for (size_t i = 0; i < kids.size(); ++i) {
    if (!same(kids[i], *elements[i], eff, why)) return false;
  }
  return true;
}

// Model of remove_children(name, ""): every element child with that name goes.
int model_remove(Model& m, const std::string& name) {
  int n = 0;
  std::vector<std::variant<Model, std::string>> kept;
  for (auto& c : m.children) {
    const auto* e = std::get_if<Model>(&c);
    if (e && e->name == name) {
      ++n;
    } else {
      kept.push_back(std::move(c));
    }
  }
  // Text on both sides of a removed element becomes adjacent; the model keeps it as two
  // strings, which compare the same (text_content concatenates).
  m.children = std::move(kept);
  return n;
}

const Model* first_element(const Model& m) {
  for (const auto& c : m.children) {
    if (const auto* e = std::get_if<Model>(&c)) return e;
  }
  return nullptr;
}

TEST_CASE("10,000 random stanzas round-trip and edit through the public API") {
  Gen gen(20261204);
  int checked = 0;
  for (int i = 0; i < 10'000; ++i) {
    const uint32_t seed = static_cast<uint32_t>(gen.rng());
    Gen g(seed);
    Model m = g.tree(4);
    m.ns.clear();  // a top-level stanza in the stream's namespace
    const std::string xml = render(m);
    INFO("seed " << seed << ": " << xml);
    std::string why;

    Stanza s = Stanza::parse(xml);
    REQUIRE(s);
    REQUIRE_MESSAGE(same(s, m, "", why), why);
    const std::string once = s.to_string();
    Stanza again = Stanza::parse(once);
    REQUIRE(again);
    REQUIRE_MESSAGE(same(again, m, "", why), why);
    REQUIRE(again.to_string() == once);

    Stanza copy = s.clone();
    REQUIRE_MESSAGE(same(copy, m, "", why), why);
    copy.set_attr("id", "changed");
    REQUIRE(s.to_string() == once);

    // Edit a child handle: it detaches, the tree stays as it was.
    if (const Model* first = first_element(m); first && first_element(*first)) {
      Model edited = *first;
      const std::string victim = first_element(edited)->name;
      const int want = model_remove(edited, victim);
      Stanza child = s.children().front();
      REQUIRE(child.remove_children(victim, "") == want);
      const std::string inherited;  // the root carries no xmlns
      REQUIRE_MESSAGE(same(child, edited, inherited, why), why);
      REQUIRE(s.to_string() == once);
    }

    // Edit the root: every alias follows.
    Stanza alias = s;
    if (const Model* first = first_element(m)) {
      const std::string victim = first->name;
      const int want = model_remove(m, victim);
      REQUIRE(s.remove_children(victim, "") == want);
      REQUIRE_MESSAGE(same(alias, m, "", why), why);
    }

    // Add a subtree of one tree to another: a copy; the source is unchanged.
    if (const Model* first = first_element(m)) {
      Stanza sub = s.children().front();
      const std::string sub_before = sub.to_string();
      Stanza target = Stanza::parse(xml);
      target.add_child(sub);
      REQUIRE(target.children().back().to_string() == sub_before);
      REQUIRE(sub.to_string() == sub_before);
      REQUIRE_MESSAGE(same(target.children().back(), *first, "", why), why);
      REQUIRE(Stanza::parse(target.to_string()).to_string() == target.to_string());
    }
    ++checked;
  }
  CHECK(checked == 10'000);
}

}  // namespace
}  // namespace s2
