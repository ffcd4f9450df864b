// push_decide() / push_includes_body() (push.h): wake only a registered, sleeping device for an
// urgent stanza it will still find, coalesce while a push is unanswered, body only on opt-in.
#include <doctest/doctest.h>

#include "policies/push.h"
#include "tests/unit/policies/shapes.h"

namespace s2::policy {
namespace {

using namespace test;
using PA = PushAction;
constexpr auto kConn = DeviceState::Connected, kHib = DeviceState::Hibernated,
               kOff = DeviceState::Offline;

TEST_CASE("push: whom to wake") {
  struct Row {
    Urgency u;
    Persistence p;
    DeviceState state;
    bool registered, unanswered;
    std::uint64_t ms_since;
    PA want;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // urgency persistence device reg  unans  ms since   action        why
    {Urg,  Pers,   kOff,  yes, no,  0,      PA::Push,     "syncs from the mirror"},
    {Urg,  Pers,   kHib,  yes, no,  0,      PA::Push,     "SM queue holds it"},
    {Urg,  Pers,   kConn, yes, no,  0,      PA::Skip,     "CSI flush delivers it"},
    {Urg,  Pers,   kOff,  no,  no,  0,      PA::Skip,     "not registered"},
    {Urg,  AllOn,  kHib,  yes, no,  0,      PA::Push,     "ephemeral, but queued"},
    {Urg,  AllOn,  kOff,  yes, no,  0,      PA::Skip,     "would find nothing"},
    {Urg,  OneDev, kHib,  yes, no,  0,      PA::Push,     "to this device, queued"},
    {Urg,  OneDev, kOff,  yes, no,  0,      PA::Skip,     "gone with the session"},
    {Urg,  Kept,   kOff,  yes, no,  0,      PA::Push,     "mention / subscription"},
    {Norm, Pers,   kOff,  yes, no,  0,      PA::Skip,     "corrections don't wake"},
    {Sil,  Pers,   kOff,  yes, no,  0,      PA::Skip,     "markers don't wake"},
    {Imm,  OneDev, kHib,  yes, no,  0,      PA::Skip,     "iq never pushes"},
    {Urg,  Pers,   kOff,  yes, yes, 1'000,  PA::Coalesce, "one in flight"},
    {Urg,  Pers,   kHib,  yes, yes, 29'999, PA::Coalesce, "still in the window"},
    {Urg,  Pers,   kOff,  yes, yes, 30'000, PA::Push,     "window over: remind"},
    {Urg,  Pers,   kOff,  yes, no,  1'000,  PA::Push,     "device came back since"},
    {Urg,  Pers,   kConn, yes, yes, 1'000,  PA::Skip,     "connected now"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why);
    const PushTarget t{r.state, r.registered, r.unanswered, r.ms_since, 30'000};
    CHECK(push_decide(r.u, r.p, t) == r.want);
  }
}

TEST_CASE("push: body in the summary only on opt-in, never ciphertext fallbacks") {
  struct Row {
    S shape;
    bool opted_in;
    bool want;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // shape                               opt-in body why
    {S::chat().body(),                yes, yes, "opted in"},
    {S::chat().body(),                no,  no,  "default: no body"},
    {S::normal().body(),              yes, yes, "normal message"},
    {S::groupchat().body().mention(), yes, yes, "mention"},
    {S::chat().muc_x().body(),        yes, yes, "PM"},
    {S::chat().omemo().body(),        yes, no,  "fallback text is no content"},
    {S::chat().omemo(),               yes, no,  "nothing to show"},
    {S::propose(),                    yes, no,  "a call has no body"},
    {S::subscribe(),                  yes, no,  "subscription"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why);
    CHECK(push_includes_body(classify(r.shape), r.shape, r.opted_in) == r.want);
  }
}

TEST_CASE("push_body_opted_in: the account's setting over the daemon's default") {
  struct Row {
    BodySetting account;
    bool daemon_default;
    bool want;
  };
  const Row rows[] = {
      {BodySetting::Default, false, false}, {BodySetting::Default, true, true},
      {BodySetting::On, false, true},       {BodySetting::On, true, true},
      {BodySetting::Off, false, false},     {BodySetting::Off, true, false},
  };
  for (const auto& r : rows) {
    CAPTURE(static_cast<int>(r.account));
    CAPTURE(r.daemon_default);
    CHECK(push_body_opted_in(r.account, r.daemon_default) == r.want);
  }
}

}  // namespace
}  // namespace s2::policy
