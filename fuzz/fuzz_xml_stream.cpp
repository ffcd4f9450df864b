// libFuzzer target for XmlStream (and, through it, Stanza::parse/clone).
//
// Input layout: byte 0 selects options (bit 0: reset() every third stanza,
// bit 1: keep_rest for that reset, bit 2: stop() at the 7th stanza, bit 3:
// prepend a valid stream header so the fuzzer reaches stanza building at once,
// bit 4: larger limits, bit 5: feed() from inside on_stanza, bit 6: run the
// input a second time releasing the parser after every chunk (release_idle)
// and require the same events); byte 1 seeds the
// chunk sizes (1..64 bytes) the rest is fed in. Limits are small so the size
// and depth checks are hit often.
//
// Invariants checked beyond "no crash, no sanitizer report":
//   * at most one on_xml_error, with a non-empty condition, and feed() false
//     from then on, with no callbacks after it;
//   * every delivered stanza serialises, its serialisation parses back, and
//     serialise → parse → serialise is stable (modulo the whitespace
//     normalisation XML applies to attribute values); clone() serialises the same.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/xml/xml_stream.h"

namespace {

[[noreturn]] void fail_invariant() { __builtin_trap(); }

std::string normalise_space(std::string s) {
  for (char& c : s) {
    if (c == '\t' || c == '\n') c = ' ';
  }
  return s;
}

void check_round_trip(const s2::Stanza& s) {
  const std::string text = s.to_string();
  if (text.empty()) fail_invariant();
  if (s.clone().to_string() != text) fail_invariant();
  const s2::Stanza again = s2::Stanza::parse(text);
  if (!again) fail_invariant();
  // A CR only survives as a character reference, which libstrophe writes raw.
  if (text.find('\r') != std::string::npos) return;
  if (normalise_space(again.to_string()) != normalise_space(text)) fail_invariant();
}

struct Handler : s2::XmlStreamHandler {
  s2::XmlStream* stream = nullptr;
  uint8_t mode = 0;
  int stanzas = 0;
  int errors = 0;
  bool dead = false;   // after error or stop(): no callback may arrive
  std::string events;  // what the handler saw, to compare runs

  void on_stream_open(const s2::StreamHeader& h) override {
    if (dead) fail_invariant();
    events += "open " + h.attr("to") + "\n";
  }
  void on_stanza(s2::Stanza s) override {
    if (dead || !s) fail_invariant();
    ++stanzas;
    check_round_trip(s);
    events += s.to_string() + "\n";
    if ((mode & 32) && stanzas == 2) stream->feed("<q xmlns='urn:q'>x</q>", 22);
    if ((mode & 1) && stanzas % 3 == 0) stream->reset((mode & 2) != 0);
    if ((mode & 4) && stanzas == 7) {
      stream->stop();
      dead = true;
    }
  }
  void on_stream_close() override {
    if (dead) fail_invariant();
    events += "close\n";
  }
  void on_xml_error(const s2::XmlError& e) override {
    if (dead || e.condition.empty() || ++errors > 1) fail_invariant();
    events += "error " + e.condition + "\n";
    dead = true;
  }
};

constexpr char kHeader[] =
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "to='example.com' version='1.0'>";

std::string run(const uint8_t* data, size_t size, bool release) {
  Handler handler;
  handler.mode = data[0];
  uint32_t rng = data[1] * 2654435761u + 1;
  s2::XmlLimits limits;
  limits.max_stanza_bytes = (handler.mode & 16) ? 4096 : 512;
  limits.max_depth = (handler.mode & 16) ? 32 : 8;
  s2::XmlStream stream(handler, limits);
  handler.stream = &stream;
  if (handler.mode & 8) stream.feed(kHeader, sizeof kHeader - 1);
  const char* p = reinterpret_cast<const char*>(data) + 2;
  size_t left = size - 2;
  bool failed = false;
  while (left > 0) {
    rng = rng * 1103515245u + 12345u;
    const size_t n = std::min<size_t>(left, 1 + (rng >> 16) % 64);
    const bool ok = stream.feed(p, n);
    if (failed && ok) fail_invariant();
    if (!ok) failed = true;
    if (ok == stream.failed()) fail_invariant();
    p += n;
    left -= n;
    if (release) s2::XmlStream::release_idle(std::chrono::seconds(0));
  }
  return handler.events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string plain = run(data, size, false);
  if ((data[0] & 64) && run(data, size, true) != plain) fail_invariant();
  return 0;
}
