// XmlStream tests. Every input goes through run(), which records the handler
// events as strings ("open …", the stanza's serialisation, "close",
// "error <condition>") and checks the error contract on the way: at most one
// error, nothing after it, and feed() false from then on. Parsers are fed
// whole, split in two at every byte boundary, byte by byte and in random
// pieces, and must produce identical events each time.
#include <doctest/doctest.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/xml/xml_stream.h"

namespace doctest {
template <>
struct StringMaker<std::vector<std::string>> {
  static String convert(const std::vector<std::string>& v) {
    std::string out = "{";
    for (const auto& e : v) out += "\n  [" + e + "]";
    return (out + "}").c_str();
  }
};
}  // namespace doctest

namespace s2 {
namespace {

constexpr std::string_view kHeader =
    "<stream:stream to='example.com' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
constexpr std::string_view kOpen = "open jabber:client to=example.com version=1.0";

struct Recorder : XmlStreamHandler {
  XmlStream* stream = nullptr;
  std::vector<std::string> events;
  std::vector<Stanza> stanzas;
  // Called after a stanza is recorded; may reset/stop the stream.
  std::function<void(Recorder&, const Stanza&)> hook;

  void on_stream_open(const StreamHeader& h) override {
    std::string e = "open " + h.ns;
    for (const auto& [k, v] : h.attrs) e += " " + k + "=" + v;
    events.push_back(e);
  }
  void on_stanza(Stanza s) override {
    events.push_back(s.to_string());
    stanzas.push_back(s);
    if (hook) hook(*this, s);
  }
  void on_stream_close() override { events.push_back("close"); }
  void on_xml_error(const XmlError& e) override {
    CHECK_FALSE(e.text.empty());
    events.push_back("error " + e.condition);
  }
};

struct Options {
  XmlLimits limits{};
  std::string ns = "jabber:client";
  std::function<void(Recorder&, const Stanza&)> hook;
  bool hibernate = false;  // release_idle(0) after every feed: the parser is rebuilt each time
};

// Feeds `input` cut at the given offsets (ascending) and returns the events.
std::vector<std::string> run(std::string_view input, const std::vector<size_t>& cuts,
                             const Options& opt = {}) {
  Recorder rec;
  XmlStream stream(rec, opt.limits, opt.ns);
  rec.stream = &stream;
  rec.hook = opt.hook;
  size_t prev = 0;
  bool failed = false;
  auto feed = [&](size_t from, size_t to) {
    const size_t before = rec.events.size();
    const bool ok = stream.feed(input.data() + from, to - from);
    if (failed) {
      CHECK_FALSE(ok);
      CHECK(rec.events.size() == before);  // nothing after an error
    }
    if (!ok) failed = true;
    CHECK(ok == !stream.failed());
    if (opt.hibernate) XmlStream::release_idle(std::chrono::seconds(0));
  };
  for (size_t cut : cuts) {
    feed(prev, cut);
    prev = cut;
  }
  feed(prev, input.size());
  if (failed) feed(0, input.size());  // checks that nothing more happens
  int errors = 0;
  for (const auto& e : rec.events) errors += e.rfind("error ", 0) == 0;
  CHECK(errors <= 1);
  if (errors == 1) CHECK(rec.events.back().rfind("error ", 0) == 0);
  CHECK(failed == (errors == 1));
  return rec.events;
}

std::vector<std::string> run_whole(std::string_view input, const Options& opt = {}) {
  return run(input, {}, opt);
}

std::vector<size_t> every_byte(size_t n) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < n; ++i) cuts.push_back(i);
  return cuts;
}

std::string in_stream(std::string_view body) { return std::string(kHeader) + std::string(body); }

// Checks that all ways of splitting `input` give `want`.
void check_all_splits(std::string_view input, const std::vector<std::string>& want,
                      const Options& opt = {}) {
  CHECK(run_whole(input, opt) == want);
  for (size_t i = 0; i <= input.size(); ++i) {
    INFO("split at " << i);
    CHECK(run(input, {i}, opt) == want);
  }
  CHECK(run(input, every_byte(input.size()), opt) == want);
  std::mt19937 rng(42);
  for (int round = 0; round < 50; ++round) {
    std::vector<size_t> cuts;
    for (int k = 0; k < 4; ++k) cuts.push_back(rng() % (input.size() + 1));
    std::sort(cuts.begin(), cuts.end());
    INFO("cuts " << cuts[0] << " " << cuts[1] << " " << cuts[2] << " " << cuts[3]);
    CHECK(run(input, cuts, opt) == want);
  }
}

const char kClientStream[] = R"(<?xml version='1.0'?>
<stream:stream to='example.com' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>
<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>
<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>
<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>
<enable xmlns='urn:xmpp:sm:3' resume='true'/>
<message to='romeo@example.net/orchard' type='chat' id='m1' xml:lang='en'>
  <body>Wherefore art thou? &lt;3 &amp; caf&#xe9; &#x1F600; — ünïcödé 😀<![CDATA[ <raw> & ]]></body>
  <active xmlns='http://jabber.org/protocol/chatstates'/>
  <x:x xmlns:x='jabber:x:data' type='form'><x:field var='a'><x:value>1</x:value></x:field></x:x>
  <html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p style='font-weight:bold'>hi<br/>there</p></body></html>
  <request xmlns='urn:xmpp:receipts'/>
