// The process metrics Prometheus client libraries export by convention
// (process_resident_memory_bytes, process_open_fds, process_max_fds,
// process_cpu_seconds_total, process_start_time_seconds), read from /proc at
// scrape time.
#pragma once

#include <string>

namespace s2 {

// Adds them to every render_metrics(); idempotent.
void register_process_metrics();
// The lines for one scrape (Linux /proc; a field that cannot be read is left out).
void render_process_metrics(std::string& out);

}  // namespace s2
