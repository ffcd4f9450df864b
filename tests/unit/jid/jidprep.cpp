// Test helper: for each stdin line (a hex-encoded string), prints one line
//   <node>\t<resource>\t<domain>\t<jid>
// with our prep_localpart / prep_resourcepart / prep_domainpart /
// normalize_jid of it, each hex-encoded, or "-" when rejected.
// Used by prosody_crosscheck.py; hex keeps newlines, NULs and invalid UTF-8
// intact on the way.
#include <iostream>
#include <optional>
#include <string>

#include "common/jid/jid.h"

namespace {

std::string hex(const std::optional<std::string>& s) {
  if (!s) return "-";
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : *s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::optional<std::string> unhex(const std::string& h) {
  if (h.size() % 2) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < h.size(); i += 2)
    out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

}  // namespace

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    auto s = unhex(line);
    if (!s) return 2;
    std::cout << hex(s2::prep_localpart(*s)) << '\t' << hex(s2::prep_resourcepart(*s)) << '\t'
              << hex(s2::prep_domainpart(*s)) << '\t' << hex(s2::normalize_jid(*s)) << '\n';
  }
  return 0;
}
