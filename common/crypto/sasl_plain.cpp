// SASL PLAIN (RFC 4616 §2); limits and what is not done (SASLprep) in
// sasl_plain.h.
#include "common/crypto/sasl_plain.h"

#include <algorithm>

#include "common/crypto/detail.h"

namespace s2::crypto {
namespace {

std::optional<PlainCredentials> fail(SaslError* error, const char* text) {
  if (error) *error = SaslError{kSaslMalformedRequest, text};
  return std::nullopt;
}

}  // namespace

std::optional<PlainCredentials> parse_sasl_plain(std::string_view message, SaslError* error) {
  if (std::count(message.begin(), message.end(), '\0') != 2)
    return fail(error, "PLAIN message must contain exactly two NUL separators");
  size_t nul1 = message.find('\0');
  size_t nul2 = message.find('\0', nul1 + 1);
  std::string_view authzid = message.substr(0, nul1);
  std::string_view authcid = message.substr(nul1 + 1, nul2 - nul1 - 1);
  std::string_view password = message.substr(nul2 + 1);
  if (authcid.empty()) return fail(error, "empty authcid");
  if (password.empty()) return fail(error, "empty password");
  if (authzid.size() > kPlainMaxAuthzid) return fail(error, "authzid too long");
  if (authcid.size() > kPlainMaxAuthcid) return fail(error, "authcid too long");
  if (password.size() > kPlainMaxPassword) return fail(error, "password too long");
  if (!detail::valid_utf8(authzid) || !detail::valid_utf8(authcid) || !detail::valid_utf8(password))
    return fail(error, "PLAIN fields must be UTF-8");
  PlainCredentials c;
  c.authzid.assign(authzid);
  c.authcid.assign(authcid);
  c.password = SecretString(std::string(password));
  return c;
}

std::string build_sasl_plain(std::string_view authzid, std::string_view authcid,
                             std::string_view password) {
  std::string out;
  out.reserve(authzid.size() + authcid.size() + password.size() + 2);
  out.append(authzid).append(1, '\0').append(authcid).append(1, '\0').append(password);
  return out;
}

}  // namespace s2::crypto
