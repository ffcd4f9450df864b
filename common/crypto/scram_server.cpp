// SCRAM server (RFC 5802 §3, §5, §7), verifying device logins locally.
//
// States: ExpectClientFirst -handle_client_first()-> NeedVerifier
// -server_first()-> ExpectClientFinal -handle_client_final()-> Done; any error
// -> Failed (sticky, every later call fails).
//
// Failure conditions (RFC 6120 §6.5): syntax errors, including a gs2 header
// asking for channel binding ("p=", never offered) or an "m" extension, are
// "malformed-request"; a wrong channel-binding echo, nonce or proof is
// "not-authorized" with one fixed text, so an unknown user (fake verifier)
// and a wrong password give identical answers. The proof check is
// H(ClientProof XOR HMAC(StoredKey, AuthMessage)) == StoredKey, compared in
// constant time.
#include "common/crypto/detail.h"
#include "common/crypto/scram.h"
#include "common/crypto/scram_detail.h"

namespace s2::crypto {
namespace {

constexpr char kBadCredentials[] = "invalid credentials";

}  // namespace

ScramServer::ScramServer(HashAlg hash, std::string_view server_nonce)
    : hash_(hash), snonce_(server_nonce) {
  if (snonce_.empty()) snonce_ = random_nonce(24);
}

std::optional<SaslError> ScramServer::fail(const char* condition, std::string text) {
  state_ = State::Failed;
  return SaslError{condition, std::move(text)};
}

std::optional<SaslError> ScramServer::handle_client_first(std::string_view msg) {
  if (state_ != State::ExpectClientFirst) return fail(kSaslMalformedRequest, "unexpected message");
  if (msg.size() > kScramMaxMessage) return fail(kSaslMalformedRequest, "client-first too long");
  if (msg.find('\0') != std::string_view::npos)
    return fail(kSaslMalformedRequest, "NUL in client-first");

  // gs2-header = gs2-cbind-flag "," [ authzid ] ","   (RFC 5802 §7)
  if (msg.starts_with("p="))
    return fail(kSaslMalformedRequest, "channel binding requested but not offered");
  if (msg.size() < 3 || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',')
    return fail(kSaslMalformedRequest, "bad gs2 channel-binding flag");
  size_t end_authzid = msg.find(',', 2);
  if (end_authzid == std::string_view::npos)
    return fail(kSaslMalformedRequest, "gs2 header not terminated");
  std::string_view authzid = msg.substr(2, end_authzid - 2);
  if (!authzid.empty()) {
    if (!authzid.starts_with("a=")) return fail(kSaslMalformedRequest, "bad gs2 authzid");
    auto a = scram_unescape_saslname(authzid.substr(2));
    if (!a || a->empty() || a->size() > kScramMaxUsername || !detail::valid_utf8(*a))
      return fail(kSaslMalformedRequest, "bad authzid");
    authzid_ = std::move(*a);
  }
  gs2_header_.assign(msg.substr(0, end_authzid + 1));
  std::string_view bare = msg.substr(end_authzid + 1);

  // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
  std::vector<detail::ScramAttr> attrs;
  if (!detail::split_scram_attrs(bare, &attrs))
    return fail(kSaslMalformedRequest, "client-first is not a list of attributes");
  if (attrs[0].name == 'm')  // RFC 5802 §5.1: unknown mandatory extension
    return fail(kSaslMalformedRequest, "mandatory extension not supported");
  if (attrs.size() < 2 || attrs[0].name != 'n' || attrs[1].name != 'r')
    return fail(kSaslMalformedRequest, "client-first must start with n=, r=");
  auto user = scram_unescape_saslname(attrs[0].value);
  if (!user || user->empty() || user->size() > kScramMaxUsername || !detail::valid_utf8(*user))
    return fail(kSaslMalformedRequest, "bad user name");
  std::string_view cnonce = attrs[1].value;
  if (cnonce.empty() || cnonce.size() > kScramMaxNonce || !detail::scram_printable(cnonce))
    return fail(kSaslMalformedRequest, "bad client nonce");

  username_ = std::move(*user);
  client_first_bare_.assign(bare);
  nonce_.assign(cnonce).append(snonce_);
  state_ = State::NeedVerifier;
  return std::nullopt;
}

std::optional<std::string> ScramServer::server_first(const ScramVerifier& verifier) {
  if (state_ != State::NeedVerifier || verifier.hash != hash_ || verifier.iterations == 0 ||
      verifier.salt.empty() || verifier.stored_key.size() != hash_size(hash_) ||
      verifier.server_key.size() != hash_size(hash_)) {
    state_ = State::Failed;
    return std::nullopt;
  }
  verifier_ = verifier;
  server_first_ = "r=" + nonce_ + ",s=" + base64_encode(verifier.salt) +
                  ",i=" + std::to_string(verifier.iterations);
  state_ = State::ExpectClientFinal;
  return server_first_;
}

std::optional<SaslError> ScramServer::handle_client_final(std::string_view msg) {
  if (state_ != State::ExpectClientFinal) return fail(kSaslMalformedRequest, "unexpected message");
  if (msg.size() > kScramMaxMessage) return fail(kSaslMalformedRequest, "client-final too long");

  // client-final-message = channel-binding "," nonce ["," extensions] "," proof
  std::vector<detail::ScramAttr> attrs;
  if (!detail::split_scram_attrs(msg, &attrs))
    return fail(kSaslMalformedRequest, "client-final is not a list of attributes");
  if (attrs.size() < 3 || attrs[0].name != 'c' || attrs[1].name != 'r' || attrs.back().name != 'p')
    return fail(kSaslMalformedRequest, "client-final must be c=, r=, ..., p=");
  auto cbind = base64_decode(attrs[0].value);
  if (!cbind) return fail(kSaslMalformedRequest, "c= is not base64");
  auto proof = base64_decode(attrs.back().value);
  if (!proof || proof->size() != hash_size(hash_))
    return fail(kSaslMalformedRequest, "p= is not a base64 proof of the hash length");
  // No channel binding data follows the header: c= must echo it exactly
  // ("biws" for "n,,", "eSws" for "y,,").
  if (*cbind != gs2_header_) return fail(kSaslNotAuthorized, kBadCredentials);
  if (attrs[1].value != nonce_) return fail(kSaslNotAuthorized, kBadCredentials);

  // RFC 5802 §3.
  std::string_view without_proof = msg.substr(0, msg.size() - attrs.back().value.size() - 3);
  std::string auth_message = client_first_bare_;
  auth_message.append(1, ',').append(server_first_).append(1, ',').append(without_proof);
  std::string client_signature = hmac(hash_, verifier_.stored_key, auth_message);
  SecretString client_key(detail::xor_bytes(*proof, client_signature));
  if (!constant_time_equal(digest(hash_, client_key.view()), verifier_.stored_key))
    return fail(kSaslNotAuthorized, kBadCredentials);
  server_final_ = "v=" + base64_encode(hmac(hash_, verifier_.server_key, auth_message));
  state_ = State::Done;
  return std::nullopt;
}

}  // namespace s2::crypto
