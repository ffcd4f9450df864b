// Internal helpers shared by scram_client.cpp and scram_server.cpp; not API.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/crypto/hash.h"

namespace s2::crypto::detail {

// RFC 5802 §7: attr-val = ALPHA "=" value, separated by ','.
struct ScramAttr {
  char name;
  std::string_view value;
};
// False if any comma-separated piece is not ALPHA '=' value (value may be
// empty; the caller checks what each attribute needs).
bool split_scram_attrs(std::string_view msg, std::vector<ScramAttr>* out);

// RFC 5802 §7 "printable": %x21-2B / %x2D-7E (no ',').
bool scram_printable(std::string_view s);

// posit-number (no leading zero), >= 1; nullopt on syntax error or > 2^32-1.
std::optional<uint32_t> parse_scram_iterations(std::string_view s);

// RFC 5802 §3, ClientKey / StoredKey / ServerKey / signatures.
std::string scram_client_key(HashAlg h, std::string_view salted_password);
std::string scram_server_key(HashAlg h, std::string_view salted_password);
std::string xor_bytes(std::string_view a, std::string_view b);

}  // namespace s2::crypto::detail
