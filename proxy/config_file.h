// The TOML config file (--config), read with toml++ (Debian libtomlplusplus),
// so syntax errors are TOML's own, with line and column.
//
// s2proxy's file is flat: every key is a flag name without "--", every value
// a string, integer, float or boolean. Tables, arrays and dates are reported
// as wrong types by the caller, which knows what each key must hold.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace s2 {

enum class TomlKind { String, Integer, Float, Boolean, Other };

struct TomlEntry {
  std::string key;
  std::string value;  // as the flag would take it: "starttls", "64", "0.5", "true"
  TomlKind kind;
  int line = 0;
};

struct TomlFile {
  std::vector<TomlEntry> entries;  // in file order
  std::string error;               // "" = parsed; else one line with file:line:column
};

// `source` names the text in messages (the file's path).
TomlFile parse_toml_config(std::string_view text, const std::string& source);
TomlFile read_toml_config(const std::string& path);

}  // namespace s2
