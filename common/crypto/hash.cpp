// EVP-only implementations of the primitives in hash.h. Each call fetches its
// algorithm from the default library context (EVP_Q_digest / EVP_Q_mac /
// EVP_KDF_fetch); SCRAM and FAST run a handful of these per login, so caching
// the fetched objects would buy nothing measurable.
#include "common/crypto/hash.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

namespace s2::crypto {
namespace {

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "s2_crypto: %s failed (OpenSSL default provider missing?)\n", what);
  std::abort();
}

// OpenSSL may reject a null pointer even with length 0.
const unsigned char* ptr(std::string_view s) {
  static const unsigned char kEmpty[1] = {0};
  return s.empty() ? kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

struct KdfDeleter {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

}  // namespace

size_t hash_size(HashAlg h) { return h == HashAlg::Sha1 ? 20 : 32; }

const char* hash_openssl_name(HashAlg h) { return h == HashAlg::Sha1 ? "SHA1" : "SHA256"; }

std::string digest(HashAlg h, std::string_view data) {
  std::string out(EVP_MAX_MD_SIZE, '\0');
  size_t len = 0;
  if (EVP_Q_digest(nullptr, hash_openssl_name(h), nullptr, ptr(data), data.size(),
                   reinterpret_cast<unsigned char*>(out.data()), &len) != 1)
    fatal("EVP_Q_digest");
  out.resize(len);
  return out;
}

std::string hmac(HashAlg h, std::string_view key, std::string_view data) {
  std::string out(EVP_MAX_MD_SIZE, '\0');
  size_t len = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, hash_openssl_name(h), nullptr, ptr(key), key.size(),
                ptr(data), data.size(), reinterpret_cast<unsigned char*>(out.data()), out.size(),
                &len) == nullptr)
    fatal("EVP_Q_mac(HMAC)");
  out.resize(len);
  return out;
}

std::string pbkdf2(HashAlg h, std::string_view password, std::string_view salt, uint32_t iterations,
                   size_t out_len) {
  if (out_len == 0) out_len = hash_size(h);
  std::unique_ptr<EVP_KDF, KdfDeleter> kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_PBKDF2, nullptr));
  if (!kdf) fatal("EVP_KDF_fetch(PBKDF2)");
  std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) fatal("EVP_KDF_CTX_new");
  uint64_t iter = iterations == 0 ? 1 : iterations;
  int pkcs5_mode = 1;  // 1 = no SP 800-132 lower-bound checks (salt >= 16 bytes, iter >= 1000)
  char digest_name[16];
  std::snprintf(digest_name, sizeof digest_name, "%s", hash_openssl_name(h));
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_PKCS5, &pkcs5_mode),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                        const_cast<unsigned char*>(ptr(password)), password.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<unsigned char*>(ptr(salt)),
                                        salt.size()),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_ITER, &iter),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest_name, 0),
      OSSL_PARAM_construct_end(),
  };
  std::string out(out_len, '\0');
  if (EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), out.size(), params) !=
      1)
    fatal("EVP_KDF_derive(PBKDF2)");
  return out;
}

}  // namespace s2::crypto
