// See backup.h.
#include "common/store/backup.h"

#include <lmdb.h>
#include <sys/stat.h>

#include <cstring>

#include "common/store/schema.h"

namespace s2::store {
namespace {

std::string mdb_error(const char* call, int rc) {
  return std::string(call) + ": " + mdb_strerror(rc);
}

// The schema version recorded in the copy (0 when absent or unreadable).
uint32_t read_schema_version(MDB_env* env) {
  MDB_txn* txn = nullptr;
  if (mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) != 0) return 0;
  uint32_t version = 0;
  MDB_dbi meta = 0;
  if (mdb_dbi_open(txn, "meta", 0, &meta) == 0) {
    MDB_val k{6, const_cast<char*>("schema")}, v{};
    if (mdb_get(txn, meta, &k, &v) == 0 && v.mv_size == 4) {
      version = schema::get_u32(std::string_view(static_cast<const char*>(v.mv_data), 4), 0);
    }
  }
  mdb_txn_abort(txn);
  return version;
}

}  // namespace

BackupOutcome copy_mirror_compacted(const std::string& src_dir, const std::string& dst_dir) {
  BackupOutcome out;
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) {
    out.error = mdb_error("mdb_env_create", rc);
    return out;
  }
  mdb_env_set_maxdbs(env, 16);
  mdb_env_set_maxreaders(env, 126);
  // Read-only and without thread-bound reader slots, as a second process next
  // to the daemon; the map size is taken from the environment itself.
  rc = mdb_env_open(env, src_dir.c_str(), MDB_RDONLY | MDB_NOTLS, 0600);
  if (rc != 0) {
    out.error = mdb_error("mdb_env_open", rc) + " (" + src_dir + ")";
    mdb_env_close(env);
    return out;
  }
  out.schema_version = read_schema_version(env);
  rc = mdb_env_copy2(env, dst_dir.c_str(), MDB_CP_COMPACT);
  mdb_env_close(env);
  if (rc != 0) {
    out.error = mdb_error("mdb_env_copy2", rc) + " (" + dst_dir + ")";
    return out;
  }
  struct stat st {};
  if (stat((dst_dir + "/data.mdb").c_str(), &st) == 0)
    out.bytes = static_cast<uint64_t>(st.st_size);
  return out;
}

}  // namespace s2::store
