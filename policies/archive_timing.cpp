#include "policies/archive_timing.h"

#include <cctype>

namespace s2::policy {

namespace {
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}
}  // namespace

ArchiveTiming archive_timing(std::string_view software_name, std::string_view version) {
  // Prosody's releases so far are numbered 0.x ("0.12.3"); its trunk builds say "trunk" or
  // "nightly build N", which may carry a storage layer that yields: not known, so not trusted.
  version = trim(version);
  const bool zero_x = version.size() > 2 && version[0] == '0' && version[1] == '.' &&
                      std::isdigit(static_cast<unsigned char>(version[2]));
  if (iequals(trim(software_name), "Prosody") && zero_x) return ArchiveTiming::BeforeDelivery;
  return ArchiveTiming::MaybeLate;
}

const char* to_string(ArchiveTiming t) {
  return t == ArchiveTiming::BeforeDelivery ? "before_delivery" : "maybe_late";
}

}  // namespace s2::policy
