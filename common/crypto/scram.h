// SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677): client, server, verifiers.
//
// Two roles, ARCHITECTURE.md §6 and PROTOCOLS.md §2:
//  * ScramClient logs the proxy in upstream as the user. On the first login it
//    has the password (from the device's PLAIN); afterwards only the vault's
//    SaltedPassword for upstream's salt and iteration count, which logs in
//    just as well (RFC 5802 §3: every later value derives from it) and is
//    useless against any other service. If upstream then announces another
//    salt or count, the password has changed or been re-hashed: the stored
//    secret is useless, the exchange stops with ScramClientError::SaltChanged
//    and the caller invalidates the vault entry (§6.3).
//  * ScramServer verifies later device logins locally against a ScramVerifier
//    (salt, iterations, StoredKey, ServerKey; RFC 5802 §2.2, §3). For an
//    unknown user the caller passes make_fake_scram_verifier(), so the
//    exchange looks the same and fails the same way as a wrong password.
//
// Channel binding: the proxy terminates TLS, so -PLUS is never offered
// (PROTOCOLS.md §1). The server accepts gs2 flag "n" and "y" (RFC 5802 §6:
// "y" = client could bind but believes we cannot, which is true) and rejects
// "p=". The client always sends "n".
//
// Not implemented: SASLprep (RFC 4013) of user names and passwords; bytes are
// used as given, which is exact for ASCII. The "m" extension is rejected as
// RFC 5802 §5.1 requires; other extensions are ignored.
//
// Errors are values: a peer's malformed or wrong message never throws. Secret
// material (password, SaltedPassword, ClientKey) is wiped when no longer
// needed. PBKDF2 runs inside ScramClient::handle_server_first() (password
// path only) and make_scram_verifier(); at 4096-10000 iterations that is a few
// milliseconds, so the daemon calls them off its event loop (the split
// accept_server_first()/client_final() form, proxy/key_deriver.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/crypto/encoding.h"
#include "common/crypto/hash.h"
#include "common/crypto/sasl_error.h"

namespace s2::crypto {

// Local verifiers use this count (RFC 7677 §4: at least 4096).
inline constexpr uint32_t kScramDefaultIterations = 10000;
// A server-first announcing more iterations than this is refused by the client
// (an upstream cannot make the proxy burn CPU on its event loop).
inline constexpr uint32_t kScramMaxIterations = 1'000'000;
// Longest SCRAM message either side accepts, and longest nonce part.
inline constexpr size_t kScramMaxMessage = 8192;
inline constexpr size_t kScramMaxNonce = 512;
// Longest user name the server accepts (a bare JID, RFC 7622 §3.1).
inline constexpr size_t kScramMaxUsername = 2 * 1023 + 1;

// "SCRAM-SHA-1" / "SCRAM-SHA-256".
const char* scram_mechanism_name(HashAlg h);
// Inverse of scram_mechanism_name(); nullopt for anything else (incl. -PLUS).
std::optional<HashAlg> scram_hash_for_mechanism(std::string_view mechanism);

// RFC 5802 §5.1 saslname: ',' -> "=2C", '=' -> "=3D".
std::string scram_escape_saslname(std::string_view name);
// nullopt for '=' not followed by "2C"/"3D", or a raw ','.
std::optional<std::string> scram_unescape_saslname(std::string_view name);

// RFC 5802 §3: SaltedPassword = Hi(password, salt, i) (PBKDF2-HMAC).
std::string scram_salted_password(HashAlg h, std::string_view password, std::string_view salt,
                                  uint32_t iterations);

// What the server stores (RFC 5802 §2.2, §3). No secret the client could log
// in with: StoredKey = H(ClientKey), ServerKey = HMAC(SaltedPassword, "Server Key").
struct ScramVerifier {
  HashAlg hash = HashAlg::Sha256;
  std::string salt;  // raw bytes
  uint32_t iterations = 0;
  std::string stored_key;  // raw bytes, hash_size(hash)
  std::string server_key;  // raw bytes, hash_size(hash)
};

ScramVerifier make_scram_verifier(HashAlg h, std::string_view password, std::string_view salt,
                                  uint32_t iterations);
// Same with a fresh random 16-byte salt.
ScramVerifier make_scram_verifier(HashAlg h, std::string_view password,
                                  uint32_t iterations = kScramDefaultIterations);
// From an already salted password (no PBKDF2).
ScramVerifier scram_verifier_from_salted_password(HashAlg h, std::string_view salted_password,
                                                  std::string_view salt, uint32_t iterations);
// A verifier no proof can match, for users that do not exist. The salt is
// derived from (`server_secret`, mechanism, `username`) so repeated attempts
// for the same unknown name see the same salt, as they would for a real
// account; `server_secret` must be stable across restarts (e.g. an HMAC of
// the vault key) and `iterations` the count real verifiers use.
ScramVerifier make_fake_scram_verifier(HashAlg h, std::string_view username,
                                       std::string_view server_secret,
                                       uint32_t iterations = kScramDefaultIterations);

enum class ScramClientError {
  None,
  InvalidInput,          // bad username/cnonce given to the constructor
  OutOfOrder,            // method called in the wrong state
  Malformed,             // server message violates RFC 5802 §7
  ServerError,           // server sent e=<value> (see server_error())
  ExtensionUnsupported,  // mandatory extension m= (RFC 5802 §5.1)
  NonceMismatch,         // server nonce does not start with ours (or adds nothing)
  IterationsOutOfRange,  // i > max_iterations
  SaltChanged,           // salt or iterations differ from the stored SaltedPassword
  BadServerSignature,    // v= does not match: the server does not know the password
};

class ScramClient {
 public:
  // Password path. `cnonce` empty = random; tests inject the RFC's.
  ScramClient(HashAlg hash, std::string_view username, std::string_view password,
              std::string_view cnonce = {});
  // Stored-secret path: SaltedPassword for upstream's `salt`/`iterations`.
  static ScramClient with_salted_password(HashAlg hash, std::string_view username,
                                          std::string_view salted_password, std::string_view salt,
                                          uint32_t iterations, std::string_view cnonce = {});

