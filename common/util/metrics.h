// Process-wide counters and gauges rendered as Prometheus text (exposition
// format 0.0.4). Every limit and every error condition has a counter
// (ARCHITECTURE.md §10), so operators can alert on them.
//
// A metric is created once (static reference) and updated lock-free; the
// registry lock is only taken to create metrics and to render. Creating a
// metric that exists returns it: the first registration's help text wins, so
// a catalogue that registers every documented series at start-up
// (proxy/metrics_catalogue.cpp) makes them all visible at zero before their
// first increment.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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

// A Prometheus histogram of durations in seconds; observe() is lock-free and
// may be called from any thread (the mirror's writer thread does).
class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds);
  void observe(double seconds);
  // Appends the _bucket/_sum/_count lines for one series.
  void render(std::string& out, std::string_view name, std::string_view labels) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bound (not cumulative), +Inf last
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

// Latency buckets, 0.5 ms to 10 s.
inline constexpr double kLatencyBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
Histogram& histogram(std::string_view name, std::string_view help, std::string_view labels = {},
                     std::span<const double> bounds = kLatencyBuckets);

// Text appended to every scrape (process metrics computed at scrape time).
void add_metrics_collector(std::function<void(std::string& out)> collect);

std::string render_metrics();

}  // namespace s2
