// XmlStream: expat (namespace mode) → libstrophe stanzas, for hostile input.
//
// Expat runs with the namespace separator '\x1F' (not allowed in XML, so a
// qualified name splits unambiguously) and forced UTF-8. Elements below the
// stream root are built straight into xmpp_stanza_t nodes; adjacent character
// data is gathered in one reusable buffer and becomes a single text node.
// Namespaces are normalised while building: a node gets "xmlns" only where its
// namespace differs from its parent's (for a depth-1 element: the stream's
// content namespace), so prefixes disappear and <stream:features> comes out as
// <features xmlns="http://etherx.jabber.org/streams">. The one prefix kept is
// the predeclared "xml" (xml:lang, and the odd <xml:x/> element).
//
// Bounds. Expat buffers an unfinished token (a start tag that never ends) in
// full, so the size limit cannot be checked in handlers alone. feed() hands
// expat at most max_stanza_bytes + 1 bytes past `mark` (the start of the
// current depth-1 element, or the end of the last complete thing at depth ≤ 1)
// per XML_Parse call and fails as soon as more than the limit has been fed
// past the mark; complete elements are checked exactly in the end handler.
// The prolog and stream header are bounded the same way (mark starts at 0).
// Memory therefore stays proportional to the limit, whatever the peer sends.
//
// Control flow. Handlers never free the parser: errors, stop() and reset()
// only set flags and call XML_StopParser; every handler first checks those
// flags (expat may still deliver a few events after a stop). A reset requested
// inside a callback is carried out by feed() after XML_Parse returns: the byte
// offset just after the current event tells how much of the chunk belonged to
// the old stream, and the rest is re-fed to the fresh parser or dropped.
// Bytes fed from inside a handler are queued and parsed after the current
// block. Exceptions thrown by the handler are caught at the C boundary,
// the stream stops, and feed() rethrows them.
#include "common/xml/xml_stream.h"

#include <expat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string_view>
#include <utility>
#include <vector>

#include "common/util/thread_list.h"

namespace s2 {
namespace {

constexpr XML_Char kSep = '\x1F';
constexpr std::string_view kStreamsNs = "http://etherx.jabber.org/streams";
constexpr std::string_view kXmlNs = "http://www.w3.org/XML/1998/namespace";
constexpr uint64_t kMaxChunk = uint64_t{1} << 30;  // XML_Parse takes an int length

struct QName {
  std::string_view ns;  // empty: no namespace
  const char* local;    // NUL-terminated, points into expat's string
};

QName split(const XML_Char* qname) {
  if (const char* sep = std::strchr(qname, kSep)) {
    return {std::string_view(qname, static_cast<size_t>(sep - qname)), sep + 1};
  }
  return {{}, qname};
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool is_utf8_label(const char* enc) {
  static constexpr char kLabel[] = "utf-8";
  for (size_t i = 0; i < sizeof kLabel; ++i) {
    char c = enc[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kLabel[i]) return false;
  }
  return true;
}

const char* condition_for(XML_Error code) {
  switch (code) {
    case XML_ERROR_UNDEFINED_ENTITY:
    case XML_ERROR_RECURSIVE_ENTITY_REF:
    case XML_ERROR_BINARY_ENTITY_REF:
    case XML_ERROR_ASYNC_ENTITY:
    case XML_ERROR_PARAM_ENTITY_REF:
    case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
    case XML_ERROR_ENTITY_DECLARED_IN_PE:
    case XML_ERROR_NOT_STANDALONE:
    case XML_ERROR_AMPLIFICATION_LIMIT_BREACH:
      return "restricted-xml";
    case XML_ERROR_UNKNOWN_ENCODING:
    case XML_ERROR_INCORRECT_ENCODING:
      return "unsupported-encoding";
    case XML_ERROR_NO_MEMORY:
      return "resource-constraint";
    default:
      return "not-well-formed";
  }
}

}  // namespace

struct XmlStream::Impl : ThreadListed<XmlStream::Impl> {  // release_idle() walks them
  XmlStreamHandler& handler;
  const XmlLimits limits;
  const std::string expected_ns;
  XML_Parser parser = nullptr;

