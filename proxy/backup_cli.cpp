// See backup_cli.h.
#include "proxy/backup_cli.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/store/backup.h"
#include "proxy/store_open.h"
#include "proxy/version.h"

namespace s2 {
namespace {

bool is_dir(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Missing (then created, mode 0700) or an empty directory.
std::string prepare_empty_dir(const std::string& dir) {
  if (!is_dir(dir)) {
    if (mkdir(dir.c_str(), 0700) != 0)
      return std::string("cannot create it: ") + std::strerror(errno);
    return {};
  }
  DIR* d = opendir(dir.c_str());
  if (!d) return std::string("cannot read it: ") + std::strerror(errno);
  bool empty = true;
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) empty = false;
  }
  closedir(d);
  return empty ? std::string() : std::string("it is not empty (a backup never overwrites)");
}

std::string copy_secret(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) return "cannot read " + from + ": " + std::strerror(errno);
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string bytes = buf.str();
  const int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return "cannot create " + to + ": " + std::strerror(errno);
  const bool ok = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  return ok ? std::string() : "cannot write " + to;
}

std::string now_iso8601() {
  const time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  tm u{};
  gmtime_r(&t, &u);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &u);
  return out;
}

}  // namespace

int run_backup(const Config& cfg, const std::string& dir, bool with_vault_key) {
  if (store_is_postgresql(cfg)) {
    std::cerr << "backup: the store is PostgreSQL (--store " << redact_store_url(cfg.store)
              << "): back up its s2_* tables with the database's own tools (pg_dump, or the "
                 "server's base backups and WAL archive), and the vault key file separately\n";
    return 2;
  }
  const std::string src = cfg.data_dir + "/mirror";
  if (!is_dir(src)) {
    std::cerr << "backup: no mirror in " << cfg.data_dir << " (--data-dir)\n";
    return 1;
  }
  if (auto why = prepare_empty_dir(dir); !why.empty()) {
    std::cerr << "backup: " << dir << ": " << why << "\n";
    return 2;
  }
  const std::string began = now_iso8601();
  const std::string dst = dir + "/mirror";
  if (mkdir(dst.c_str(), 0700) != 0) {
    std::cerr << "backup: cannot create " << dst << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  const auto outcome = store::copy_mirror_compacted(src, dst);
  if (!outcome.error.empty()) {
    std::cerr << "backup: " << outcome.error << "\n";
    return 1;
  }
  if (with_vault_key) {
    if (auto why = copy_secret(cfg.vault_key_path(), dir + "/vault.key"); !why.empty()) {
      std::cerr << "backup: vault key: " << why << "\n";
      return 1;
    }
  }
  std::ofstream manifest(dir + "/BACKUP");
  manifest << "s2proxy backup\n"
           << "version " << S2PROXY_VERSION << "\n"
           << "began " << began << "\n"
           << "source " << cfg.data_dir << "\n"
           << "mirror schema " << outcome.schema_version << "\n"
           << "mirror bytes " << outcome.bytes << "\n"
           << "vault key " << (with_vault_key ? "included (vault.key, a secret)" : "not included")
           << "\n";
  manifest.close();
  if (!manifest) {
    std::cerr << "backup: cannot write " << dir << "/BACKUP\n";
    return 1;
  }
  std::cout << "backup of " << cfg.data_dir << " in " << dir << ": mirror " << outcome.bytes
            << " bytes (schema " << outcome.schema_version << ", as committed at " << began << ")"
            << (with_vault_key ? ", vault key included" : ", vault key not included") << "\n";
  return 0;
}

}  // namespace s2
