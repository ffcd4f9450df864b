// See service_state.h.
#include "proxy/service_state.h"

#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace s2::service {

void notify_ready(const std::string& status) {
  sd_notify(0, ("READY=1\nSTATUS=" + status).c_str());
}

void notify_stopping(const std::string& status) {
  sd_notify(0, ("STOPPING=1\nSTATUS=" + status).c_str());
}

std::string metrics_addr_file(const std::string& data_dir) { return data_dir + "/metrics.addr"; }

bool write_metrics_addr(const std::string& data_dir, const std::string& address,
                        std::string* error) {
  const std::string path = metrics_addr_file(data_dir);
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  bool ok = f != nullptr;
  if (ok) ok = std::fprintf(f, "%s\n", address.c_str()) > 0;
  if (f && std::fclose(f) != 0) ok = false;
  if (ok) ok = std::rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
  }
  return ok;
}

void remove_metrics_addr(const std::string& data_dir) {
  ::unlink(metrics_addr_file(data_dir).c_str());
}

}  // namespace s2::service