  // Per-stream state, cleared by restart(). Offsets count bytes given to this parser.
  int depth = 0;              // open elements; the stream root is depth 1
  int head = 0;               // leading bytes of the stream vetted by vet_head()
  uint64_t fed = 0;           // bytes handed to expat
  uint64_t mark = 0;          // bytes after this count against max_stanza_bytes
  uint64_t stanza_start = 0;  // offset of the current depth-1 start tag
  uint64_t event_end = 0;     // offset just after the event being reported
  std::string root_default_ns;
  std::vector<xmpp_stanza_t*> open;  // open[0]: the depth-1 element being built (owned)
  std::vector<std::string> ns;       // ns[i]: namespace of open[i-1]; ns[0]: content ns
  std::string text;                  // character data not yet added to open.back()
  std::string key;                   // scratch: "xml:" + local attribute name
  std::string queued;                // bytes fed from inside a handler

  // Hibernation (release_idle): the raw stream start tag, to wake a fresh parser with the same
  // namespace context and root name; `resting` while every byte fed has been parsed into
  // complete depth-1 elements (expat holds nothing), `dormant` while the parser is freed.
  std::string root_tag;
  bool resting = false;
  bool dormant = false;
  bool waking = false;
  std::chrono::steady_clock::time_point rest_since;

  bool in_parse = false;
  bool in_feed = false;
  bool failed = false;
  bool stopped = false;
  bool restart_pending = false;
  bool keep_rest = true;
  std::exception_ptr exception;

  Impl(XmlStreamHandler& h, XmlLimits l, std::string expected)
      : handler(h), limits(l), expected_ns(std::move(expected)) {
    ns.resize(4);
    ns[0] = expected_ns;
    restart();
  }

  ~Impl() { shed(); }

  bool halted() const { return failed || stopped || restart_pending; }

  uint64_t event_start() const { return static_cast<uint64_t>(XML_GetCurrentByteIndex(parser)); }
  uint64_t event_stop() const {
    return event_start() + static_cast<uint64_t>(XML_GetCurrentByteCount(parser));
  }

  void discard_tree() {
    if (!open.empty()) Stanza::adopt(open.front());  // releases the partial element
    open.clear();
    text.clear();
  }

  // Frees what a dead stream no longer needs.
  void shed() {
    discard_tree();
    std::string().swap(text);
    if (parser) XML_ParserFree(parser);
    parser = nullptr;
    resting = dormant = false;
  }

  // Frees expat's state once the stream has rested `min_rest` between stanzas; wake()
  // rebuilds it before the next byte.
  bool hibernate(std::chrono::steady_clock::time_point now,
                 std::chrono::steady_clock::duration min_rest) {
    if (!resting || dormant || in_feed || !parser || now - rest_since < min_rest) return false;
    XML_ParserFree(parser);
    parser = nullptr;
    std::string().swap(text);
    std::string().swap(queued);
    dormant = true;
    return true;
  }

  // A fresh parser, fed the stream's own start tag again: the same root name (for the closing
  // tag) and namespace declarations, at depth 1, without telling the handler a second time.
  // Offsets then count from the end of that tag.
  void wake() {
    dormant = resting = false;
    parser = XML_ParserCreateNS("UTF-8", kSep);
    if (!parser) {
      fail("resource-constraint", "cannot create XML parser");
      return;
    }
    configure_parser();
    depth = 0;  // the tag below opens the stream again
    waking = true;
    in_parse = true;
    const XML_Status status =
        XML_Parse(parser, root_tag.data(), static_cast<int>(root_tag.size()), XML_FALSE);
    in_parse = false;
    waking = false;
    if (status != XML_STATUS_OK || depth != 1) {
      fail("internal-server-error", "cannot resume the XML stream");
      return;
    }
    fed = mark = event_end = root_tag.size();
    stanza_start = 0;
  }

