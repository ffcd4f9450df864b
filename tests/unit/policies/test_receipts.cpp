// Receipts once per message, markers monotonic (receipts.h, ARCHITECTURE.md §7, XEP-0184/0333).
#include <doctest/doctest.h>

#include "policies/receipts.h"
#include "tests/unit/policies/shapes.h"

namespace s2::policy {
namespace {

using namespace test;
using RA = ReceiptAction;
using RS = ReceiptState;

TEST_CASE("receipts: a device's receipt against the archived state") {
  const auto incoming = [](RS s) { return std::optional{ReceiptOriginal{true, s}}; };
  const auto outgoing = [](RS s) { return std::optional{ReceiptOriginal{false, s}}; };
  struct Row {
    std::optional<ReceiptOriginal> original;
    RA action;
    RS state_after;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // original                  action            state after       why
    {incoming(RS::Requested),    RA::SendUpstream, RS::Sent,         "first device"},
    {incoming(RS::Sent),         RA::Drop,         RS::Sent,         "second device"},
    {incoming(RS::NotRequested), RA::Drop,         RS::NotRequested, "nobody asked"},
    {outgoing(RS::Requested),    RA::Drop,         RS::Requested,    "our own message"},
    {std::nullopt,               RA::SendUpstream, RS::Sent,         "unknown: through"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why);
    const auto v = decide_device_receipt(r.original);
    CHECK(v.action == r.action);
    CHECK(v.state == r.state_after);
  }
}

TEST_CASE("receipts: three devices acknowledge one message, one receipt leaves") {
  ReceiptOriginal archived{true, initial_receipt_state(S::chat().body().request())};
  int sent = 0;
  for (int device = 0; device < 3; ++device) {
    const auto v = decide_device_receipt(archived);
    if (v.action == RA::SendUpstream) ++sent;
    archived.state = v.state;
  }
  CHECK(sent == 1);
  CHECK(archived.state == RS::Sent);
}

TEST_CASE("receipts: the state an incoming message is archived with") {
  CHECK(initial_receipt_state(S::chat().body().request()) == RS::Requested);
  CHECK(initial_receipt_state(S::chat().body()) == RS::NotRequested);
  CHECK(initial_receipt_state(S::chat().receipt()) == RS::NotRequested);
}

TEST_CASE("receipts: displayed markers are cumulative") {
  using Id = std::optional<std::uint64_t>;
  struct Row {
    Id marked, last_sent;
    RA action;
    Id last_after;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // marked      last sent     action            last afterwards why
    {Id{10},       std::nullopt, RA::SendUpstream, Id{10},       "first marker"},
    {Id{12},       Id{10},       RA::SendUpstream, Id{12},       "newer message"},
    {Id{10},       Id{10},       RA::Drop,         Id{10},       "same message, other device"},
    {Id{7},        Id{10},       RA::Drop,         Id{10},       "older: already implied"},
    {std::nullopt, Id{10},       RA::SendUpstream, Id{10},       "unknown target: through"},
    {std::nullopt, std::nullopt, RA::SendUpstream, std::nullopt, "nothing known"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why);
    const auto v = decide_device_marker(r.marked, r.last_sent);
    CHECK(v.action == r.action);
    CHECK(v.last_sent == r.last_after);
  }
  // Compile-time: the rules are constexpr.
  static_assert(decide_device_receipt(std::nullopt).action == RA::SendUpstream);
  static_assert(decide_device_marker(Id{1}, Id{2}).action == RA::Drop);
}

}  // namespace
}  // namespace s2::policy
