// See storage_guard.h.
#include "proxy/storage_guard.h"

#include <sys/statvfs.h>

#include "common/util/clock.h"
#include "common/util/log.h"
#include "common/util/metrics.h"

namespace s2 {
namespace {
constexpr uint64_t kSampleMs = 2000;

Metric& m_full() {
  static Metric& m = gauge("s2proxy_storage_full",
                           "1 while new persistent messages from devices are refused for lack "
                           "of space (disk under --min-free-disk, or the mirror full)");
  return m;
}
Metric& m_refusals() {
  static Metric& m = counter("s2proxy_storage_refusals_total",
                             "persistent messages from devices refused with resource-constraint "
                             "for lack of space");
  return m;
}
Metric& m_free() {
  static Metric& m = gauge("s2proxy_data_dir_free_bytes",
                           "free bytes on the data dir's filesystem (for the daemon's user)");
  return m;
}

const char* reason(policy::StorageVerdict v) {
  switch (v) {
    case policy::StorageVerdict::kRefuseDiskLow:
      return "disk-low";
    case policy::StorageVerdict::kRefuseMirrorFull:
      return "mirror-full";
    case policy::StorageVerdict::kAccept:
      break;
  }
  return "ok";
}
}  // namespace

StorageGuard::StorageGuard(uv_loop_t* loop, std::string data_dir, uint64_t min_free_bytes)
    : timer_(loop), data_dir_(std::move(data_dir)) {
  facts_.min_free_bytes = min_free_bytes;
  m_full().set(0);
  m_refusals();
}

void StorageGuard::start() {
  sample();
  timer_.start(
      kSampleMs, [this] { sample(); }, kSampleMs);
  timer_.unref();  // never keeps a draining daemon alive
}

void StorageGuard::stop() { timer_.stop(); }

void StorageGuard::sample() {
  struct statvfs st {};
  facts_.free_known = statvfs(data_dir_.c_str(), &st) == 0;
  if (facts_.free_known) {
    facts_.free_bytes = static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
    m_free().set(static_cast<int64_t>(facts_.free_bytes));
  }
  facts_.now_ms = unix_ms();
  transition(policy::admit_persistent(facts_));
}

void StorageGuard::transition(policy::StorageVerdict v) {
  if (v == last_) return;
  if (v == policy::StorageVerdict::kAccept) {
    S2_LOG(LogLevel::Warn, "storage.recovered",
           {{"free_bytes", static_cast<int64_t>(facts_.free_bytes)}});
  } else {
    S2_LOG(LogLevel::Error, "storage.full",
           {{"reason", reason(v)},
            {"free_bytes", static_cast<int64_t>(facts_.free_bytes)},
            {"min_free_bytes", static_cast<int64_t>(facts_.min_free_bytes)}});
  }
  m_full().set(v == policy::StorageVerdict::kAccept ? 0 : 1);
  last_ = v;
}

policy::StorageVerdict StorageGuard::admit() {
  facts_.now_ms = unix_ms();
  const auto v = policy::admit_persistent(facts_);
  transition(v);
  if (v != policy::StorageVerdict::kAccept) m_refusals().inc();
  return v;
}

bool StorageGuard::is_space_error(const store::Error& e) {
  return e.code == store::Errc::kMapFull || e.code == store::Errc::kNoSpace;
}

bool StorageGuard::note_commit_error(const store::Error& e) {
  if (!is_space_error(e)) return false;
  facts_.now_ms = unix_ms();
  facts_.full_until_ms = policy::full_until_after_failure(facts_.now_ms);
  transition(policy::admit_persistent(facts_));
  return true;
}

}  // namespace s2
