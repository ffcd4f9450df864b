// SCRAM client (RFC 5802 §3, §5, §7; RFC 7677 for SHA-256), used upstream.
//
// States: Start -client_first()-> SentFirst -handle_server_first()-> SentFinal
// -handle_server_final()-> Done; any error -> Failed (sticky). The
// server-first checks follow RFC 5802 §5.1 and §7: an "m" attribute fails the
// exchange, the nonce must extend ours, the salt must be non-empty base64 and
// the count a positive number. On the stored-secret path the salt and count
// must equal the stored ones; otherwise the SaltedPassword is for another
// password (or hash parameters) and nothing is computed.
#include "common/crypto/scram.h"
#include "common/crypto/scram_detail.h"

namespace s2::crypto {

ScramClient::ScramClient(Common, HashAlg hash, std::string_view username, std::string_view cnonce)
    : hash_(hash), username_(username), cnonce_(cnonce) {
  if (cnonce_.empty()) cnonce_ = random_nonce();
  if (username_.empty() || username_.find('\0') != std::string::npos)
    fail(ScramClientError::InvalidInput, "empty user name or NUL in user name");
  else if (cnonce_.size() > kScramMaxNonce || !detail::scram_printable(cnonce_))
    fail(ScramClientError::InvalidInput, "client nonce must be printable without ','");
}

ScramClient::ScramClient(HashAlg hash, std::string_view username, std::string_view password,
                         std::string_view cnonce)
    : ScramClient(Common{}, hash, username, cnonce) {
  password_ = SecretString(std::string(password));
}

ScramClient ScramClient::with_salted_password(HashAlg hash, std::string_view username,
                                              std::string_view salted_password,
                                              std::string_view salt, uint32_t iterations,
                                              std::string_view cnonce) {
  ScramClient c(Common{}, hash, username, cnonce);
  c.salted_password_ = SecretString(std::string(salted_password));
  c.have_stored_ = true;
  c.salt_.assign(salt);
  c.iterations_ = iterations;
  if (salted_password.size() != hash_size(hash))
    c.fail(ScramClientError::InvalidInput, "stored SaltedPassword has the wrong length");
  return c;
}

bool ScramClient::fail(ScramClientError code, std::string text) {
  state_ = State::Failed;
  code_ = code;
  error_ = std::move(text);
  password_.wipe();
  expected_server_signature_.clear();
  return false;
}

std::optional<std::string> ScramClient::client_first() {
  if (state_ != State::Start) {
    if (state_ != State::Failed) fail(ScramClientError::OutOfOrder, "client_first called twice");
    return std::nullopt;
  }
  // RFC 5802 §5.1: n = saslname, r = c-nonce; gs2 header "n,," (no binding).
  client_first_bare_ = "n=" + scram_escape_saslname(username_) + ",r=" + cnonce_;
  state_ = State::SentFirst;
  return "n,," + client_first_bare_;
}

std::optional<std::string> ScramClient::handle_server_first(std::string_view msg) {
  if (!accept_server_first(msg)) return std::nullopt;
  if (!needs_salted_password()) return client_final();
  SecretString salted(scram_salted_password(hash_, password_.view(), salt_, iterations_));
  return client_final(salted.view());
}

bool ScramClient::accept_server_first(std::string_view msg) {
  if (state_ != State::SentFirst) {
    if (state_ != State::Failed) fail(ScramClientError::OutOfOrder, "unexpected server-first");
    return false;
  }
  if (msg.size() > kScramMaxMessage)
    return fail(ScramClientError::Malformed, "server-first too long");
  std::vector<detail::ScramAttr> attrs;
  if (!detail::split_scram_attrs(msg, &attrs))
    return fail(ScramClientError::Malformed, "server-first is not a list of attributes");
  if (attrs[0].name == 'm')
    return fail(ScramClientError::ExtensionUnsupported, "server requires an unsupported extension");
  if (attrs[0].name == 'e') {  // not in the grammar, but some servers do it
    server_error_.assign(attrs[0].value);
    return fail(ScramClientError::ServerError, "server error: " + server_error_);
  }
  if (attrs.size() < 3 || attrs[0].name != 'r' || attrs[1].name != 's' || attrs[2].name != 'i')
    return fail(ScramClientError::Malformed, "server-first must start with r=, s=, i=");
  std::string_view nonce = attrs[0].value;
  if (!detail::scram_printable(nonce) || nonce.size() > 2 * kScramMaxNonce)
    return fail(ScramClientError::Malformed, "server nonce is not printable");
  if (nonce.size() <= cnonce_.size() || nonce.substr(0, cnonce_.size()) != cnonce_)
    return fail(ScramClientError::NonceMismatch, "server nonce does not extend the client nonce");
  auto salt = base64_decode(attrs[1].value);
  if (!salt || salt->empty())
    return fail(ScramClientError::Malformed, "salt is not non-empty base64");
  auto iterations = detail::parse_scram_iterations(attrs[2].value);
  if (!iterations)
    return fail(ScramClientError::Malformed, "iteration count is not a positive number");
  if (have_stored_) {
    if (*salt != salt_ || *iterations != iterations_)
      return fail(ScramClientError::SaltChanged, "salt changed");
  } else {
    if (*iterations > max_iterations_)
      return fail(ScramClientError::IterationsOutOfRange,
                  "iteration count above the configured maximum");
    salt_ = std::move(*salt);
    iterations_ = *iterations;
  }
  server_first_.assign(msg);
  server_nonce_.assign(nonce);
  state_ = State::GotServerFirst;
  return true;
}

std::optional<std::string> ScramClient::client_final(std::string_view salted_password) {
  if (state_ != State::GotServerFirst) {
    if (state_ != State::Failed) fail(ScramClientError::OutOfOrder, "unexpected client_final");
    return std::nullopt;
  }
  if (!have_stored_) {
    if (salted_password.size() != hash_size(hash_)) {
      fail(ScramClientError::InvalidInput, "SaltedPassword has the wrong length");
      return std::nullopt;
    }
    salted_password_ = SecretString(std::string(salted_password));
    password_.wipe();
  }

  // RFC 5802 §3. c = base64("n,,") = "biws".
  std::string without_proof = "c=biws,r=" + server_nonce_;
  std::string auth_message = client_first_bare_;
  auth_message.append(1, ',').append(server_first_).append(1, ',').append(without_proof);
  SecretString client_key(detail::scram_client_key(hash_, salted_password_.view()));
  std::string stored_key = digest(hash_, client_key.view());
  std::string client_signature = hmac(hash_, stored_key, auth_message);
  SecretString proof(detail::xor_bytes(client_key.view(), client_signature));
  std::string server_key = detail::scram_server_key(hash_, salted_password_.view());
  expected_server_signature_ = hmac(hash_, server_key, auth_message);
  secure_wipe(server_key);
  state_ = State::SentFinal;
  return without_proof + ",p=" + base64_encode(proof.view());
}

bool ScramClient::handle_server_final(std::string_view msg) {
  if (state_ != State::SentFinal) {
    if (state_ != State::Failed) fail(ScramClientError::OutOfOrder, "unexpected server-final");
    return false;
  }
  std::vector<detail::ScramAttr> attrs;
  if (msg.size() > kScramMaxMessage || !detail::split_scram_attrs(msg, &attrs))
    return fail(ScramClientError::Malformed, "server-final is not a list of attributes");
  // RFC 5802 §7: server-final-message = (server-error / verifier) ["," extensions]
  if (attrs[0].name == 'e') {
    server_error_.assign(attrs[0].value);
    return fail(ScramClientError::ServerError, "server error: " + server_error_);
  }
  if (attrs[0].name != 'v') return fail(ScramClientError::Malformed, "server-final lacks v=");
  auto signature = base64_decode(attrs[0].value);
  if (!signature) return fail(ScramClientError::Malformed, "v= is not base64");
  if (!constant_time_equal(*signature, expected_server_signature_))
    return fail(ScramClientError::BadServerSignature, "server signature does not verify");
  state_ = State::Done;
  return true;
}

}  // namespace s2::crypto
