// Namespace-aware incremental XML stream parser (expat) producing stanzas.
//
// One parser per stream (create a fresh one, or call reset(), on each stream
// restart after STARTTLS / SASL1). The stream root element is reported with
// its attributes; each complete depth-1 element (stanza or nonza) is handed
// over as a Stanza; the closing root tag is reported. Remote input is hostile:
// every violation becomes an XmlError naming the RFC 6120 stream error
// condition, after which the parser accepts nothing more.
//
// Namespace normalisation: the stream's default namespace (jabber:client,
// jabber:server, …) is not written on top-level stanzas; a child carries
// "xmlns" only where its namespace differs from its parent's; prefixes are
// dropped (elements are re-serialised with default namespaces). Attributes
// in the XML namespace keep the "xml:" prefix (xml:lang); other namespaced
// attributes are dropped.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/xml/stanza.h"

namespace s2 {

struct XmlLimits {
  size_t max_stanza_bytes = 256 * 1024;  // bytes of one depth-1 element, markup included
  int max_depth = 64;                    // element depth, the stream root counts as 1
};

// Stream-level error: `condition` is the RFC 6120 §4.9.3 element name
// ("not-well-formed", "restricted-xml", "invalid-namespace", "policy-violation",
// "bad-format", "unsupported-encoding"), `text` a human-readable explanation.
struct XmlError {
  std::string condition;
  std::string text;
};

struct StreamHeader {
  std::string ns;  // default namespace of the stream (jabber:client expected)
  std::map<std::string, std::string> attrs;  // to, from, id, version, xml:lang
  std::string attr(const std::string& k) const {
    auto it = attrs.find(k);
    return it == attrs.end() ? std::string() : it->second;
  }
};

class XmlStreamHandler {
 public:
  virtual ~XmlStreamHandler() = default;
  virtual void on_stream_open(const StreamHeader& header) = 0;
  virtual void on_stanza(Stanza stanza) = 0;
  virtual void on_stream_close() = 0;
  virtual void on_xml_error(const XmlError& error) = 0;
};

// The content namespace of the wrapper stream Stanza::parse_all reads stored stanzas with; no
// other stream accepts an element in it (invalid-namespace).
inline constexpr std::string_view kInternalParseNs = "urn:s2:stanza-parse";

class XmlStream {
 public:
  // `expected_ns`: the required default namespace ("jabber:client").
  XmlStream(XmlStreamHandler& handler, XmlLimits limits = {},
            std::string expected_ns = "jabber:client");
  ~XmlStream();
  XmlStream(const XmlStream&) = delete;
  XmlStream& operator=(const XmlStream&) = delete;

  // Feeds bytes. Returns false once an error was reported (then stays false).
  // Handler callbacks run inside feed(). A handler must not destroy the
  // XmlStream from a callback; it may call reset() or stop().
  bool feed(const char* data, size_t len);
  // Starts a new stream (after STARTTLS or SASL1 success). Safe to call from
  // inside a callback: it takes effect right after the current element. The
  // bytes of the current feed() that follow that element are then parsed as
  // the start of the new stream when keep_rest is true, or discarded when
  // false (STARTTLS: plaintext pipelined after <starttls/> must never be
  // processed as if it came over TLS).
  void reset(bool keep_rest = true);
  // Stop delivering callbacks (e.g. after the owner decided to close).
  void stop();
  bool failed() const;

  // Memory of idle streams (issue 12): expat keeps ~9 KiB per parser (buffers, name pools)
  // that an idle connection does not need. Frees the parser of every stream on this thread
  // that has rested at least `min_rest` between stanzas (all bytes fed parsed, no element
  // open); the next feed() rebuilds it from the stream's start tag, invisibly to the
  // handler. Returns how many were released.
  static size_t release_idle(std::chrono::steady_clock::duration min_rest);
  bool dormant() const;  // released by release_idle and not fed since

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace s2