</message>
   
<presence><show>away</show><status xml:lang='en'>Out &amp; about</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://example.com' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/><priority>5</priority></presence>
<r xmlns='urn:xmpp:sm:3'/>
<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>
</stream:stream>
)";

TEST_CASE("a client stream gives the same stanzas however it is split") {
  const std::vector<std::string> want = {
      "open jabber:client to=example.com version=1.0 xml:lang=en",
      R"(<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>)",
      R"(<auth mechanism="PLAIN" xmlns="urn:ietf:params:xml:ns:xmpp-sasl">AGp1bGlldAByMG0zMG15cjBtMzA=</auth>)",
      R"(<iq id="bind_1" type="set"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>balcony</resource></bind></iq>)",
      R"(<enable xmlns="urn:xmpp:sm:3" resume="true"/>)",
      R"(<message id="m1" to="romeo@example.net/orchard" type="chat" xml:lang="en">
  <body>Wherefore art thou? &lt;3 &amp; café 😀 — ünïcödé 😀 &lt;raw&gt; &amp; </body>
  <active xmlns="http://jabber.org/protocol/chatstates"/>
  <x xmlns="jabber:x:data" type="form"><field var="a"><value>1</value></field></x>
  <html xmlns="http://jabber.org/protocol/xhtml-im"><body xmlns="http://www.w3.org/1999/xhtml"><p style="font-weight:bold">hi<br/>there</p></body></html>
  <request xmlns="urn:xmpp:receipts"/>
</message>)",
      R"(<presence><show>away</show><status xml:lang="en">Out &amp; about</status><c hash="sha-1" xmlns="http://jabber.org/protocol/caps" node="http://example.com" ver="QgayPKawpkPSDYmwT/WM94uAlu0="/><priority>5</priority></presence>)",
      R"(<r xmlns="urn:xmpp:sm:3"/>)",
      R"(<iq id="r1" type="get"><query xmlns="jabber:iq:roster"/></iq>)",
      "close",
  };
  check_all_splits(kClientStream, want);
  SUBCASE("with the parser released whenever it rests between stanzas") {
    Options opt;
    opt.hibernate = true;
    check_all_splits(kClientStream, want, opt);
  }
}

TEST_CASE("adjacent character data becomes one text node") {
  const std::string input =
      in_stream("<message><body>a&amp;b<![CDATA[c]]>d&#x41;\ne</body></message>");
  for (const auto& cuts : {std::vector<size_t>{}, every_byte(input.size())}) {
    Recorder rec;
    XmlStream stream(rec);
    size_t prev = 0;
    for (size_t c : cuts) {
      stream.feed(input.data() + prev, c - prev);
      prev = c;
    }
    stream.feed(input.data() + prev, input.size() - prev);
    REQUIRE(rec.stanzas.size() == 1);
    Stanza body = rec.stanzas[0].child("body");
    REQUIRE(body);
    int text_nodes = 0;
    for (xmpp_stanza_t* c = xmpp_stanza_get_children(body.get()); c; c = xmpp_stanza_get_next(c)) {
      text_nodes += xmpp_stanza_is_text(c);
    }
    CHECK(text_nodes == 1);
    CHECK(body.text_content() == "a&bcdA\ne");
  }
}

TEST_CASE("a stanza is delivered as soon as its last byte arrives") {
  // A long start tag fed byte by byte: expat's reparse deferral would hold it back.
  const std::string stanza =
      "<message id='" + std::string(5000, 'x') + "'><body>hi</body></message>";
  Recorder rec;
  XmlStream stream(rec);
  stream.feed(kHeader.data(), kHeader.size());
  for (size_t i = 0; i < stanza.size(); ++i) {
    stream.feed(&stanza[i], 1);
    if (i + 1 < stanza.size()) REQUIRE(rec.events.size() == 1);
  }
  REQUIRE(rec.events.size() == 2);
  CHECK(rec.stanzas[0].attr_or("id").size() == 5000);
}

