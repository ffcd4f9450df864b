// Archive id rendering: fixed width, strict parsing, string order = numeric order.
#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include "common/store/archive_id.h"

using namespace s2::store;

TEST_CASE("archive ids render to 13 Crockford base32 characters and parse back") {
  const ArchiveId samples[] = {0,    1,          31,         32,
                               1000, 0xFFFFFFFF, 1ull << 40, std::numeric_limits<ArchiveId>::max()};
  for (ArchiveId id : samples) {
    std::string s = render_archive_id(id);
    CHECK(s.size() == kArchiveIdWidth);
    auto back = parse_archive_id(s);
    REQUIRE(back.has_value());
    CHECK(*back == id);
  }
  CHECK(render_archive_id(1) == "0000000000001");
  CHECK(render_archive_id(32) == "0000000000010");
  CHECK(render_archive_id(std::numeric_limits<ArchiveId>::max()) == "FZZZZZZZZZZZZ");
}

TEST_CASE("string order of rendered ids equals numeric order") {
  std::mt19937_64 rng(42);
  std::vector<ArchiveId> ids;
  for (int i = 0; i < 2000; ++i) ids.push_back(rng() >> (rng() % 64));
  for (ArchiveId i = 0; i < 100; ++i) ids.push_back(i);  // neighbours across digit boundaries
  std::vector<std::string> rendered;
  for (ArchiveId id : ids) rendered.push_back(render_archive_id(id));
  std::sort(ids.begin(), ids.end());
  std::sort(rendered.begin(), rendered.end());
  for (size_t i = 0; i < ids.size(); ++i) CHECK(rendered[i] == render_archive_id(ids[i]));
}

TEST_CASE("parsing is strict: one spelling per id") {
  const char* bad[] = {"",
                       "000000000001",    // too short
                       "00000000000001",  // too long
                       "000000000000a",   // lower case
                       "000000000000I",   // excluded letters
                       "000000000000L",
                       "000000000000O",
                       "000000000000U",
                       "G000000000000",  // > 64 bits
                       "0000000000-01",
                       "28482-98726-7"};
  for (const char* s : bad) CHECK_FALSE(parse_archive_id(s).has_value());
}
