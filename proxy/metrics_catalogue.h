// Every metric README.md documents, registered at start-up so that each
// series is scraped at zero before its first increment (a rate() or an alert
// on a series that does not exist yet sees nothing). The code that updates a
// metric still creates it by name where it is used (counter(), gauge());
// registration is by name and label set, so both reach the same series and
// the catalogue's help text is the one shown.
#pragma once

#include <string>
#include <vector>

#include "common/util/metrics.h"

namespace s2 {

struct CatalogueEntry {
  std::string name;
  std::string type;  // counter | gauge | histogram
  std::string help;
  std::string label;                // "" = no label
  std::vector<std::string> values;  // label values registered at zero
};
const std::vector<CatalogueEntry>& metrics_catalogue();

// Registers the catalogue, s2proxy_build_info and the process metrics.
void register_metrics_catalogue();

// Observed around each login (auth_common.cpp) and mirror commit (server.cpp).
Histogram& login_duration(const std::string& mechanism);
Histogram& mirror_commit_duration();
// A persistent message's time inside the proxy (account_hub_leaving.cpp, account_hub_entering.cpp).
Histogram& message_transit(bool leaving);
// Logins waiting for a slot of their address (auth_common.cpp, client_session.cpp).
Metric& login_queue_gauge();

}  // namespace s2
