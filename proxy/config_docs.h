// The flag documentation rendered from flag_docs() (config.h): the README's
// flag table and the man page deploy/s2proxy.8 are this output, checked by
// tests/integration/test_cli.py, so neither can drift from the binary.
//   build/s2proxy docs --format markdown   (README.md, "Command line")
//   build/s2proxy docs --format man > deploy/s2proxy.8
#pragma once

#include <string>

namespace s2 {

std::string flags_markdown_table();
std::string man_page();

}  // namespace s2
