// Hashes, HMAC and PBKDF2 over OpenSSL 3 EVP (EVP_Digest, EVP_MAC, EVP_KDF).
//
// SCRAM (RFC 5802 §2.2) needs H, HMAC and Hi = PBKDF2 with the hash of the
// mechanism; FAST's HT-SHA-256 (XEP-0484) needs HMAC-SHA-256; token storage
// (ARCHITECTURE.md §5 `fast_tokens`) needs SHA-256. Outputs are raw bytes.
// These cannot fail on valid arguments short of OpenSSL running out of
// memory or missing its default provider, which is a broken installation:
// they abort then, as random_bytes() does, rather than return a value that
// could be mistaken for a digest.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace s2::crypto {

enum class HashAlg { Sha1, Sha256 };

// Output length in bytes: 20 or 32.
size_t hash_size(HashAlg h);
// OpenSSL digest name: "SHA1" / "SHA256".
const char* hash_openssl_name(HashAlg h);

std::string digest(HashAlg h, std::string_view data);
inline std::string sha1(std::string_view data) { return digest(HashAlg::Sha1, data); }
inline std::string sha256(std::string_view data) { return digest(HashAlg::Sha256, data); }

std::string hmac(HashAlg h, std::string_view key, std::string_view data);

// PBKDF2-HMAC (RFC 8018 §5.2); `out_len` 0 means hash_size(h). iterations >= 1
// (0 is treated as 1). No lower bounds on salt length or iterations are
// enforced here: callers choose their policy (RFC 5802 test vectors use a
// 12-byte salt).
std::string pbkdf2(HashAlg h, std::string_view password, std::string_view salt, uint32_t iterations,
                   size_t out_len = 0);

}  // namespace s2::crypto
