// See metrics.h.
#include "common/util/metrics.h"

#include <charconv>
#include <map>
#include <mutex>

namespace s2 {
namespace {
struct Family {
  std::string type, help;
  std::map<std::string, std::unique_ptr<Metric>, std::less<>> series;
  std::map<std::string, std::unique_ptr<Histogram>, std::less<>> histograms;
};
std::mutex g_mu;
std::map<std::string, Family, std::less<>>& families() {
  static auto* f = new std::map<std::string, Family, std::less<>>();
  return *f;
}
std::vector<std::function<void(std::string&)>>& collectors() {
  static auto* c = new std::vector<std::function<void(std::string&)>>();
  return *c;
}

Family& family(std::string_view name, std::string_view type, std::string_view help) {
  auto& fams = families();
  auto it = fams.find(name);
  if (it == fams.end()) {
    it =
        fams.emplace(std::string(name), Family{std::string(type), std::string(help), {}, {}}).first;
  }
  return it->second;
}

std::string format_double(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}
}  // namespace

Metric& metric(std::string_view name, std::string_view labels, std::string_view type,
               std::string_view help) {
  std::lock_guard lock(g_mu);
  auto& series = family(name, type, help).series;
  auto s = series.find(labels);
  if (s == series.end()) s = series.emplace(std::string(labels), std::make_unique<Metric>()).first;
  return *s->second;
}

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::observe(double seconds) {
  size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  if (seconds > 0)
    sum_ns_.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
}

void Histogram::render(std::string& out, std::string_view name, std::string_view labels) const {
  const std::string prefix = labels.empty() ? std::string() : std::string(labels) + ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    const std::string le = i < bounds_.size() ? format_double(bounds_[i]) : "+Inf";
    out += std::string(name) + "_bucket{" + prefix + "le=\"" + le + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  const std::string braces = labels.empty() ? "" : "{" + std::string(labels) + "}";
  out += std::string(name) + "_sum" + braces + " " +
         format_double(static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9) + "\n";
  out += std::string(name) + "_count" + braces + " " +
         std::to_string(count_.load(std::memory_order_relaxed)) + "\n";
}

Histogram& histogram(std::string_view name, std::string_view help, std::string_view labels,
                     std::span<const double> bounds) {
  std::lock_guard lock(g_mu);
  auto& hs = family(name, "histogram", help).histograms;
  auto h = hs.find(labels);
  if (h == hs.end()) h = hs.emplace(std::string(labels), std::make_unique<Histogram>(bounds)).first;
  return *h->second;
}

void add_metrics_collector(std::function<void(std::string& out)> collect) {
  std::lock_guard lock(g_mu);
  collectors().push_back(std::move(collect));
}

std::string render_metrics() {
  std::lock_guard lock(g_mu);
  std::string out;
  for (const auto& [name, fam] : families()) {
    out += "# HELP " + name + " " + fam.help + "\n# TYPE " + name + " " + fam.type + "\n";
    for (const auto& [labels, m] : fam.series) {
      out += name;
      if (!labels.empty()) out += "{" + labels + "}";
      out += " " + std::to_string(m->value()) + "\n";
    }
    for (const auto& [labels, h] : fam.histograms) h->render(out, name, labels);
  }
  for (const auto& c : collectors()) c(out);
  return out;
}

}  // namespace s2