  void restart() {
    discard_tree();
    depth = 0;
    head = 0;
    fed = mark = stanza_start = event_end = 0;
    root_default_ns.clear();
    root_tag.clear();
    resting = dormant = false;
    restart_pending = false;
    if (!parser || XML_ParserReset(parser, "UTF-8") != XML_TRUE) {
      if (parser) XML_ParserFree(parser);
      parser = XML_ParserCreateNS("UTF-8", kSep);
    }
    if (!parser) {
      fail("resource-constraint", "cannot create XML parser");
      return;
    }
    configure_parser();
  }

  void configure_parser() {
    XML_SetUserData(parser, this);
    XML_SetElementHandler(parser, &Impl::on_start, &Impl::on_end);
    XML_SetCharacterDataHandler(parser, &Impl::on_chars);
    XML_SetStartNamespaceDeclHandler(parser, &Impl::on_ns_decl);
    XML_SetXmlDeclHandler(parser, &Impl::on_xml_decl);
    XML_SetCommentHandler(parser, &Impl::on_comment);
    XML_SetProcessingInstructionHandler(parser, &Impl::on_pi);
    XML_SetStartDoctypeDeclHandler(parser, &Impl::on_doctype);
    XML_SetEntityDeclHandler(parser, &Impl::on_entity_decl);
    XML_SetParamEntityParsing(parser, XML_PARAM_ENTITY_PARSING_NEVER);
#ifdef S2_HAVE_XML_REPARSE_DEFERRAL
    // Deferral would hold back a complete stanza until more bytes arrive.
    XML_SetReparseDeferralEnabled(parser, XML_FALSE);
#endif
  }

  void fail(const char* condition, std::string text_) {
    if (failed || stopped) return;
    failed = true;
    if (in_parse) XML_StopParser(parser, XML_FALSE);
    handler.on_xml_error(XmlError{condition, std::move(text_)});
  }

  void oom() { fail("resource-constraint", "out of memory building a stanza"); }

  // ---- driving -------------------------------------------------------------

  bool feed(const char* data, size_t len) {
    if (failed) return false;
    if (stopped) return true;
    if (in_feed) {
      // Called from a handler: parse after what is being parsed now.
      queued.append(data, len);
      return true;
    }
    if (len == 0) return true;
    if (dormant) {
      wake();
      if (failed) return false;
    }
    if (!parser) return true;
    resting = false;
    in_feed = true;
    parse_block(data, len);
    while (!queued.empty() && !failed && !stopped) {
      std::string block;
      block.swap(queued);
      parse_block(block.data(), block.size());
    }
    queued.clear();
    in_feed = false;
    if (failed || stopped) {
      shed();
      return !failed;
    }
    // Every byte fed is parsed and belongs to a complete element (or whitespace) at depth 1.
    resting = parser && depth == 1 && open.empty() && text.empty() && mark == fed &&
              !restart_pending && !root_tag.empty();
    if (resting) rest_since = std::chrono::steady_clock::now();
    return true;
  }