TEST_CASE("namespace normalisation") {
  struct Row {
    const char* name;
    const char* in;
    const char* out;
    const char* xmlns;  // Stanza::xmlns() of the top-level element
  };
  const Row rows[] = {
      {"plain stanza", "<message to='a'><body>x</body></message>",
       R"(<message to="a"><body>x</body></message>)", ""},
      {"redeclared default ns",
       "<message xmlns='jabber:client'><body xmlns='jabber:client'/></message>",
       "<message><body/></message>", ""},
      {"prefixed content ns", "<c:message xmlns:c='jabber:client'><c:body>x</c:body></c:message>",
       "<message><body>x</body></message>", ""},
      {"stream:features",
       "<stream:features><starttls "
       "xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
       R"(<features xmlns="http://etherx.jabber.org/streams"><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required/></starttls></features>)",
       "http://etherx.jabber.org/streams"},
      {"stream:error",
       "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
       R"(<error xmlns="http://etherx.jabber.org/streams"><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></error>)",
       "http://etherx.jabber.org/streams"},
      {"other prefix for the streams ns",
       "<s:features xmlns:s='http://etherx.jabber.org/streams'/>",
       R"(<features xmlns="http://etherx.jabber.org/streams"/>)",
       "http://etherx.jabber.org/streams"},
      {"nested namespace inherited",
       "<iq type='get'><query xmlns='jabber:iq:roster'><item "
       "jid='a'><group>g</group></item></query></iq>",
       R"(<iq type="get"><query xmlns="jabber:iq:roster"><item jid="a"><group>g</group></item></query></iq>)",
       ""},
      {"back to jabber:client inside a foreign ns",
       "<message><forwarded xmlns='urn:xmpp:forward:0'><message "
       "xmlns='jabber:client'><body>b</body></message></forwarded></message>",
       R"(<message><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client"><body>b</body></message></forwarded></message>)",
       ""},
      {"prefixed children",
       "<iq><p:pubsub xmlns:p='http://jabber.org/protocol/pubsub'><p:items "
       "node='n'/></p:pubsub></iq>",
       R"(<iq><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="n"/></pubsub></iq>)",
       ""},
      {"prefix and default mixed",
       "<iq><p:pubsub xmlns:p='urn:p' xmlns='urn:d'><p:items><item/></p:items></p:pubsub></iq>",
       R"(<iq><pubsub xmlns="urn:p"><items><item xmlns="urn:d"/></items></pubsub></iq>)", ""},
      {"alternating default ns",
       "<message><x xmlns='a'><y xmlns='b'><z xmlns='a'/></y></x></message>",
       R"(<message><x xmlns="a"><y xmlns="b"><z xmlns="a"/></y></x></message>)", ""},
      {"undeclared default ns", "<message><x xmlns=''/></message>",
       R"(<message><x xmlns=""/></message>)", ""},
      {"xml:lang kept, other namespaced attributes dropped",
       "<message xml:lang='de' xmlns:foo='urn:foo' foo:bar='1' id='i'/>",
       R"(<message id="i" xml:lang="de"/>)", ""},
      {"top-level nonza: sm enable", "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
       R"(<enable xmlns="urn:xmpp:sm:3" resume="true"/>)", "urn:xmpp:sm:3"},
      {"top-level nonza: sm r", "<r xmlns='urn:xmpp:sm:3'/>", R"(<r xmlns="urn:xmpp:sm:3"/>)",
       "urn:xmpp:sm:3"},
      {"top-level nonza: sasl auth",
       "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGE=</auth>",
       R"(<auth mechanism="PLAIN" xmlns="urn:ietf:params:xml:ns:xmpp-sasl">AGE=</auth>)",
       "urn:ietf:params:xml:ns:xmpp-sasl"},
      {"top-level stanza in the wrong content ns keeps it", "<message xmlns='jabber:server'/>",
       R"(<message xmlns="jabber:server"/>)", "jabber:server"},
      {"element in the XML namespace keeps its predeclared prefix",
       "<message><xml:x><y/></xml:x></message>", "<message><xml:x><y/></xml:x></message>", ""},
      {"entities and char refs",
       "<message><body a='&quot;&apos;&lt;'>&#60;&gt;&amp;</body></message>",
       R"(<message><body a="&quot;'&lt;">&lt;&gt;&amp;</body></message>)", ""},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    Recorder rec;
    XmlStream stream(rec);
    const std::string input = in_stream(r.in);
    CHECK(stream.feed(input.data(), input.size()));
    REQUIRE(rec.stanzas.size() == 1);
    CHECK(rec.events[1] == r.out);
    CHECK(rec.stanzas[0].xmlns() == r.xmlns);
    // The serialisation parses back to the same tree.
    CHECK(Stanza::parse(r.out).to_string() == r.out);
  }
}

TEST_CASE("streams-namespace elements are recognisable") {
  Recorder rec;
  XmlStream stream(rec);
  const std::string input = in_stream(
      "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
      "<mechanism>PLAIN</mechanism></mechanisms></stream:features><message/>");
  CHECK(stream.feed(input.data(), input.size()));
  REQUIRE(rec.stanzas.size() == 2);
  const Stanza& f = rec.stanzas[0];
  CHECK(f.is("features", "http://etherx.jabber.org/streams"));
  CHECK_FALSE(f.is("features", "jabber:client"));
  CHECK(
      f.child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl").child("mechanism").text_content() ==
      "PLAIN");
  CHECK(rec.stanzas[1].is("message", "jabber:client"));
  CHECK(rec.stanzas[1].is("message", ""));
}

