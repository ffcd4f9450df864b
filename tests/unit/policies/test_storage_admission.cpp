// admit_persistent(): the disk reserve and the back-off after a failed commit, row by row.
#include <doctest/doctest.h>

#include "policies/storage_admission.h"

namespace s2::policy {
namespace {

TEST_CASE("admit_persistent") {
  constexpr uint64_t MiB = 1 << 20;
  struct Row {
    const char* what;
    StorageFacts f;
    StorageVerdict want;
  };
  const Row rows[] = {
      {"plenty of space", {true, 10 * 1024 * MiB, 128 * MiB, 1000, 0}, StorageVerdict::kAccept},
      {"exactly the reserve", {true, 128 * MiB, 128 * MiB, 1000, 0}, StorageVerdict::kAccept},
      {"one byte under the reserve",
       {true, 128 * MiB - 1, 128 * MiB, 1000, 0},
       StorageVerdict::kRefuseDiskLow},
      {"no reserve configured", {true, 0, 0, 1000, 0}, StorageVerdict::kAccept},
      {"statvfs failed: unknown is not low",
       {false, 0, 128 * MiB, 1000, 0},
       StorageVerdict::kAccept},
      {"just after a failed commit",
       {true, 10 * 1024 * MiB, 128 * MiB, 1000, 6000},
       StorageVerdict::kRefuseMirrorFull},
      {"back-off over: try again",
       {true, 10 * 1024 * MiB, 128 * MiB, 6000, 6000},
       StorageVerdict::kAccept},
      {"both: the failed commit wins",
       {true, 1, 128 * MiB, 1000, 6000},
       StorageVerdict::kRefuseMirrorFull},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    CHECK(admit_persistent(r.f) == r.want);
  }
}

TEST_CASE("refusal texts and back-off") {
  CHECK(refusal_text(StorageVerdict::kAccept).empty());
  CHECK(refusal_text(StorageVerdict::kRefuseDiskLow).find("disk") != std::string_view::npos);
  CHECK(refusal_text(StorageVerdict::kRefuseMirrorFull).find("store") != std::string_view::npos);
  CHECK(full_until_after_failure(1000) > 1000);
  CHECK(admit_persistent({true, 1, 0, 1000, full_until_after_failure(1000)}) ==
        StorageVerdict::kRefuseMirrorFull);
}

}  // namespace
}  // namespace s2::policy
