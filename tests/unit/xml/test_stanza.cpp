// Stanza wrapper tests: builders, attributes, namespace-aware lookup, tree
// edits (including the libstrophe pitfalls the wrapper guards against:
// children outliving parents, nodes added to two trees, cycles), copies vs
// clones, serialisation round trips, parse failures and xml_escape.
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "common/xml/stanza.h"

namespace s2 {
namespace {

TEST_CASE("strophe_ctx is one context, created once even under concurrency") {
  std::vector<xmpp_ctx_t*> seen(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&seen, i] { seen[i] = strophe_ctx(); });
  }
  for (auto& t : threads) t.join();
  for (auto* c : seen) CHECK(c == strophe_ctx());
  CHECK(strophe_ctx() != nullptr);
}

TEST_CASE("builders and attributes") {
  Stanza m = Stanza::element("message");
  m.set_attr("to", "juliet@example.com").set_attr("type", "chat");
  CHECK(m.name() == "message");
  CHECK(m.xmlns().empty());
  CHECK(m.attr("to") == "juliet@example.com");
  CHECK(m.attr("from") == std::nullopt);
  CHECK(m.attr_or("from", "dflt") == "dflt");
  CHECK(m.attr_or("from").empty());
  CHECK(m.attr_or("type", "x") == "chat");
  m.set_attr("type", "normal");  // overwrite
  CHECK(m.attr("type") == "normal");
  m.remove_attr("type").remove_attr("absent");
  CHECK_FALSE(m.attr("type"));
  m.set_attr("q", "a\"b<c>&d'e");
  CHECK(m.attr("q") == "a\"b<c>&d'e");
  CHECK(m.to_string() == R"(<message q="a&quot;b&lt;c&gt;&amp;d'e" to="juliet@example.com"/>)");

  Stanza q = Stanza::element("query", "jabber:iq:roster");
  CHECK(q.xmlns() == "jabber:iq:roster");
  CHECK(q.to_string() == R"(<query xmlns="jabber:iq:roster"/>)");

  Stanza t = Stanza::text("a < b");
  CHECK(t.name().empty());
  CHECK(t.text_content() == "a < b");
  CHECK(t.to_string() == "a &lt; b");
}

TEST_CASE("an empty Stanza is safe to use") {
  Stanza e;
  CHECK_FALSE(e);
  CHECK(e.get() == nullptr);
  CHECK(e.name().empty());
  CHECK(e.xmlns().empty());
  CHECK_FALSE(e.is("", ""));
  CHECK_FALSE(e.attr("a"));
  CHECK(e.attr_or("a", "b") == "b");
  CHECK_FALSE(e.child("a"));
  CHECK_FALSE(e.child_ns("a"));
  CHECK(e.children().empty());
  CHECK_FALSE(e.remove_child("a"));
  CHECK(e.text_content().empty());
  CHECK(e.to_string().empty());
  CHECK_FALSE(e.clone());
  e.set_attr("a", "b").remove_attr("a").add_text("x").add_child(Stanza::element("y"));
  CHECK_FALSE(e);
  CHECK_FALSE(Stanza::adopt(nullptr));
  CHECK(e.remove_children("a", "") == 0);
  Stanza::element("x").add_child(e);  // adding nothing is a no-op
}

TEST_CASE("is() and child lookup resolve inherited namespaces") {
  const Stanza iq = Stanza::parse(
      "<iq type='result'><query xmlns='jabber:iq:roster'><item jid='a@b'><group>g</group></item>"
      "</query><x xmlns='urn:x'/><query xmlns='urn:other'/></iq>");
  REQUIRE(iq);
  const Stanza query = iq.child("query", "jabber:iq:roster");
  const Stanza item = query.child("item");
  const Stanza group = item.child("group");
  struct Row {
    const char* what;
    const Stanza& s;
    const char* name;
    const char* ns;
    bool want;
  };
  const Row rows[] = {
      {"top-level, stream ns as empty", iq, "iq", "", true},
      {"top-level, jabber:client", iq, "iq", "jabber:client", true},
      {"top-level, jabber:server", iq, "iq", "jabber:server", true},
      {"top-level, other ns", iq, "iq", "urn:x", false},
      {"top-level, wrong name", iq, "message", "", false},
      {"explicit xmlns", query, "query", "jabber:iq:roster", true},
      {"explicit xmlns vs stream ns", query, "query", "jabber:client", false},
      {"explicit xmlns vs empty", query, "query", "", false},
      {"inherited one level", item, "item", "jabber:iq:roster", true},
      {"inherited two levels", group, "group", "jabber:iq:roster", true},
      {"inherited is not the stream ns", group, "group", "jabber:client", false},
  };
  for (const auto& r : rows) {
    INFO(std::string(r.what));
    CHECK(r.s.is(r.name, r.ns) == r.want);
  }

  CHECK(iq.child("query").xmlns() == "jabber:iq:roster");  // first by name
  CHECK(iq.child("query", "urn:other").xmlns() == "urn:other");
  CHECK_FALSE(iq.child("query", "urn:none"));
  CHECK_FALSE(iq.child("item"));  // direct children only
  CHECK(query.child("item", "jabber:iq:roster").attr("jid") == "a@b");
  CHECK_FALSE(query.child("item", "jabber:client"));
  CHECK(iq.child_ns("urn:x").name() == "x");
  CHECK(iq.child_ns("urn:other").name() == "query");
  CHECK_FALSE(iq.child_ns("urn:nope"));
  CHECK(item.child_ns("jabber:iq:roster").name() == "group");

  const Stanza msg = Stanza::parse("<message><body>hi</body><x xmlns=''/></message>");
  CHECK(msg.child("body", "jabber:client").text_content() == "hi");
  CHECK(msg.child("body").is("body", "jabber:client"));
  CHECK(msg.child("x").xmlns().empty());
  CHECK(msg.child("x").attr("xmlns") == "");  // explicitly no namespace
  CHECK_FALSE(msg.child("x", "jabber:client"));
  CHECK(msg.child("x").is("x", ""));
}

TEST_CASE("children() lists elements only, in order") {
  const Stanza m = Stanza::parse("<m>t1<a/>t2<b/><c xmlns='u'/>t3</m>");
  std::vector<std::string> names;
  for (const auto& c : m.children()) names.push_back(c.name());
  CHECK(names == std::vector<std::string>{"a", "b", "c"});
  CHECK(m.text_content() == "t1t2t3");
  CHECK(Stanza::parse("<m><a>x</a></m>").text_content().empty());
}

TEST_CASE("remove_child") {
  struct Row {
    const char* in;
    const char* name;
    const char* ns;
    bool removed;
    const char* out;
  };
  const Row rows[] = {
      {"<m><a/><b/><c/></m>", "a", "", true, "<m><b/><c/></m>"},
      {"<m><a/><b/><c/></m>", "b", "", true, "<m><a/><c/></m>"},
      {"<m><a/><b/><c/></m>", "c", "", true, "<m><a/><b/></m>"},
      {"<m><a/></m>", "a", "", true, "<m/>"},
      {"<m>x<a/>y</m>", "a", "", true, "<m>xy</m>"},
      {"<m><a/><b/></m>", "z", "", false, "<m><a/><b/></m>"},
      {"<m><a xmlns='u'/><a xmlns='v'/></m>", "a", "v", true, R"(<m><a xmlns="u"/></m>)"},
      {"<m><a xmlns='u'/><a xmlns='v'/></m>", "a", "", true, R"(<m><a xmlns="v"/></m>)"},
      {"<m><a xmlns='u'/></m>", "a", "v", false, R"(<m><a xmlns="u"/></m>)"},
      {"<m><delay xmlns='urn:xmpp:delay'/><body>b</body></m>", "delay", "urn:xmpp:delay", true,
       "<m><body>b</body></m>"},
  };
  for (const auto& r : rows) {
    INFO(std::string(r.in) << " - " << r.name);
    Stanza s = Stanza::parse(r.in);
    REQUIRE(s);
    CHECK(s.remove_child(r.name, r.ns) == r.removed);
    CHECK(s.to_string() == r.out);
  }
  SUBCASE("a removed child held elsewhere stays valid") {
    Stanza m = Stanza::parse("<m><a><deep/></a><b/></m>");
    Stanza a = m.child("a");
    CHECK(m.remove_child("a"));
    CHECK(a.to_string() == "<a><deep/></a>");
    Stanza other = Stanza::element("o");
    other.add_child(a);  // it was in a tree: added as a copy
    a.set_attr("k", "v");
    CHECK(other.to_string() == "<o><a><deep/></a></o>");
    CHECK(a.to_string() == R"(<a k="v"><deep/></a>)");
    CHECK(m.to_string() == "<m><b/></m>");
  }
  SUBCASE("aliases of a root follow the rebuild; a child handle detaches") {
    Stanza m = Stanza::parse("<m><f xmlns='urn:f'><x/><y/></f><b/></m>");
    Stanza alias = m;
    CHECK(m.remove_child("b"));
    CHECK(alias.to_string() == R"(<m><f xmlns="urn:f"><x/><y/></f></m>)");
    CHECK(alias.get() == m.get());
    Stanza f = m.child("f", "urn:f");
    Stanza x = f.child("x");
    CHECK(f.remove_child("y"));
    CHECK(f.to_string() == R"(<f xmlns="urn:f"><x/></f>)");
    CHECK(m.to_string() == R"(<m><f xmlns="urn:f"><x/><y/></f></m>)");  // the tree keeps it
    CHECK(x.is("x", "urn:f"));
    // The detached element keeps the namespace it inherited, and edits show only in it.
    Stanza y = m.child("f").child("y");
    CHECK(y.remove_children("none", "") == 0);
    CHECK(y.get() == m.child("f").child("y").get());  // nothing removed: still in the tree
    f.add_child(Stanza::element("z"));
    CHECK(f.child("z").is("z", "urn:f"));
    CHECK(m.child("f").children().size() == 2);
  }
  SUBCASE("remove_children keeps the order of what stays") {
    Stanza m = Stanza::parse("<m><s by='a'/><t/><s by='b'/><u/><s by='c'/></m>");
    const int n =
        m.remove_children("s", "", [](const Stanza& c) { return c.attr_or("by") != "b"; });
    CHECK(n == 2);
    CHECK(m.to_string() == R"(<m><t/><s by="b"/><u/></m>)");
    CHECK(m.remove_children("s", "") == 1);
    CHECK(m.to_string() == "<m><t/><u/></m>");
    CHECK(m.remove_children("t", "urn:other") == 0);
  }
}

TEST_CASE("copies share, clones are independent") {
  Stanza a = Stanza::parse("<m id='1'><body>x</body></m>");
  Stanza shallow = a;
  Stanza deep = a.clone();
  CHECK(shallow.get() == a.get());
  CHECK(deep.get() != a.get());
  deep.set_attr("id", "2");
  deep.child("body").add_text("y");
  deep.add_child(Stanza::element("extra"));
  CHECK(a.to_string() == R"(<m id="1"><body>x</body></m>)");
  CHECK(deep.to_string() == R"(<m id="2"><body>xy</body><extra/></m>)");
  shallow.set_attr("id", "3");
  CHECK(a.attr("id") == "3");

  Stanza moved = std::move(shallow);
  CHECK_FALSE(shallow);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  CHECK(moved.get() == a.get());
  moved = a;  // assigning the node it already holds
  Stanza& alias = moved;
  moved = alias;
  CHECK(moved.get() == a.get());
}

TEST_CASE("building trees") {
  Stanza iq = Stanza::element("iq");
  iq.set_attr("type", "set");
  Stanza bind = Stanza::element("bind", "urn:ietf:params:xml:ns:xmpp-bind");
  iq.add_child(bind);
  // Not yet in another tree: added by reference, later edits show.
  bind.add_child(Stanza::element("resource").add_text("a<b")).add_text("");
  CHECK(
      iq.to_string() ==
      R"(<iq type="set"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>a&lt;b</resource></bind></iq>)");
  CHECK(iq.child("bind", "urn:ietf:params:xml:ns:xmpp-bind").child("resource").text_content() ==
        "a<b");
  CHECK(Stanza::parse(iq.to_string()).to_string() == iq.to_string());
}

TEST_CASE("a node in one tree is copied, not shared, when added to another") {
  Stanza original = Stanza::parse("<message><body>hi</body><thread>t</thread></message>");
  Stanza body = original.child("body");
  Stanza forward = Stanza::element("message");
  forward.add_child(body);
  forward.add_child(body);
  CHECK(forward.to_string() == "<message><body>hi</body><body>hi</body></message>");
  CHECK(original.to_string() == "<message><body>hi</body><thread>t</thread></message>");
  // A child that outlives its parent is detached and usable anywhere.
  Stanza thread = original.child("thread");
  original = Stanza();
  body = Stanza();
  CHECK(thread.to_string() == "<thread>t</thread>");
  Stanza other = Stanza::element("x");
  other.add_child(thread);
  CHECK(other.to_string() == "<x><thread>t</thread></x>");
  // Cycles are refused by copying.
  Stanza a = Stanza::element("a");
  Stanza b = Stanza::element("b");
  a.add_child(b);
  b.add_child(a);
  a.add_child(a);
  CHECK(a.to_string() == "<a><b><a><b/></a></b><a><b><a><b/></a></b></a></a>");
}

TEST_CASE("to_string round trips through parse") {
  // Attribute order is libstrophe's hash order; these rows are already in it.
  const char* rows[] = {
      "<message/>",
      R"(<message id="x1" to="romeo@example.net" type="chat"><body>Hi &amp; bye &lt;3</body></message>)",
      R"(<c h="8" a="1" i="9" b="2" j="10" c="3" k="11" d="4" to="x" e="5" f="6" from="y" g="7"/>)",
      R"(<message xml:lang="en"><body xml:lang="de">Hallo</body></message>)",
      R"(<iq type="get"><query xmlns="jabber:iq:roster"><item jid="a"/></query></iq>)",
      R"(<message><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client"><body>x</body></message></forwarded></message>)",
      R"(<features xmlns="http://etherx.jabber.org/streams"><sm xmlns="urn:xmpp:sm:3"/></features>)",
      R"(<message><x xmlns=""/></message>)",
      R"(<m a="&quot;'&lt;&gt;&amp;">üñí😀</m>)",
      "<m>  spaced\n text  </m>",
  };
  for (const char* r : rows) {
    INFO(std::string(r));
    const Stanza s = Stanza::parse(r);
    REQUIRE(s);
    CHECK(s.to_string() == r);
    CHECK(s.clone().to_string() == r);
  }
  // Any other order is normalised once and stable from then on.
  const std::string first =
      Stanza::parse("<c a='1' b='2' c='3' d='4' e='5' f='6' g='7' h='8' i='9' to='x' from='y'/>")
          .to_string();
  CHECK(Stanza::parse(first).to_string() == first);
  // Likewise for a built stanza.
  Stanza built = Stanza::element("c");
  for (const char* k : {"to", "from", "id", "type", "xml:lang", "a", "b", "c", "d"}) {
    built.set_attr(k, "v");
  }
  const std::string once = built.to_string();
  CHECK(Stanza::parse(once).to_string() == once);
  CHECK(built.clone().to_string() == once);
  // libstrophe omits the jabber:client namespace on a top-level element.
  CHECK(Stanza::parse("<message xmlns='jabber:client'/>").to_string() == "<message/>");
  CHECK(Stanza::parse("<message xmlns='jabber:client'/>").xmlns() == "jabber:client");
  CHECK(Stanza::parse("<message xmlns='jabber:server'/>").to_string() ==
        R"(<message xmlns="jabber:server"/>)");
  CHECK(Stanza::parse(" \n<a/>\n ").to_string() == "<a/>");
  CHECK(Stanza::parse("<a><![CDATA[<x>]]></a>").text_content() == "<x>");
  CHECK(Stanza::parse("<stream:features/>").is("features", "http://etherx.jabber.org/streams"));
}