TEST_CASE("stream header") {
  struct Row {
    const char* name;
    std::string input;
    std::string ns;  // expected content namespace
    std::string want;
  };
  const std::string streams = "xmlns:stream='http://etherx.jabber.org/streams'";
  const Row rows[] = {
      {"attributes",
       "<stream:stream xmlns='jabber:client' " + streams +
           " to='example.com' from='a@example.com' id='abc' version='1.0' "
           "xml:lang='en' xmlns:x='urn:x' x:y='dropped'>",
       "jabber:client",
       "open jabber:client from=a@example.com id=abc to=example.com version=1.0 xml:lang=en"},
      {"xml declaration and leading whitespace",
       "\n \r\n<?xml version='1.0' encoding='UTF-8'?>\n<stream:stream xmlns='jabber:client' " +
           streams + ">",
       "jabber:client", "open jabber:client"},
      {"lower-case utf-8 label",
       "<?xml version='1.0' encoding='utf-8'?><stream:stream xmlns='jabber:client' " + streams +
           ">",
       "jabber:client", "open jabber:client"},
      {"other prefix",
       "<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams'>",
       "jabber:client", "open jabber:client"},
      {"jabber:server expected", "<stream:stream xmlns='jabber:server' " + streams + ">",
       "jabber:server", "open jabber:server"},
      {"jabber:server offered to a client stream",
       "<stream:stream xmlns='jabber:server' " + streams + ">", "jabber:client",
       "error invalid-namespace"},
      {"no default namespace", "<stream:stream " + streams + ">", "jabber:client",
       "error invalid-namespace"},
      {"streams ns as default", "<stream xmlns='http://etherx.jabber.org/streams'>",
       "jabber:client", "error invalid-namespace"},
      {"wrong root name", "<stream:streams xmlns='jabber:client' " + streams + ">", "jabber:client",
       "error invalid-namespace"},
      {"wrong stream namespace", "<stream:stream xmlns='jabber:client' xmlns:stream='urn:bogus'>",
       "jabber:client", "error invalid-namespace"},
      {"unprefixed root in jabber:client", "<stream xmlns='jabber:client'>", "jabber:client",
       "error invalid-namespace"},
      {"a stanza as root", "<message xmlns='jabber:client'>", "jabber:client",
       "error invalid-namespace"},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    Options opt;
    opt.ns = r.ns;
    check_all_splits(r.input, {r.want}, opt);
  }
}

TEST_CASE("the reserved parse namespace is refused") {
  // Stanza::parse_all's wrapper namespace: a peer's element in it would lose its xmlns when read
  // back from the mirror (found by fuzz_xml_stream).
  for (const char* body : {"<auth xmlns='urn:s2:stanza-parse'/>",
                           "<message><x xmlns='urn:s2:stanza-parse'/></message>"}) {
    INFO(body);
    check_all_splits(in_stream(body),
                     {"open jabber:client to=example.com version=1.0", "error invalid-namespace"},
                     {});
  }
}

TEST_CASE("whitespace between stanzas is ignored, also in bulk") {
  Options opt;
  opt.limits.max_stanza_bytes = 1024;
  const std::string input = in_stream(" \n\t\r\n<presence/>" + std::string(300000, ' ') +
                                      std::string(3000, '\n') + "<message/>\n</stream:stream>");
  CHECK(run_whole(input, opt) ==
        std::vector<std::string>{std::string(kOpen), "<presence/>", "<message/>", "close"});
}

// ---- hostile input ---------------------------------------------------------

std::string nested(int depth) {
  std::string s;
  for (int i = 1; i < depth; ++i) s += "<a>";
  for (int i = 1; i < depth; ++i) s += "</a>";
  return s;
}

std::string utf16(std::string_view ascii, std::string bom, bool little_endian) {
  std::string out = std::move(bom);
  for (char c : ascii) {
    out += little_endian ? c : '\0';
    out += little_endian ? '\0' : c;
  }
  return out;
}