  void parse_block(const char* data, size_t len) {
    size_t pos = 0;
    while (pos < len && !failed && !stopped) {
      if (head < 2 && !vet_head(data, len, pos)) break;
      uint64_t room = limits.max_stanza_bytes - (fed - mark);  // fed - mark <= max
      if (room < kMaxChunk) ++room;  // one byte past the limit reveals the overflow
      const size_t n = static_cast<size_t>(std::min<uint64_t>({len - pos, room, kMaxChunk}));
      const uint64_t base = fed;
      fed += n;
      in_parse = true;
      const XML_Status status = XML_Parse(parser, data + pos, static_cast<int>(n), XML_FALSE);
      in_parse = false;
      if (exception) {
        in_feed = false;
        queued.clear();
        std::rethrow_exception(std::exchange(exception, nullptr));
      }
      if (failed || stopped) break;
      if (restart_pending) {
        const uint64_t used = event_end > base ? std::min<uint64_t>(event_end - base, n) : 0;
        const bool keep = keep_rest;
        restart();
        if (!keep) break;
        pos += static_cast<size_t>(used);
        continue;
      }
      if (status == XML_STATUS_ERROR) {
        const XML_Error code = XML_GetErrorCode(parser);
        fail(condition_for(code), std::string(XML_ErrorString(code)) + " at line " +
                                      std::to_string(XML_GetCurrentLineNumber(parser)) +
                                      ", column " +
                                      std::to_string(XML_GetCurrentColumnNumber(parser)));
        break;
      }
      pos += n;
      if (fed - mark > limits.max_stanza_bytes) {
        fail("policy-violation",
             "stanza larger than " + std::to_string(limits.max_stanza_bytes) + " bytes");
        break;
      }
    }
  }

  // Looks at the first two bytes of a stream before expat does. Expat's
  // encoding autodetection overrides the "UTF-8" we force whenever they are
  // a UTF-16 byte order mark or contain a NUL, and would then happily parse
  // UTF-16; none of these bytes can start a UTF-8 document. Whitespace before
  // the stream is skipped (a peer may write a newline after </success>, which
  // the XML grammar would reject before an XML declaration).
  bool vet_head(const char* data, size_t len, size_t& pos) {
    if (head == 0) {
      while (pos < len && is_space(data[pos])) ++pos;
    }
    for (size_t k = pos; k < len && head < 2; ++k, ++head) {
      const auto c = static_cast<unsigned char>(data[k]);
      if (c == 0x00 || c == 0xFE || c == 0xFF) {
        fail("unsupported-encoding", "only UTF-8 is allowed");
        return false;
      }
    }
    return pos < len;
  }

  void reset(bool keep) {
    if (failed || stopped) return;
    if (in_parse) {
      keep_rest = keep;
      if (!restart_pending) {
        restart_pending = true;
        XML_StopParser(parser, XML_FALSE);
      }
      return;
    }
    restart();
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    if (in_parse) {
      XML_StopParser(parser, XML_FALSE);
    } else if (!in_feed) {
      shed();
    }
  }

  // ---- element events ------------------------------------------------------

  void start_element(const XML_Char* qname, const XML_Char** atts) {
    if (depth >= limits.max_depth) {
      fail("policy-violation", "XML nesting deeper than " + std::to_string(limits.max_depth));
      return;
    }
    ++depth;
    if (depth == 1) {
      open_stream(qname, atts);
      return;
    }
    const size_t level = static_cast<size_t>(depth - 1);  // 1: a top-level stanza
    // Stanza::parse_all's wrapper namespace is ours: an element a peer puts in it would come back
    // from the mirror without its xmlns (the wrapper's content namespace), i.e. as another stanza.
    if (expected_ns != kInternalParseNs && split(qname).ns == kInternalParseNs) {
      fail("invalid-namespace", "namespace " + std::string(kInternalParseNs) + " is reserved");
      return;
    }
    xmpp_stanza_t* el = xmpp_stanza_new(strophe_ctx());
    if (!el) return oom();
    if (level == 1) {
      stanza_start = mark = event_start();
    } else if (!flush_text()) {
      xmpp_stanza_release(el);
      return;
    }
    if (level == 1) {
      open.push_back(el);  // owned from here on
    } else {
      xmpp_stanza_add_child_ex(open.back(), el, 0);
      open.push_back(el);
    }
    const QName name = split(qname);
    if (ns.size() <= level) ns.resize(level + 1);
    if (name.ns == kXmlNs) {
      // <xml:x/>: the XML namespace cannot be a default namespace, so keep the
      // (predeclared) prefix in the name; children inherit the parent's namespace.
      key.assign("xml:").append(name.local);
      if (xmpp_stanza_set_name(el, key.c_str()) != XMPP_EOK) return oom();
      ns[level] = ns[level - 1];
    } else {
      if (xmpp_stanza_set_name(el, name.local) != XMPP_EOK) return oom();
      ns[level].assign(name.ns);
    }
    if (ns[level] != ns[level - 1] &&
        xmpp_stanza_set_attribute(el, "xmlns", ns[level].c_str()) != XMPP_EOK) {
      return oom();
    }
    // In reverse: libstrophe's attribute hash iterates each bucket newest-first,
    // so this serialises colliding attributes in document order and makes
    // parse → serialise → parse → serialise byte-stable.
    size_t n = 0;
    while (atts[n]) n += 2;
    while (n > 0) {
      n -= 2;
      const char* k = attribute_key(atts[n]);
      if (k && xmpp_stanza_set_attribute(el, k, atts[n + 1]) != XMPP_EOK) return oom();
    }
  }

