// SASL PLAIN (RFC 4616) message parsing and building.
//
// message = [authzid] NUL authcid NUL passwd (RFC 4616 §2). Exactly two NULs,
// non-empty authcid and password, UTF-8 in every field. RFC 4616 requires
// accepting 255 octets per field; we accept more, but bound every field so a
// peer cannot make us hold or forward arbitrary amounts: authzid up to a full
// JID (3 × 1023 + 2 bytes, RFC 7622 §3.1), authcid up to a bare JID
// (2 × 1023 + 1), password up to 1024 bytes. SASLprep (RFC 4013) is not
// applied: the password bytes go upstream exactly as the client sent them,
// which is what the upstream verifies (ARCHITECTURE.md §6).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/crypto/encoding.h"
#include "common/crypto/sasl_error.h"

namespace s2::crypto {

inline constexpr size_t kPlainMaxAuthzid = 3 * 1023 + 2;
inline constexpr size_t kPlainMaxAuthcid = 2 * 1023 + 1;
inline constexpr size_t kPlainMaxPassword = 1024;

struct PlainCredentials {
  std::string authzid;    // empty when absent
  std::string authcid;    // never empty
  SecretString password;  // never empty; wiped on destruction
};

// `message` is the decoded SASL payload. Failures are "malformed-request".
std::optional<PlainCredentials> parse_sasl_plain(std::string_view message,
                                                 SaslError* error = nullptr);

// authzid NUL authcid NUL password (for logging in upstream). The caller
// wipes the result (secure_wipe) once sent.
std::string build_sasl_plain(std::string_view authzid, std::string_view authcid,
                             std::string_view password);

}  // namespace s2::crypto