TEST_CASE("hostile input ends in the exact stream error") {
  const std::string billion_laughs =
      "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
      "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
      "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>" +
      std::string(kHeader) + "<message><body>&lol3;</body></message>";
  struct Row {
    const char* name;
    std::string input;
    std::string condition;
    size_t max_bytes = 256 * 1024;
  };
  const Row rows[] = {
      {"DOCTYPE", "<!DOCTYPE stream>" + std::string(kHeader), "restricted-xml"},
      {"DOCTYPE with ENTITY declaration",
       "<!DOCTYPE s [<!ENTITY e 'x'>]>" + in_stream("<m>&e;</m>"), "restricted-xml"},
      {"external entity", "<!DOCTYPE s SYSTEM 'file:///etc/passwd'>" + in_stream("<m>&x;</m>"),
       "restricted-xml"},
      {"billion laughs", billion_laughs, "restricted-xml"},
      {"undeclared entity reference", in_stream("<message><body>&nbsp;</body></message>"),
       "restricted-xml"},
      {"undeclared entity in an attribute", in_stream("<message to='&e;'/>"), "restricted-xml"},
      {"<!ENTITY inside the stream", in_stream("<!ENTITY e 'x'>"), "not-well-formed"},
      {"comment before the root", "<!-- hi -->" + std::string(kHeader), "restricted-xml"},
      {"comment between stanzas", in_stream("<message/><!-- hi -->"), "restricted-xml"},
      {"comment inside a stanza", in_stream("<message><!-- hi --></message>"), "restricted-xml"},
      {"processing instruction before the root", "<?php echo 1; ?>" + std::string(kHeader),
       "restricted-xml"},
      {"processing instruction in a stanza", in_stream("<message><?foo bar?></message>"),
       "restricted-xml"},
      {"XML declaration inside the stream", in_stream("<?xml version='1.0'?>"), "not-well-formed"},
      {"depth 65", in_stream(nested(65)), "policy-violation"},
      {"stanza over the limit",
       in_stream("<message><body>" + std::string(2000, 'x') + "</body></message>"),
       "policy-violation", 1024},
      {"huge start tag", in_stream("<message id='" + std::string(5000, 'x') + "'/>"),
       "policy-violation", 1024},
      {"huge stream header", "<stream:stream id='" + std::string(5000, 'x') + "'",
       "policy-violation", 1024},
      {"malformed tag", in_stream("<message <body/></message>"), "not-well-formed"},
      {"mismatched end tag", in_stream("<message><body></message>"), "not-well-formed"},
      {"unquoted attribute", in_stream("<message to=a/>"), "not-well-formed"},
      {"duplicate attribute", in_stream("<message to='a' to='b'/>"), "not-well-formed"},
      {"unbound prefix", in_stream("<foo:message/>"), "not-well-formed"},
      {"bare ampersand", in_stream("<message>a & b</message>"), "not-well-formed"},
      {"NUL byte", in_stream(std::string("<message>a\0b</message>", 22)), "not-well-formed"},
      {"control character reference", in_stream("<message>&#1;</message>"), "not-well-formed"},
      {"invalid UTF-8: lone continuation", in_stream("<message>\x80</message>"), "not-well-formed"},
      {"invalid UTF-8: truncated sequence", in_stream("<message>\xC3(</message>"),
       "not-well-formed"},
      {"invalid UTF-8: overlong", in_stream("<message>\xC0\xAF</message>"), "not-well-formed"},
      {"invalid UTF-8: surrogate", in_stream("<message>\xED\xA0\x80</message>"), "not-well-formed"},
      {"invalid UTF-8: 0xFF", in_stream("<message>\xFF</message>"), "not-well-formed"},
      {"invalid UTF-8 in a name", in_stream("<mess\xC3\x28ge/>"), "not-well-formed"},
      {"declared ISO-8859-1", "<?xml version='1.0' encoding='ISO-8859-1'?>" + std::string(kHeader),
       "unsupported-encoding"},
      {"declared UTF-16", "<?xml version='1.0' encoding='UTF-16'?>" + std::string(kHeader),
       "unsupported-encoding"},
      {"UTF-16BE with BOM", utf16(kHeader, "\xFE\xFF", false), "unsupported-encoding"},
      {"UTF-16LE with BOM", utf16(kHeader, "\xFF\xFE", true), "unsupported-encoding"},
      {"UTF-16BE without BOM", utf16(kHeader, "", false), "unsupported-encoding"},
      {"UTF-16LE without BOM", utf16(kHeader, "", true), "unsupported-encoding"},
      {"UTF-16LE after whitespace", "\n" + utf16(kHeader, "", true), "unsupported-encoding"},
      {"UTF-32BE with BOM", std::string("\0\0\xFE\xFF", 4) + std::string(kHeader),
       "unsupported-encoding"},
      {"UTF-8 BOM is fine, UTF-16 after it is not", "\xEF\xBB\xBF" + utf16(kHeader, "", false),
       "not-well-formed"},
      {"text between stanzas", in_stream("<message/>hello"), "bad-format"},
      {"character reference between stanzas", in_stream("&#65;"), "bad-format"},
      {"text before the root", "hello" + std::string(kHeader), "not-well-formed"},
      {"second root", in_stream("</stream:stream>") + std::string(kHeader), "not-well-formed"},
      {"end tag of nothing", in_stream("</message>"), "not-well-formed"},
  };
  for (const auto& r : rows) {
    INFO(std::string(r.name));
    Options opt;
    opt.limits.max_stanza_bytes = r.max_bytes;
    std::vector<std::string> events = run_whole(r.input, opt);
    REQUIRE_FALSE(events.empty());
    CHECK(events.back() == "error " + r.condition);
    for (size_t i = 0; i <= r.input.size(); i += (r.input.size() > 600 ? 97 : 1)) {
      INFO("split at " << i);
      CHECK(run(r.input, {i}, opt) == events);
    }
    CHECK(run(r.input, every_byte(r.input.size()), opt) == events);
  }
}

TEST_CASE("limits: the boundary itself is allowed") {
  SUBCASE("depth 64") {
    const std::string input = in_stream(nested(64) + "</stream:stream>");
    CHECK(run_whole(input) == std::vector<std::string>{std::string(kOpen),
                                                       Stanza::parse(nested(64)).to_string(),
                                                       "close"});
  }
  SUBCASE("configurable depth") {
    Options opt;
    opt.limits.max_depth = 3;
    CHECK(run_whole(in_stream("<a><b/></a>"), opt).back() == "<a><b/></a>");
    CHECK(run_whole(in_stream("<a><b><c/></b></a>"), opt).back() == "error policy-violation");
  }
  SUBCASE("stanza of exactly max_stanza_bytes") {
    for (size_t extra : {0, 1}) {
      const std::string body = "<message><body>" + std::string(1000, 'x') + "</body></message>";
      Options opt;
      opt.limits.max_stanza_bytes = body.size() - extra;
      const std::string input = in_stream(body + " <r xmlns='urn:xmpp:sm:3'/>");
      std::vector<std::string> want = {std::string(kOpen), Stanza::parse(body).to_string(),
                                       R"(<r xmlns="urn:xmpp:sm:3"/>)"};
      if (extra) want = {std::string(kOpen), "error policy-violation"};
      CHECK(run_whole(input, opt) == want);
      CHECK(run(input, every_byte(input.size()), opt) == want);
      CHECK(run(input, {kHeader.size() + 7}, opt) == want);
    }
  }
  SUBCASE("many stanzas in one feed, each under the limit") {
    Options opt;
    opt.limits.max_stanza_bytes = kHeader.size();  // the header counts too
    std::string body;
    for (int i = 0; i < 1000; ++i) body += "<message><body>hello</body></message>";
    const std::vector<std::string> events = run_whole(in_stream(body), opt);
    CHECK(events.size() == 1001);
    CHECK(events.back() == "<message><body>hello</body></message>");
  }
}

