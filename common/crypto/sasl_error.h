// A SASL failure as a value: the RFC 6120 §6.5 condition element name the
// session puts in <failure/> (SASL1 and SASL2 alike), plus a short text for
// logs. The text never contains credentials, and for authentication failures
// it is the same whether the user exists or not; it is still meant for logs,
// not for the peer.
#pragma once

#include <string>

namespace s2::crypto {

struct SaslError {
  std::string condition;  // "malformed-request", "not-authorized", ...
  std::string text;
};

inline constexpr char kSaslMalformedRequest[] = "malformed-request";
inline constexpr char kSaslNotAuthorized[] = "not-authorized";
inline constexpr char kSaslIncorrectEncoding[] = "incorrect-encoding";

}  // namespace s2::crypto
