// Byte encodings, randomness, constant-time comparison and wiping.
//
// Byte strings are std::string throughout s2_crypto (they travel through XML
// text and LMDB values, both of which are std::string-shaped); "bytes" in a
// comment means the std::string may hold any octet including NUL.
//
// Decoders are strict because their input comes from peers (SASL payloads,
// RFC 6120 §6.4.2, and SCRAM attributes, RFC 5802 §7): RFC 4648 §4 alphabet
// only, no whitespace, length a multiple of 4, '=' only as final padding, and
// the unused bits of the last symbol zero (RFC 4648 §3.5), so every byte
// string has exactly one accepted encoding. Errors are nullopt, never thrown.
//
// Randomness comes from OpenSSL's DRBG (RAND_bytes). Its failure means the
// process cannot make a nonce, token or key safely, so random_bytes() aborts
// rather than return something predictable.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace s2::crypto {

// RFC 4648 §4, with padding.
std::string base64_encode(std::string_view bytes);
// Strict RFC 4648 §4 decoding; "" decodes to "".
std::optional<std::string> base64_decode(std::string_view text);

// RFC 4648 §5 (URL- and filename-safe alphabet), without padding. Used for
// FAST tokens, which must be printable and survive an XML attribute.
std::string base64url_encode(std::string_view bytes);
// Strict: unpadded, canonical final symbol.
std::optional<std::string> base64url_decode(std::string_view text);

// SASL payload framing in XMPP (RFC 6120 §6.4.2, XEP-0388): an empty payload
// travels as "=" and an absent one as no text. Both decode to "".
std::optional<std::string> sasl_base64_decode(std::string_view text);
// base64_encode, but "=" for an empty payload.
std::string sasl_base64_encode(std::string_view bytes);

// Lower-case hex; decoding accepts either case, rejects odd lengths.
std::string hex_encode(std::string_view bytes);
std::optional<std::string> hex_decode(std::string_view text);

// Compares without data-dependent early exit (CRYPTO_memcmp). The lengths are
// not secret: unequal lengths return false at once.
bool constant_time_equal(std::string_view a, std::string_view b);

// n bytes from the OpenSSL DRBG; aborts on DRBG failure (see above).
std::string random_bytes(size_t n);
// Printable nonce for SCRAM (RFC 5802 §5.1 "r": printable, no ','): base64 of
// `entropy_bytes` random bytes.
std::string random_nonce(size_t entropy_bytes = 18);

// Overwrites the string's whole buffer (OPENSSL_cleanse) and clears it.
void secure_wipe(std::string& s);

// Holds a secret and wipes it when destroyed or reassigned. Move-only so no
// unwiped copy is made behind the owner's back.
class SecretString {
 public:
  SecretString() = default;
  explicit SecretString(std::string s) : s_(std::move(s)) {}
  SecretString(SecretString&& o) noexcept : s_(std::move(o.s_)) { o.wipe(); }
  SecretString& operator=(SecretString&& o) noexcept {
    if (this != &o) {
      wipe();
      s_ = std::move(o.s_);
      o.wipe();
    }
    return *this;
  }
  SecretString(const SecretString&) = delete;
  SecretString& operator=(const SecretString&) = delete;
  ~SecretString() { wipe(); }

  const std::string& str() const { return s_; }
  std::string_view view() const { return s_; }
  bool empty() const { return s_.empty(); }
  size_t size() const { return s_.size(); }
  void wipe() { secure_wipe(s_); }

 private:
  std::string s_;
};

}  // namespace s2::crypto