size_t heap_in_use() {
  const auto m = mallinfo2();
  return m.uordblks + m.hblkhd;  // small chunks + mmapped big ones
}

TEST_CASE("a never-ending stanza is cut at the limit and memory stays bounded") {
  constexpr size_t kLimit = 64 * 1024;
  constexpr size_t kChunk = 1000;
  struct Row {
    const char* name;
    std::string start;
    std::string filler;  // repeated to kChunk bytes
    size_t max_heap_factor;
  };
  const Row rows[] = {
      {"endless attribute value", "<message to='", "x", 3},
      {"endless text", "<message><body>", "x", 3},
      {"endless whitespace inside a stanza", "<message>", " ", 3},
      {"endless element name", "<m", "x", 3},
      {"endless stream header", "", "x", 3},
      // The worst case for the tree: one libstrophe node per 4 input bytes.
      {"endless empty children", "<message>", "<a/>", 40},
  };
  for (const auto& r : rows) {
    INFO(std::string(r.name));
    Recorder rec;
    XmlStream stream(rec, XmlLimits{kLimit, 64});
    const std::string prefix =
        r.start.empty() ? "<stream:stream id='" : std::string(kHeader) + r.start;
    const size_t before = heap_in_use();
    REQUIRE(stream.feed(prefix.data(), prefix.size()));
    std::string chunk;
    while (chunk.size() < kChunk) chunk += r.filler;
    REQUIRE(chunk.size() == kChunk);
    size_t fed = 0;
    size_t peak = 0;
    while (fed < 10 * 1024 * 1024 && stream.feed(chunk.data(), chunk.size())) {
      fed += chunk.size();
      peak = std::max(peak, heap_in_use());
    }
    CHECK(stream.failed());
    CHECK(rec.events.back() == "error policy-violation");
    // The error came as soon as the element passed the limit...
    const size_t counted = r.start.empty() ? prefix.size() : r.start.size();
    CHECK(counted + fed <= kLimit);
    CHECK(counted + fed + kChunk > kLimit);
    // ...memory grew in proportion to the limit, not to the input (glibc
    // accounting; under ASan the allocator is replaced and this is vacuous)...
    CHECK(peak < before + r.max_heap_factor * kLimit);
    // ...and the dead stream let go of it.
    CHECK(heap_in_use() < before + 16 * 1024);
    CHECK_FALSE(stream.feed(chunk.data(), chunk.size()));
  }
}

// ---- reset() and stop() --------------------------------------------------------

TEST_CASE("reset from on_stanza after <starttls/>") {
  const std::string tls = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
  const std::string header2 =
      "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
      "id='2'>";
  const std::string input = std::string(kHeader) + tls + header2 + "<iq type='get' id='1'/>";
  const size_t tls_end = kHeader.size() + tls.size();
  const std::string tls_out = R"(<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>)";
  for (bool keep : {true, false}) {
    INFO("keep_rest " << keep);
    Options opt;
    opt.hook = [keep](Recorder& rec, const Stanza& s) {
      if (s.name() == "starttls") rec.stream->reset(keep);
    };
    const std::vector<std::string> all = {std::string(kOpen), tls_out, "open jabber:client id=2",
                                          R"(<iq id="1" type="get"/>)"};
    if (keep) {
      check_all_splits(input, all, opt);
      continue;
    }
    // Only the rest of the feed() that completed <starttls/> is dropped.
    CHECK(run_whole(input, opt) == std::vector<std::string>{std::string(kOpen), tls_out});
    for (size_t i = 0; i <= input.size(); ++i) {
      INFO("split at " << i);
      std::vector<std::string> got = run(input, {i}, opt);
      if (i < tls_end || i == input.size()) {
        CHECK(got == std::vector<std::string>{std::string(kOpen), tls_out});
      } else if (i == tls_end) {
        CHECK(got == all);
      } else {
        // The new stream starts mid-way: garbage, an error or an incomplete token.
        REQUIRE(got.size() >= 2);
        CHECK(std::vector<std::string>(got.begin(), got.begin() + 2) ==
              std::vector<std::string>{std::string(kOpen), tls_out});
        if (got.size() > 2) CHECK(got == std::vector<std::string>{got[0], got[1], got[2]});
        if (got.size() > 2) CHECK(got[2].rfind("error ", 0) == 0);
      }
    }
  }
}

