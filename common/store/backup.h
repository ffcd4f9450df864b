// A consistent, compacted copy of a mirror environment that may be in use by
// a running daemon (issue 13 item 5).
//
// LMDB allows a second process to read while the daemon writes; mdb_env_copy2
// with MDB_CP_COMPACT copies inside one read transaction, so the copy is the
// state after one commit — everything committed before the copy began, nothing
// half-written — and leaves out free pages. The daemon keeps writing meanwhile
// (a reader never blocks the writer).
#pragma once

#include <cstdint>
#include <string>

namespace s2::store {

struct BackupOutcome {
  std::string error;   // empty on success
  uint64_t bytes = 0;  // size of the copied data.mdb
  uint32_t schema_version = 0;
};

// Copies the environment in `src_dir` into `dst_dir` (which must exist and be
// empty).
BackupOutcome copy_mirror_compacted(const std::string& src_dir, const std::string& dst_dir);

}  // namespace s2::store
