// See config_file.h.
#include "proxy/config_file.h"

#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace s2 {
namespace {
std::string format_double(double d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

TomlEntry entry_of(const std::string& key, const toml::node& n) {
  TomlEntry e{key, "", TomlKind::Other, static_cast<int>(n.source().begin.line)};
  if (auto s = n.as_string()) {
    e.kind = TomlKind::String;
    e.value = s->get();
  } else if (auto i = n.as_integer()) {
    e.kind = TomlKind::Integer;
    e.value = std::to_string(i->get());
  } else if (auto f = n.as_floating_point()) {
    e.kind = TomlKind::Float;
    e.value = format_double(f->get());
  } else if (auto b = n.as_boolean()) {
    e.kind = TomlKind::Boolean;
    e.value = b->get() ? "true" : "false";
  }
  return e;
}
}  // namespace

TomlFile parse_toml_config(std::string_view text, const std::string& source) {
  TomlFile out;
  toml::table table;
  try {
    table = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    out.error = source + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                ": TOML syntax error: " + std::string(e.description());
    return out;
  }
  for (const auto& [key, node] : table)
    out.entries.push_back(entry_of(std::string(key.str()), node));
  // toml::table is ordered by key; report in file order so the first problem
  // an operator meets is the first in the file.
  std::stable_sort(out.entries.begin(), out.entries.end(),
                   [](const TomlEntry& a, const TomlEntry& b) { return a.line < b.line; });
  return out;
}

TomlFile read_toml_config(const std::string& path) {
  TomlFile out;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    out.error = "cannot read " + path + ": " + std::strerror(errno);
    return out;
  }
  if (!S_ISREG(st.st_mode)) {
    out.error = "cannot read " + path + ": not a regular file";
    return out;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    out.error = "cannot read " + path + ": " + std::strerror(errno);
    return out;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_toml_config(text.str(), path);
}

}  // namespace s2
