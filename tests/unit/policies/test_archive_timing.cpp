// policies/archive_timing.h: which upstreams archive before they deliver (one read of the
// archive's end at a catch-up) and which may archive late (two reads).
#include <doctest/doctest.h>

#include "policies/archive_timing.h"

using s2::policy::archive_timing;
using s2::policy::ArchiveTiming;

TEST_CASE("archive timing: the table") {
  struct Row {
    const char* name;
    const char* version;
    ArchiveTiming want;
  };
  const Row rows[] = {
      {"Prosody", "0.12.3", ArchiveTiming::BeforeDelivery},  // Debian 12
      {"Prosody", "0.11.9", ArchiveTiming::BeforeDelivery},
      {"prosody", "0.12.4", ArchiveTiming::BeforeDelivery},       // names compare without case
      {" Prosody ", " 0.12.3\n", ArchiveTiming::BeforeDelivery},  // whitespace around text
      {"Prosody", "13.0.0", ArchiveTiming::MaybeLate},            // a release not looked at
      {"Prosody", "trunk", ArchiveTiming::MaybeLate},
      {"Prosody", "nightly build 1234 (2024-01-01, abcdef)", ArchiveTiming::MaybeLate},
      {"Prosody", "0.", ArchiveTiming::MaybeLate},
      {"Prosody", "0.x", ArchiveTiming::MaybeLate},
      {"Prosody", "", ArchiveTiming::MaybeLate},        // no version: not known
      {"ejabberd", "23.01", ArchiveTiming::MaybeLate},  // archives in the receiving process
      {"ejabberd", "0.12.3", ArchiveTiming::MaybeLate},
      {"Openfire", "4.7.5", ArchiveTiming::MaybeLate},
      {"Prosody IM", "0.12.3", ArchiveTiming::MaybeLate},  // only the exact name
      {"", "", ArchiveTiming::MaybeLate},                  // no answer
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    CAPTURE(r.version);
    CHECK(archive_timing(r.name, r.version) == r.want);
  }
}

TEST_CASE("archive timing: names for the log") {
  CHECK(std::string_view(to_string(ArchiveTiming::BeforeDelivery)) == "before_delivery");
  CHECK(std::string_view(to_string(ArchiveTiming::MaybeLate)) == "maybe_late");
}
