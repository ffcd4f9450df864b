// Process-wide counters and gauges rendered as Prometheus text (exposition
// format 0.0.4). Every limit and every error condition has a counter
// (ARCHITECTURE.md §10), so operators can alert on them.
//
// A metric is created once (static reference) and updated lock-free; the
// registry lock is only taken to create metrics and to render.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace s2 {

class Metric {
 public:
  void inc(int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  void dec(int64_t n = 1) { value_.fetch_sub(n, std::memory_order_relaxed); }
  void set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Returns the metric for (name, labels), creating it on first use. `labels`
// is the Prometheus label set without braces, e.g. `condition="not-authorized"`.
// `type` is "counter" or "gauge"; `help` is written once per name.
Metric& metric(std::string_view name, std::string_view labels, std::string_view type,
               std::string_view help);
inline Metric& counter(std::string_view name, std::string_view help, std::string_view labels = {}) {
  return metric(name, labels, "counter", help);
}
inline Metric& gauge(std::string_view name, std::string_view help, std::string_view labels = {}) {
  return metric(name, labels, "gauge", help);
}

std::string render_metrics();

}  // namespace s2