TEST_CASE("reset from on_stanza after SASL <success/> keeps pipelined bytes (client role)") {
  // What a server sends to us as a client: success, then (after our restart)
  // a new stream with an XML declaration, possibly after a newline.
  const std::string server_header =
      "<stream:stream from='example.com' id='s1' xmlns='jabber:client' "
      "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
  const std::string input =
      "<?xml version='1.0'?>" + server_header +
      "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN"
      "</mechanism></mechanisms></stream:features>"
      "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>\n<?xml version='1.0'?>" +
      server_header +
      "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>";
  Options opt;
  int resets = 0;
  opt.hook = [&resets](Recorder& rec, const Stanza& s) {
    if (s.is("success", "urn:ietf:params:xml:ns:xmpp-sasl")) {
      rec.stream->reset(true);
      ++resets;
    }
  };
  const std::string open = "open jabber:client from=example.com id=s1 version=1.0";
  check_all_splits(
      input,
      {open,
       R"(<features xmlns="http://etherx.jabber.org/streams"><mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><mechanism>PLAIN</mechanism></mechanisms></features>)",
       R"(<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/>)", open,
       R"(<features xmlns="http://etherx.jabber.org/streams"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></features>)"},
      opt);
  CHECK(resets > 0);
}

TEST_CASE("reset outside callbacks drops the partial stanza and starts over") {
  Recorder rec;
  XmlStream stream(rec);
  const std::string a = in_stream("<message><body>half");
  CHECK(stream.feed(a.data(), a.size()));
  stream.reset();
  const std::string b = in_stream("<presence/>");
  CHECK(stream.feed(b.data(), b.size()));
  CHECK(rec.events ==
        std::vector<std::string>{std::string(kOpen), std::string(kOpen), "<presence/>"});
}

TEST_CASE("reset does not revive a failed stream") {
  Recorder rec;
  XmlStream stream(rec);
  const std::string bad = in_stream("<a><!-- x --></a>");
  CHECK_FALSE(stream.feed(bad.data(), bad.size()));
  stream.reset();
  CHECK_FALSE(stream.feed(kHeader.data(), kHeader.size()));
  CHECK(stream.failed());
  CHECK(rec.events == std::vector<std::string>{std::string(kOpen), "error restricted-xml"});
}

TEST_CASE("reset inside on_stream_close") {
  const std::string input =
      std::string(kHeader) + "</stream:stream>" + std::string(kHeader) + "<a/>";
  struct Closer : Recorder {
    void on_stream_close() override {
      Recorder::on_stream_close();
      stream->reset(true);
    }
  } closer;
  XmlStream stream(closer);
  closer.stream = &stream;
  CHECK(stream.feed(input.data(), input.size()));
  CHECK(closer.events ==
        std::vector<std::string>{std::string(kOpen), "close", std::string(kOpen), "<a/>"});
}

TEST_CASE("stop") {
  SUBCASE("from on_stanza: nothing more, not even errors") {
    Options opt;
    opt.hook = [](Recorder& rec, const Stanza&) { rec.stream->stop(); };
    const std::string input = in_stream("<a/><b/><!-- not reported -->");
    const std::vector<std::string> want = {std::string(kOpen), "<a/>"};
    check_all_splits(input, want, opt);
  }
  SUBCASE("from outside: feed is ignored") {
    Recorder rec;
    XmlStream stream(rec);
    CHECK(stream.feed(kHeader.data(), kHeader.size()));
    stream.stop();
    CHECK(stream.feed("<a/>garbage<<<", 14));
    CHECK_FALSE(stream.failed());
    CHECK(rec.events == std::vector<std::string>{std::string(kOpen)});
  }
  SUBCASE("from on_xml_error") {
    struct StopOnError : Recorder {
      void on_xml_error(const XmlError& e) override {
        Recorder::on_xml_error(e);
        stream->stop();
      }
    } rec;
    XmlStream stream(rec);
    rec.stream = &stream;
    const std::string input = in_stream("<a>&x;</a>");
    CHECK_FALSE(stream.feed(input.data(), input.size()));
    CHECK_FALSE(stream.feed("<b/>", 4));
    CHECK(rec.events == std::vector<std::string>{std::string(kOpen), "error restricted-xml"});
  }
}

TEST_CASE("an exception thrown by the handler leaves through feed()") {
  Recorder rec;
  XmlStream stream(rec);
  rec.hook = [](Recorder&, const Stanza&) { throw std::runtime_error("boom"); };
  const std::string input = in_stream("<a/><b/>");
  CHECK_THROWS_AS(stream.feed(input.data(), input.size()), std::runtime_error);
  CHECK(rec.events.size() == 2);  // <b/> was not delivered
  CHECK(stream.feed("<c/>", 4));  // the stream is stopped
  CHECK(rec.events.size() == 2);
}

TEST_CASE("feed() from inside a handler queues the bytes after the current block") {
  Recorder rec;
  XmlStream stream(rec);
  rec.stream = &stream;
  rec.hook = [](Recorder& r, const Stanza& s) {
    if (s.name() == "a") CHECK(r.stream->feed("<b/>", 4));
  };
  const std::string input = in_stream("<a/><c/>");
  CHECK(stream.feed(input.data(), input.size()));
  CHECK(rec.events == std::vector<std::string>{std::string(kOpen), "<a/>", "<c/>", "<b/>"});
}

TEST_CASE("stanzas outlive the parser") {
  std::vector<Stanza> kept;
  {
    Recorder rec;
    XmlStream stream(rec);
    const std::string input = in_stream("<message><body>x</body></message><iq><query xmlns='q'/>");
    stream.feed(input.data(), input.size());
    kept = rec.stanzas;
  }
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].child("body").text_content() == "x");
}

}  // namespace
}  // namespace s2

