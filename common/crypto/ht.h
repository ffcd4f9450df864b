// HT-SHA-256-NONE, the FAST token mechanism (XEP-0484; the "-NONE" channel
// binding variant is defined there, the HT family in
// draft-schmaus-kitten-sasl-ht). PROTOCOLS.md §1 has the wire shapes.
//
// Initial response = authcid NUL HMAC-SHA-256(key = token, "Initiator" || cb)
// with the HMAC as 32 raw bytes; success additional-data =
// HMAC-SHA-256(token, "Responder" || cb). cb-data is empty for -NONE. The key
// is the UTF-8 text of the token attribute as sent to the client, so tokens
// are generated printable (base64url). The store keeps SHA-256(token), never
// the token (ARCHITECTURE.md §5 `fast_tokens`): looking it up needs the token,
// so verification goes "client claims authcid; for each live token of that
// account, compare HMACs" — ht_verify_initiator() does one comparison.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/crypto/sasl_error.h"

namespace s2::crypto {

inline constexpr char kHtSha256None[] = "HT-SHA-256-NONE";
inline constexpr size_t kHtTokenEntropyBytes = 32;
inline constexpr size_t kHtHmacSize = 32;

// 32 random bytes, base64url without padding (43 printable characters).
std::string ht_generate_token();

// Raw 32-byte HMACs.
std::string ht_initiator_hmac(std::string_view token, std::string_view cb_data = {});
std::string ht_responder_hmac(std::string_view token, std::string_view cb_data = {});

// Constant-time check of a received initiator HMAC against `token`.
bool ht_verify_initiator(std::string_view token, std::string_view received_hmac,
                         std::string_view cb_data = {});

// SHA-256(token), 32 raw bytes: the key of the `fast_tokens` database.
std::string ht_token_hash(std::string_view token);

struct HtInitialResponse {
  std::string authcid;
  std::string hmac;  // 32 raw bytes
};
// Splits at the first NUL (the HMAC may itself contain NULs). Failures are
// "malformed-request": empty or non-UTF-8 authcid, authcid longer than a bare
// JID, no NUL, HMAC not 32 bytes.
std::optional<HtInitialResponse> parse_ht_initial_response(std::string_view message,
                                                           SaslError* error = nullptr);
std::string build_ht_initial_response(std::string_view authcid, std::string_view hmac);

}  // namespace s2::crypto
