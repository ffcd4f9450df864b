// See process_metrics.h.
#include "common/util/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <mutex>
#include <sstream>

#include "common/util/metrics.h"

namespace s2 {
namespace {
void add(std::string& out, const char* name, const char* type, const char* help, double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
         name + " " + std::string(buf, r.ptr) + "\n";
}

// Boot time from /proc/stat ("btime <seconds>").
double boot_time() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
  return 0;
}

int count_fds() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n - 1;  // the descriptor opendir itself holds
}
}  // namespace

void render_process_metrics(std::string& out) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream stat("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name "(…)", which may contain spaces: state is
  // field 3; utime 14, stime 15, starttime 22, rss 24 (proc(5)).
  const auto close = text.rfind(')');
  if (close != std::string::npos && ticks > 0) {
    std::istringstream fields(text.substr(close + 2));
    std::string f[23];
    for (int i = 0; i < 23 && fields >> f[i]; ++i) {
    }
    const double utime = std::stod(f[11].empty() ? "0" : f[11]);
    const double stime = std::stod(f[12].empty() ? "0" : f[12]);
    const double start = std::stod(f[19].empty() ? "0" : f[19]);
    const double rss_pages = std::stod(f[21].empty() ? "0" : f[21]);
    add(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time in seconds.",
        (utime + stime) / ticks);
    add(out, "process_start_time_seconds", "gauge",
        "Start time of the process since unix epoch in seconds.", boot_time() + start / ticks);
    add(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
        rss_pages * static_cast<double>(sysconf(_SC_PAGESIZE)));
  }
  if (int fds = count_fds(); fds >= 0)
    add(out, "process_open_fds", "gauge", "Number of open file descriptors.", fds);
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    add(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
        static_cast<double>(rl.rlim_cur));
}

void register_process_metrics() {
  static std::once_flag once;
  std::call_once(once, [] { add_metrics_collector(render_process_metrics); });
}

}  // namespace s2
