// PushService's pure parts (push_service.h): the DeviceRecord::push blob and the coalescing of
// pushes per device into one per burst.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/push_service.h"

namespace s2 {
namespace {

using policy::DeviceState;
using policy::Persistence;
using policy::PushAction;
using policy::Urgency;

PushRegistration reg(std::string jid, std::string node, std::string form = {},
                     uint32_t errors = 0) {
  return PushRegistration{std::move(jid), std::move(node), std::move(form), errors};
}

TEST_CASE("push blob: round trip") {
  const std::vector<std::vector<PushRegistration>> rows = {
      {},
      {reg("push.example", "node-1")},
      {reg("push.example", "")},
      {reg("push.example", "n", "<x xmlns='jabber:x:data' type='submit'/>", 3)},
      {reg("a.example", "n1"), reg("b.example", "n2", "<x/>", 15)},
      {reg("bob@example/app", std::string("bin\0ary\xff", 8), std::string(5000, 'x'), 0)},
  };
  for (const auto& regs : rows) {
    const std::string blob = encode_push_registrations(regs);
    CHECK(blob.empty() == regs.empty());
    auto back = decode_push_registrations(blob);
    REQUIRE(back.has_value());
    CHECK(*back == regs);
  }
}

TEST_CASE("push blob: anything but a whole blob is refused") {
  const std::string good = encode_push_registrations(
      {reg("push.example", "node-1", "<x xmlns='jabber:x:data'/>", 2), reg("p2.example", "n")});
  // Every truncation (at every byte boundary) and every extension.
  for (size_t n = 1; n < good.size(); ++n) {
    INFO("truncated at ", n);
    CHECK_FALSE(decode_push_registrations(good.substr(0, n)).has_value());
  }
  CHECK_FALSE(decode_push_registrations(good + "x").has_value());
  struct Row {
    std::string blob;
    const char* why;
  };
  const Row rows[] = {
      {"S2P2" + good.substr(4), "unknown version"},
      {"junk", "no magic"},
      {std::string("S2P1\0\0\0\0", 8), "zero registrations is not a blob (it is \"\")"},
      {std::string("S2P1\xff\xff\xff\xff", 8), "absurd count"},
      {std::string("S2P1\0\0\0\x01\xff\xff\xff\xff", 12), "length past the end"},
      {std::string("S2P1\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24), "empty service jid"},
  };
  for (const auto& r : rows) {
    INFO(r.why);
    CHECK_FALSE(decode_push_registrations(r.blob).has_value());
  }
}

TEST_CASE("push coalescing: one publish per device per burst") {
  // One device, 2 s window; each row is one stanza in time order.
  struct Row {
    uint64_t at_ms;
    Urgency u;
    DeviceState state;
    PushAction want;
    uint32_t count;  // message-count when pushed
    const char* why;
  };
  constexpr auto Urg = Urgency::Urgent, Norm = Urgency::Normal, Sil = Urgency::Silent;
  constexpr auto Off = DeviceState::Offline, Hib = DeviceState::Hibernated,
                 Conn = DeviceState::Connected;
  // clang-format off
  const Row rows[] = {
    {    0, Urg,  Hib,  PushAction::Push,     1, "first urgent stanza: at once"},
    {  100, Urg,  Hib,  PushAction::Coalesce, 0, "burst: counted"},
    {  200, Urg,  Hib,  PushAction::Coalesce, 0, "burst: counted"},
    {  300, Sil,  Hib,  PushAction::Skip,     0, "chat state: never"},
    {  400, Norm, Hib,  PushAction::Skip,     0, "correction: never"},
    { 1999, Urg,  Off,  PushAction::Coalesce, 0, "still in the window (now offline)"},
    { 2000, Urg,  Off,  PushAction::Push,     5, "window over: reminder with the badge"},
    { 2500, Urg,  Off,  PushAction::Coalesce, 0, "new burst"},
    { 3000, Urg,  Conn, PushAction::Skip,     0, "connected: CSI delivers, count reset"},
    { 3100, Urg,  Hib,  PushAction::Push,     1, "asleep again: at once, count from 1"},
    { 3200, Sil,  Hib,  PushAction::Skip,     0, "silent in the window"},
    { 9000, Sil,  Hib,  PushAction::Skip,     0, "silent after the window"},
    { 9001, Urg,  Hib,  PushAction::Push,     2, "urgent after the window"},
  };
  // clang-format on
  PushCoalescer c;
  for (const auto& r : rows) {
    INFO(r.why, " at ", r.at_ms);
    auto step = c.on_stanza(r.u, Persistence::Persistent, r.state, true, r.at_ms, 2000);
    CHECK(step.action == r.want);
    CHECK(step.message_count == r.count);
  }
}

TEST_CASE("push coalescing: what never publishes") {
  struct Row {
    Urgency u;
    Persistence p;
    DeviceState state;
    bool registered;
    const char* why;
  };
  const Row rows[] = {
      {Urgency::Urgent, Persistence::Persistent, DeviceState::Offline, false, "not registered"},
      {Urgency::Urgent, Persistence::EphemeralAllOnline, DeviceState::Offline, true,
       "offline, ephemeral: would find nothing"},
      {Urgency::Immediate, Persistence::Persistent, DeviceState::Hibernated, true, "iq"},
      {Urgency::Silent, Persistence::Persistent, DeviceState::Hibernated, true, "marker"},
      {Urgency::Normal, Persistence::Persistent, DeviceState::Offline, true, "error"},
      {Urgency::Urgent, Persistence::Persistent, DeviceState::Connected, true, "connected"},
  };
  for (const auto& r : rows) {
    INFO(r.why);
    PushCoalescer c;
    CHECK(c.on_stanza(r.u, r.p, r.state, r.registered, 0, 2000).action == PushAction::Skip);
    // Skipped stanzas do not count into the next summary.
    CHECK(c.on_stanza(Urgency::Urgent, Persistence::Persistent, DeviceState::Offline, true, 1, 2000)
              .message_count == 1);
  }
}

TEST_CASE("push coalescing: a zero window publishes every urgent stanza") {
  PushCoalescer c;
  for (uint32_t i = 1; i <= 3; ++i) {
    auto s = c.on_stanza(Urgency::Urgent, Persistence::Persistent, DeviceState::Hibernated, true,
                         100, 0);
    CHECK(s.action == PushAction::Push);
    CHECK(s.message_count == i);
  }
}

TEST_CASE("push coalescing: device back resets the burst") {
  PushCoalescer c;
  CHECK(c.on_stanza(Urgency::Urgent, Persistence::Persistent, DeviceState::Offline, true, 0, 2000)
            .action == PushAction::Push);
  c.on_connected();
  auto s =
      c.on_stanza(Urgency::Urgent, Persistence::Persistent, DeviceState::Offline, true, 500, 2000);
  CHECK(s.action == PushAction::Push);
  CHECK(s.message_count == 1);
}

}  // namespace
}  // namespace s2
