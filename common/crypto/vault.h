// The vault: AES-256-GCM sealing of upstream secrets, and the key file.
//
// ARCHITECTURE.md §5/§6: the `credentials` db holds the upstream secret (the
// SaltedPassword for upstream's SCRAM parameters, or the password where
// upstream offers PLAIN only) sealed with the key from --vault-key-file.
//
// Sealed format: nonce (12 random bytes) || ciphertext || tag (16 bytes).
// `aad` (additional authenticated data) binds a sealed value to its place,
// e.g. the account key and record version, so a value copied to another
// account's row does not open. Random 96-bit nonces are safe far beyond the
// number of credentials one key will ever seal (NIST SP 800-38D §8.3: 2^32).
//
// Key file: exactly 32 raw bytes, mode 0600. load_or_create_key_file() creates
// it with O_CREAT|O_EXCL (never overwriting: losing the key loses every
// sealed secret) and refuses a file that is not a regular file, has another
// size, or is accessible by group or others, with a message saying which.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/crypto/encoding.h"

namespace s2::crypto {

inline constexpr size_t kVaultKeySize = 32;
inline constexpr size_t kVaultNonceSize = 12;
inline constexpr size_t kVaultTagSize = 16;
inline constexpr size_t kVaultOverhead = kVaultNonceSize + kVaultTagSize;

// nullopt only if `key` is not 32 bytes (or OpenSSL fails).
std::optional<std::string> vault_seal(std::string_view key, std::string_view plaintext,
                                      std::string_view aad = {});
// nullopt for a wrong key, wrong aad, truncated or tampered input.
std::optional<std::string> vault_open(std::string_view key, std::string_view sealed,
                                      std::string_view aad = {});

// Loads the 32-byte key at `path`, creating it (0600, random) if absent.
// nullopt with *error set on any problem; never replaces an existing file.
std::optional<SecretString> load_or_create_key_file(const std::string& path, std::string* error);

// Checks an existing key file as load_or_create_key_file() would (type, mode,
// size, readable) without reading or creating anything; an absent file is
// fine (it is created on first start). For `check-config`.
bool check_key_file(const std::string& path, std::string* error);

}  // namespace s2::crypto
