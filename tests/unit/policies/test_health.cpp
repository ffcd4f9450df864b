// anchors_problem(): when `s2proxy health` calls the daemon unhealthy.
#include <doctest/doctest.h>

#include "policies/health.h"

namespace s2::policy {
namespace {

TEST_CASE("anchors_problem") {
  struct Row {
    const char* what;
    AnchorHealth h;
    bool unhealthy;
  };
  const Row rows[] = {
      {"no accounts yet", {0, 0, 3600}, false},
      {"all up", {10, 10, 3600}, false},
      {"some down: degraded, not unhealthy", {10, 1, 3600}, false},
      {"none up, just started", {10, 0, 30}, false},
      {"none up after the grace", {10, 0, 61}, true},
      {"none up exactly at the grace", {10, 0, kAnchorGraceSeconds}, true},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    CHECK(anchors_problem(r.h).empty() == !r.unhealthy);
  }
  CHECK(anchors_problem({3, 0, 120}).find("0 of 3") != std::string::npos);
}

}  // namespace
}  // namespace s2::policy