namespace s2 {
namespace {

// Issue 12: idle parsers give their memory back (release_idle) and wake invisibly.
TEST_CASE("an idle stream's parser is released between stanzas and rebuilt on the next byte") {
  Recorder rec;
  XmlStream stream(rec);
  const std::string header =
      "<?xml version='1.0'?><s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/"
      "streams' xmlns:foo='urn:foo' to='example.com' version='1.0'>";
  REQUIRE(stream.feed(header.data(), header.size()));
  const std::string first = "<message id='1'><body>a</body></message>";
  REQUIRE(stream.feed(first.data(), first.size()));
  CHECK(XmlStream::release_idle(std::chrono::hours(1)) == 0);  // not idle long enough
  CHECK_FALSE(stream.dormant());
  CHECK(XmlStream::release_idle(std::chrono::seconds(0)) >= 1);
  CHECK(stream.dormant());
  CHECK(XmlStream::release_idle(std::chrono::seconds(0)) == 0);  // already released

  SUBCASE("a prefix declared on the stream root still resolves; the close tag still matches") {
    const std::string rest = "<foo:ping id='2'/>\n<message id='3'><foo:x/></message></s:stream>";
    REQUIRE(stream.feed(rest.data(), rest.size()));
    CHECK_FALSE(stream.dormant());
    REQUIRE(rec.events.size() == 5);
    CHECK(rec.events[0].rfind("open jabber:client", 0) == 0);  // once, not again at the wake
    CHECK(rec.events[2] == R"(<ping id="2" xmlns="urn:foo"/>)");
    CHECK(rec.events[3] == R"(<message id="3"><x xmlns="urn:foo"/></message>)");
    CHECK(rec.events[4] == "close");
  }
  SUBCASE("a stanza cut in two is not released in the middle") {
    const std::string half = "<message id='2'><bo";
    REQUIRE(stream.feed(half.data(), half.size()));
    CHECK(XmlStream::release_idle(std::chrono::seconds(0)) == 0);
    CHECK_FALSE(stream.dormant());
    const std::string other = "dy>b</body></message>";
    REQUIRE(stream.feed(other.data(), other.size()));
    CHECK(rec.events.back() == R"(<message id="2"><body>b</body></message>)");
    CHECK(XmlStream::release_idle(std::chrono::seconds(0)) >= 1);
  }
  SUBCASE("the limits hold after a wake") {
    const std::string big = "<message><body>" + std::string(300 * 1024, 'x') + "</body></message>";
    CHECK_FALSE(stream.feed(big.data(), big.size()));
    CHECK(rec.events.back() == "error policy-violation");
  }
  SUBCASE("bad input after a wake is still an error") {
    const std::string bad = "<message><body></message>";
    CHECK_FALSE(stream.feed(bad.data(), bad.size()));
    CHECK(rec.events.back() == "error not-well-formed");
  }
  SUBCASE("a reset after a release starts a new stream") {
    stream.reset();
    const std::string again =
        "<stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        "<presence/>";
    REQUIRE(stream.feed(again.data(), again.size()));
    REQUIRE(rec.events.size() == 4);
    CHECK(rec.events[2] == "open jabber:client version=1.0");
    CHECK(rec.events[3] == "<presence/>");
  }
  SUBCASE("stop and destruction while released") {
    stream.stop();
    CHECK(stream.feed(first.data(), first.size()));
    CHECK(rec.events.size() == 2);
  }
}

TEST_CASE("whitespace keepalives rest too; a stream before its header never does") {
  Recorder rec;
  XmlStream stream(rec);
  const std::string partial = "<stream:stream xmlns='jabber:client' ";
  REQUIRE(stream.feed(partial.data(), partial.size()));
  XmlStream::release_idle(std::chrono::seconds(0));
  CHECK_FALSE(stream.dormant());
  const std::string rest = "xmlns:stream='http://etherx.jabber.org/streams'>\n \n";
  REQUIRE(stream.feed(rest.data(), rest.size()));
  const std::string ping = "<iq type='get' id='p'/> ";
  REQUIRE(stream.feed(ping.data(), ping.size()));
  XmlStream::release_idle(std::chrono::seconds(0));
  const std::string next = "<iq type='get' id='q'/>";
  REQUIRE(stream.feed(next.data(), next.size()));
  CHECK(rec.events.back() == R"(<iq id="q" type="get"/>)");
}

}  // namespace
}  // namespace s2
