// What the daemon tells its supervisors: systemd readiness (sd_notify) and the metrics address
// for `s2proxy health`.
//
// * systemd: with Type=notify the unit is "started" only when READY=1 arrives, so After= ordering
//   and `systemctl start` mean "accepting clients", not "process exists". READY=1 is sent once
//   every listener is bound and the mirror is open, STOPPING=1 when a graceful stop begins; STATUS=
//   lines say what the daemon does. Without NOTIFY_SOCKET (not under systemd) sd_notify does
//   nothing.
// * health: the running daemon records the metrics address it actually bound (port 0 resolved) in
//   <data-dir>/metrics.addr, written atomically at start and removed when a stop begins; `s2proxy
//   health` reads it. A check that works however the listener was configured (flag, environment,
//   config file), and that fails as soon as the daemon drains.
#pragma once

#include <string>

namespace s2::service {

void notify_ready(const std::string& status);
void notify_stopping(const std::string& status);

// <data_dir>/metrics.addr
std::string metrics_addr_file(const std::string& data_dir);
// Writes `address` there (temp file + rename); false with *error on failure.
bool write_metrics_addr(const std::string& data_dir, const std::string& address,
                        std::string* error);
void remove_metrics_addr(const std::string& data_dir);

}  // namespace s2::service