TEST_CASE("parse rejects anything but one well-formed element") {
  const char* rows[] = {
      "",
      "   ",
      "text",
      "<a>",
      "<a></b>",
      "<a/><b/>",
      "<a/>trailing",
      "<a><!-- c --></a>",
      "<a>&nbsp;</a>",
      "<?xml version='1.0'?><a/>",
      "<!DOCTYPE a><a/>",
      "<p:a/>",
      "<a>\xFF</a>",
  };
  for (const char* r : rows) {
    INFO(std::string(r));
    CHECK_FALSE(Stanza::parse(r));
  }
}

TEST_CASE("xml_escape") {
  struct Row {
    const char* in;
    const char* out;
  };
  const Row rows[] = {
      {"", ""},
      {"plain", "plain"},
      {"&", "&amp;"},
      {"<>", "&lt;&gt;"},
      {"'\"", "&apos;&quot;"},
      {"a&b<c>d'e\"f", "a&amp;b&lt;c&gt;d&apos;e&quot;f"},
      {"&amp;", "&amp;amp;"},
      {"üñí😀", "üñí😀"},
  };
  for (const auto& r : rows) {
    INFO(std::string(r.in));
    CHECK(xml_escape(r.in) == r.out);
  }
  CHECK(xml_escape(std::string("a\0b", 3)) == std::string("a\0b", 3));
}

}  // namespace
}  // namespace s2