  ScramClient(ScramClient&&) = default;
  ScramClient& operator=(ScramClient&&) = default;

  // Refuse server-first counts above this (default kScramMaxIterations).
  void set_max_iterations(uint32_t max) { max_iterations_ = max; }

  // "n,,n=<saslname>,r=<cnonce>"; nullopt if the constructor inputs were
  // invalid (see error()).
  std::optional<std::string> client_first();
  // Client-final "c=biws,r=<nonce>,p=<proof>", or nullopt with error().
  // On the password path this runs PBKDF2 (Hi()) in the caller's thread.
  std::optional<std::string> handle_server_first(std::string_view server_first);
  // handle_server_first() in two steps, for callers that compute Hi()
  // elsewhere (a thread pool, a memo): accept_server_first() checks the
  // message (false with error()); then, on the password path,
  // needs_salted_password() is true and the caller passes
  // Hi(password, salt(), iterations()) to client_final(); on the
  // stored-secret path client_final() takes nothing.
  bool accept_server_first(std::string_view server_first);
  bool needs_salted_password() const { return state_ == State::GotServerFirst && !have_stored_; }
  std::optional<std::string> client_final(std::string_view salted_password = {});
  // The password path's password (until client_final() wipes it).
  std::string_view password() const { return password_.view(); }
  // True when the server proved knowledge of the credentials (v= matches,
  // compared in constant time). False with error() otherwise.
  bool handle_server_final(std::string_view server_final);

  bool done() const { return state_ == State::Done; }
  ScramClientError error_code() const { return code_; }
  const std::string& error() const { return error_; }  // "" or a description
  bool salt_changed() const { return code_ == ScramClientError::SaltChanged; }
  const std::string& server_error() const { return server_error_; }  // e= value

  // After handle_server_first() succeeded (salt()/iterations() already
  // after accept_server_first()): what to seal into the vault.
  const std::string& salted_password() const { return salted_password_.str(); }
  const std::string& salt() const { return salt_; }  // raw bytes
  uint32_t iterations() const { return iterations_; }

 private:
  enum class State { Start, SentFirst, GotServerFirst, SentFinal, Done, Failed };
  struct Common {};  // tag for the constructor both public paths share
  ScramClient(Common, HashAlg hash, std::string_view username, std::string_view cnonce);
  bool fail(ScramClientError code, std::string text);

  HashAlg hash_;
  State state_ = State::Start;
  ScramClientError code_ = ScramClientError::None;
  std::string error_, server_error_;
  std::string username_, cnonce_, client_first_bare_;
  SecretString password_;  // empty on the stored-secret path
  SecretString salted_password_;
  bool have_stored_ = false;
  std::string salt_;
  uint32_t iterations_ = 0;
  uint32_t max_iterations_ = kScramMaxIterations;
  std::string expected_server_signature_;
  std::string server_first_, server_nonce_;  // kept between the two steps
};

class ScramServer {
 public:
  // `server_nonce` empty = random (24 bytes of entropy); tests inject one.
  explicit ScramServer(HashAlg hash, std::string_view server_nonce = {});

  // Step 1. nullopt = accepted; then username()/authzid() are valid and the
  // caller looks up the verifier (or makes a fake one) for username().
  std::optional<SaslError> handle_client_first(std::string_view client_first);
  const std::string& username() const { return username_; }  // unescaped
  const std::string& authzid() const { return authzid_; }    // "" when absent

  // Step 2: the server-first message "r=..,s=..,i=..". nullopt only on caller
  // error (out of order, or a verifier of another hash): answer
  // "temporary-auth-failure" then.
  std::optional<std::string> server_first(const ScramVerifier& verifier);

  // Step 3. nullopt = authenticated; server_final() is then "v=...".
  // Errors: "malformed-request" (syntax) or "not-authorized" (wrong proof,
  // channel binding or nonce; same text for unknown users).
  std::optional<SaslError> handle_client_final(std::string_view client_final);
  const std::string& server_final() const { return server_final_; }
  bool authenticated() const { return state_ == State::Done; }
  // After handle_client_first(), before server_first(): no credential has
  // been checked yet (the caller had no verifier for username()).
  bool awaiting_verifier() const { return state_ == State::NeedVerifier; }

 private:
  enum class State { ExpectClientFirst, NeedVerifier, ExpectClientFinal, Done, Failed };
  std::optional<SaslError> fail(const char* condition, std::string text);

  HashAlg hash_;
  State state_ = State::ExpectClientFirst;
  std::string snonce_;
  std::string gs2_header_, client_first_bare_, username_, authzid_, nonce_, server_first_;
  ScramVerifier verifier_;
  std::string server_final_;
};

}  // namespace s2::crypto