  // Unprefixed attributes keep their name, xml:* keeps the prefix, others are dropped.
  const char* attribute_key(const XML_Char* qname) {
    const QName a = split(qname);
    if (a.ns.empty()) return a.local;
    if (a.ns != kXmlNs) return nullptr;
    key.assign("xml:").append(a.local);
    return key.c_str();
  }

  void open_stream(const XML_Char* qname, const XML_Char** atts) {
    if (waking) {  // the same header again (wake()): not news to the handler
      mark = event_end = event_stop();
      return;
    }
    const QName name = split(qname);
    if (name.ns != kStreamsNs || std::strcmp(name.local, "stream") != 0) {
      fail("invalid-namespace", "root element is not <stream> in " + std::string(kStreamsNs));
      return;
    }
    if (root_default_ns != expected_ns) {
      fail("invalid-namespace", "stream default namespace is not '" + expected_ns + "'");
      return;
    }
    StreamHeader header;
    header.ns = root_default_ns;
    for (const XML_Char** a = atts; *a; a += 2) {
      if (const char* k = attribute_key(a[0])) header.attrs[k] = a[1];
    }
    mark = event_end = event_stop();
    capture_root_tag();
    handler.on_stream_open(header);
  }

  // The start tag's bytes as the peer sent them (expat's context buffer; absent when expat
  // was built without XML_CONTEXT_BYTES, and then the stream simply never hibernates).
  void capture_root_tag() {
    int offset = 0, size = 0;
    const char* ctx = XML_GetInputContext(parser, &offset, &size);
    const int count = XML_GetCurrentByteCount(parser);
    root_tag.clear();
    if (ctx && offset >= 0 && count > 0 && offset + count <= size)
      root_tag.assign(ctx + offset, static_cast<size_t>(count));
  }

  void end_element() {
    if (depth == 1) {
      depth = 0;
      mark = event_end = event_stop();
      handler.on_stream_close();
      return;
    }
    if (!flush_text()) return;
    --depth;
    if (depth > 1) {
      open.pop_back();
      return;
    }
    const uint64_t end = event_stop();
    if (end - stanza_start > limits.max_stanza_bytes) {
      fail("policy-violation",
           "stanza larger than " + std::to_string(limits.max_stanza_bytes) + " bytes");
      return;
    }
    Stanza stanza = Stanza::adopt(open.front());
    open.clear();
    mark = event_end = end;
    handler.on_stanza(std::move(stanza));
  }

  bool flush_text() {
    if (text.empty()) return true;
    xmpp_stanza_t* t = xmpp_stanza_new(strophe_ctx());
    if (!t || xmpp_stanza_set_text_with_size(t, text.data(), text.size()) != XMPP_EOK) {
      if (t) xmpp_stanza_release(t);
      oom();
      return false;
    }
    xmpp_stanza_add_child_ex(open.back(), t, 0);
    if (text.capacity() > 64 * 1024) {
      std::string().swap(text);  // do not pin a big buffer per idle connection
    } else {
      text.clear();
    }
    return true;
  }

