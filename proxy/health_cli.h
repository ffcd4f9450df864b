// `s2proxy health`: exit 0 when the running daemon answers GET /metrics with 200, else 1 with one
// line on stderr saying why. The address is the one the daemon recorded in <data-dir>/metrics.addr
// (service_state.h), else the configured --metrics; so a container or a monitor can check a daemon
// whose metrics listener was set by flag, environment or config file alike. Read-only: creates
// nothing (not even the data dir).
#pragma once

#include "proxy/config.h"

namespace s2 {

int health_check(const Config& cfg, double timeout_s);

// "0.0.0.0:9102" → "127.0.0.1:9102", "[::]:9102" → "[::1]:9102": where a local check connects to a
// wildcard listener. Anything else unchanged.
std::string local_address_for(const std::string& listen_address);

}  // namespace s2
