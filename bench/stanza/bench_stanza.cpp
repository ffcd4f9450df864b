// bench_stanza: what one entering message costs in stanza-tree work, the path
// every carbon and MAM result from the upstream takes (AccountHub::process_entering):
//   parse the carbon from the wire → unwrap the forwarded message → read its
//   facts → strip the upstream's stanza-id → stamp ours → serialise it for the
//   mirror → wrap a copy in a MAM <result/> and serialise that for a device.
// Each step is timed separately over --n iterations (median of 5 rounds, ns per
// stanza); no assertions, a table on stdout.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/xml/stanza.h"
#include "policies/stanza_facts.h"

using Clock = std::chrono::steady_clock;
using s2::Stanza;

namespace {

const char* kCarbon =
    "<message from='alice@localhost' to='alice@localhost/phone' type='chat'>"
    "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
    "<message xmlns='jabber:client' from='bob@localhost/desk' to='alice@localhost' type='chat' "
    "id='5f1c2a9e-7d0b-4c1e-9a7e-3b2d1c0f9e8d'>"
    "<body>Are we still on for lunch tomorrow? I can book the place near the station.</body>"
    "<origin-id xmlns='urn:xmpp:sid:0' id='5f1c2a9e-7d0b-4c1e-9a7e-3b2d1c0f9e8d'/>"
    "<request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/>"
    "<active xmlns='http://jabber.org/protocol/chatstates'/>"
    "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@localhost' id='a1b2c3d4e5f6'/>"
    "</message></forwarded></received></message>";

template <typename F>
double ns_per(size_t n, F&& f) {
  std::vector<double> rounds;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = Clock::now();
    for (size_t i = 0; i < n; ++i) f(i);
    const auto t1 = Clock::now();
    rounds.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / n);
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[2];
}

Stanza unwrap(const Stanza& carbon) {
  return carbon.child("received", "urn:xmpp:carbons:2")
      .child("forwarded", "urn:xmpp:forward:0")
      .child("message", "jabber:client");
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 20'000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
      n = std::strtoul(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: bench_stanza [--n N]\n");
      return 2;
    }
  }
  s2::strophe_ctx();
  const Stanza carbon = Stanza::parse(kCarbon);
  if (!carbon || !unwrap(carbon)) {
    std::fprintf(stderr, "bench_stanza: the sample does not parse\n");
    return 1;
  }
  size_t sink = 0;
  struct Row {
    const char* step;
    double ns;
  };
  std::vector<Row> rows;
  rows.push_back(
      {"parse carbon", ns_per(n, [&](size_t) { sink += Stanza::parse(kCarbon) ? 1 : 0; })});
  rows.push_back(
      {"unwrap forwarded message", ns_per(n, [&](size_t) { sink += unwrap(carbon) ? 1 : 0; })});
  const Stanza inner = unwrap(carbon);
  rows.push_back({"read message facts",
                  ns_per(n, [&](size_t) { sink += s2::read_message_facts(inner).type.size(); })});
  rows.push_back({"strip upstream stanza-id", ns_per(n, [&](size_t) {
                    Stanza m = inner.clone();
                    sink += s2::strip_claimed_stanza_ids(m, "alice@localhost", "localhost");
                  })});
  rows.push_back({"  of which clone", ns_per(n, [&](size_t) { sink += inner.clone() ? 1 : 0; })});
  Stanza stripped = inner.clone();
  s2::strip_claimed_stanza_ids(stripped, "alice@localhost", "localhost");
  rows.push_back({"stamp our stanza-id", ns_per(n, [&](size_t i) {
                    Stanza m = stripped.clone();
                    s2::set_stanza_id(m, "alice@localhost", std::to_string(i));
                    sink += m ? 1 : 0;
                  })});
  rows.push_back({"serialise for the mirror",
                  ns_per(n, [&](size_t) { sink += stripped.to_string().size(); })});
  rows.push_back(
      {"wrap in MAM result + serialise", ns_per(n, [&](size_t) {
         Stanza msg = Stanza::element("message");
         msg.set_attr("to", "alice@localhost/phone");
         Stanza result = Stanza::element("result", "urn:xmpp:mam:2");
         result.set_attr("queryid", "q1").set_attr("id", "0000000000001234");
         Stanza fwd = Stanza::element("forwarded", "urn:xmpp:forward:0");
         fwd.add_child(
             Stanza::element("delay", "urn:xmpp:delay").set_attr("stamp", "2026-12-04T03:00:00Z"));
         fwd.add_child(stripped);
         result.add_child(fwd);
         msg.add_child(result);
         sink += msg.to_string().size();
       })});
  double total = 0;
  std::printf("%-34s %12s\n", "step (one entering message)", "ns/stanza");
  for (const Row& r : rows) {
    std::printf("%-34s %12.0f\n", r.step, r.ns);
    if (r.step[0] != ' ') total += r.ns;
  }
  std::printf("%-34s %12.0f\n", "total", total);
  std::fprintf(stderr, "(sink %zu)\n", sink);
  return 0;
}