  void characters(const XML_Char* s, int len) {
    if (depth >= 2) {
      text.append(s, static_cast<size_t>(len));
    } else if (depth == 1) {
      if (!std::all_of(s, s + len, is_space)) {
        fail("bad-format", "character data between stanzas");
        return;
      }
      mark = event_stop();  // whitespace keepalive
    }
  }

  // ---- expat trampolines ---------------------------------------------------

  template <typename F>
  static void guarded(void* ud, F&& f) {
    auto* self = static_cast<Impl*>(ud);
    if (self->halted()) return;
    try {
      f(self);
    } catch (...) {
      self->exception = std::current_exception();
      self->stopped = true;
      XML_StopParser(self->parser, XML_FALSE);
    }
  }

  static void XMLCALL on_start(void* ud, const XML_Char* name, const XML_Char** atts) {
    guarded(ud, [&](Impl* s) { s->start_element(name, atts); });
  }
  static void XMLCALL on_end(void* ud, const XML_Char*) {
    guarded(ud, [&](Impl* s) { s->end_element(); });
  }
  static void XMLCALL on_chars(void* ud, const XML_Char* text, int len) {
    guarded(ud, [&](Impl* s) { s->characters(text, len); });
  }
  static void XMLCALL on_ns_decl(void* ud, const XML_Char* prefix, const XML_Char* uri) {
    guarded(ud, [&](Impl* s) {
      if (s->depth == 0 && !prefix) s->root_default_ns = uri ? uri : "";
    });
  }
  static void XMLCALL on_xml_decl(void* ud, const XML_Char*, const XML_Char* encoding, int) {
    guarded(ud, [&](Impl* s) {
      if (encoding && !is_utf8_label(encoding)) {
        s->fail("unsupported-encoding", "only UTF-8 is allowed");
      }
    });
  }
  static void XMLCALL on_comment(void* ud, const XML_Char*) {
    guarded(ud, [](Impl* s) { s->fail("restricted-xml", "XML comment"); });
  }
  static void XMLCALL on_pi(void* ud, const XML_Char*, const XML_Char*) {
    guarded(ud, [](Impl* s) { s->fail("restricted-xml", "XML processing instruction"); });
  }
  static void XMLCALL on_doctype(void* ud, const XML_Char*, const XML_Char*, const XML_Char*, int) {
    guarded(ud, [](Impl* s) { s->fail("restricted-xml", "DTD"); });
  }
  static void XMLCALL on_entity_decl(void* ud, const XML_Char*, int, const XML_Char*, int,
                                     const XML_Char*, const XML_Char*, const XML_Char*,
                                     const XML_Char*) {
    guarded(ud, [](Impl* s) { s->fail("restricted-xml", "entity declaration"); });
  }
};

XmlStream::XmlStream(XmlStreamHandler& handler, XmlLimits limits, std::string expected_ns)
    : impl_(std::make_unique<Impl>(handler, limits, std::move(expected_ns))) {}

XmlStream::~XmlStream() = default;

bool XmlStream::feed(const char* data, size_t len) { return impl_->feed(data, len); }

void XmlStream::reset(bool keep_rest) { impl_->reset(keep_rest); }

void XmlStream::stop() { impl_->stop(); }

bool XmlStream::failed() const { return impl_->failed; }

bool XmlStream::dormant() const { return impl_->dormant; }

size_t XmlStream::release_idle(std::chrono::steady_clock::duration min_rest) {
  const auto now = std::chrono::steady_clock::now();
  size_t released = 0;
  Impl::for_each([&](Impl& s) { released += s.hibernate(now, min_rest) ? 1 : 0; });
  return released;
}

}  // namespace s2
