// HT-SHA-256-NONE (XEP-0484); see ht.h.
#include "common/crypto/ht.h"

#include "common/crypto/detail.h"
#include "common/crypto/encoding.h"
#include "common/crypto/hash.h"

namespace s2::crypto {
namespace {

constexpr size_t kMaxAuthcid = 2 * 1023 + 1;

std::string ht_hmac(std::string_view token, std::string_view label, std::string_view cb) {
  std::string data;
  data.reserve(label.size() + cb.size());
  data.append(label).append(cb);
  return hmac(HashAlg::Sha256, token, data);
}

std::optional<HtInitialResponse> fail(SaslError* error, const char* text) {
  if (error) *error = SaslError{kSaslMalformedRequest, text};
  return std::nullopt;
}

}  // namespace

std::string ht_generate_token() { return base64url_encode(random_bytes(kHtTokenEntropyBytes)); }

std::string ht_initiator_hmac(std::string_view token, std::string_view cb_data) {
  return ht_hmac(token, "Initiator", cb_data);
}

std::string ht_responder_hmac(std::string_view token, std::string_view cb_data) {
  return ht_hmac(token, "Responder", cb_data);
}

bool ht_verify_initiator(std::string_view token, std::string_view received_hmac,
                         std::string_view cb_data) {
  return constant_time_equal(ht_initiator_hmac(token, cb_data), received_hmac);
}

std::string ht_token_hash(std::string_view token) { return sha256(token); }

std::optional<HtInitialResponse> parse_ht_initial_response(std::string_view message,
                                                           SaslError* error) {
  size_t nul = message.find('\0');
  if (nul == std::string_view::npos) return fail(error, "HT response lacks the NUL separator");
  std::string_view authcid = message.substr(0, nul);
  std::string_view mac = message.substr(nul + 1);
  if (authcid.empty() || authcid.size() > kMaxAuthcid || !detail::valid_utf8(authcid))
    return fail(error, "bad HT authcid");
  if (mac.size() != kHtHmacSize) return fail(error, "HT HMAC must be 32 bytes");
  return HtInitialResponse{std::string(authcid), std::string(mac)};
}

std::string build_ht_initial_response(std::string_view authcid, std::string_view hmac) {
  std::string out;
  out.reserve(authcid.size() + 1 + hmac.size());
  out.append(authcid).append(1, '\0').append(hmac);
  return out;
}

}  // namespace s2::crypto
