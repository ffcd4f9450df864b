// See metrics.h.
#include "common/util/metrics.h"

#include <map>
#include <memory>
#include <mutex>

namespace s2 {
namespace {
struct Family {
  std::string type, help;
  std::map<std::string, std::unique_ptr<Metric>, std::less<>> series;
};
std::mutex g_mu;
std::map<std::string, Family, std::less<>>& families() {
  static auto* f = new std::map<std::string, Family, std::less<>>();
  return *f;
}
}  // namespace

Metric& metric(std::string_view name, std::string_view labels, std::string_view type,
               std::string_view help) {
  std::lock_guard lock(g_mu);
  auto& fams = families();
  auto it = fams.find(name);
  if (it == fams.end()) {
    it = fams.emplace(std::string(name), Family{std::string(type), std::string(help), {}}).first;
  }
  auto& series = it->second.series;
  auto s = series.find(labels);
  if (s == series.end()) s = series.emplace(std::string(labels), std::make_unique<Metric>()).first;
  return *s->second;
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
  }
  return out;
}

}  // namespace s2
