// check_carbon() (carbons.h): only our own bare JID may wrap a carbon; copies of what passed
// through our device links are echoes. Account a@x; a@x/lap is a client logged in upstream
// directly, a@x/dev a device behind the proxy; b@y and m@z are other accounts.
#include <doctest/doctest.h>

#include "policies/carbons.h"
#include "tests/unit/policies/shapes.h"

namespace s2::policy {
namespace {

using namespace test;
using V = CarbonVerdict;
constexpr auto kRecv = Forwarded::Received, kSent = Forwarded::Sent, kNone = Forwarded::None;

TEST_CASE("carbons: acceptance") {
  struct Row {
    Forwarded kind;
    std::string_view wrapper_from, inner_from, inner_to;
    bool from_dev, to_dev;
    V want;
    std::string_view why;
  };
  // clang-format off
  const Row rows[] = {
    // kind wrapper   inner from  inner to   fdev tdev  verdict    why
    {kRecv, "a@x",     "b@y/p",   "a@x/lap", no,  no,  V::Accept, "received by a non-proxy client"},
    {kRecv, "a@x",     "b@y/p",   "a@x",     no,  no,  V::Accept, "to bare, via other client"},
    {kSent, "a@x",     "a@x/lap", "b@y",     no,  no,  V::Accept, "sent by a non-proxy client"},
    {kSent, "A@X",     "a@x/lap", "b@y",     no,  no,  V::Accept, "case-folded comparison"},
    {kRecv, "b@y",     "b@y/p",   "a@x/lap", no,  no,  V::Reject, "forged by a contact"},
    {kSent, "a@x/lap", "a@x/lap", "b@y",     no,  no,  V::Reject, "full JID wrapper"},
    {kRecv, "",        "b@y/p",   "a@x/lap", no,  no,  V::Reject, "wrapper without from"},
    {kRecv, "x",       "b@y/p",   "a@x/lap", no,  no,  V::Reject, "domain wrapper"},
    {kSent, "a@x",     "m@z/a",   "b@y",     no,  no,  V::Reject, "sent by someone else"},
    {kRecv, "a@x",     "b@y/p",   "c@w",     no,  no,  V::Reject, "received by someone else"},
    {kRecv, "a@x",     "b@y/p",   "a@x/dev", no,  yes, V::Echo,   "the link got the original"},
    {kSent, "a@x",     "a@x/dev", "b@y",     yes, no,  V::Echo,   "our device sent it"},
    {kSent, "a@x",     "a@x/lap", "a@x/dev", no,  yes, V::Echo,   "sent to our device"},
    {kRecv, "a@x",     "a@x/dev", "a@x/lap", yes, no,  V::Echo,   "sent by our device"},
    {kNone, "b@y",     "",        "",        no,  no,  V::Accept, "not a carbon: nothing to check"},
  };
  // clang-format on
  for (const auto& r : rows) {
    INFO(r.why);
    const CarbonCheck c{r.kind, r.wrapper_from, r.inner_from, r.inner_to,
                        "a@x",  r.from_dev,     r.to_dev};
    CHECK(check_carbon(c) == r.want);
  }
}

}  // namespace
}  // namespace s2::policy
