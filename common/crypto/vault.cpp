// AES-256-GCM sealing (EVP, OpenSSL 3) and the vault key file; see vault.h.
//
// A failed open returns nullopt and wipes whatever plaintext was decrypted
// before the tag check failed; the caller cannot tell a wrong key from a
// tampered value (GCM cannot either), which is the point.
#include "common/crypto/vault.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

namespace s2::crypto {
namespace {

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

unsigned char* u8(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }
const unsigned char* u8(std::string_view s) {
  static const unsigned char kEmpty[1] = {0};
  return s.empty() ? kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

// OpenSSL lengths are int; vault values are small, but never truncate.
bool fits_int(size_t n) { return n <= static_cast<size_t>(INT32_MAX) - 64; }

}  // namespace

std::optional<std::string> vault_seal(std::string_view key, std::string_view plaintext,
                                      std::string_view aad) {
  if (key.size() != kVaultKeySize || !fits_int(plaintext.size()) || !fits_int(aad.size()))
    return std::nullopt;
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return std::nullopt;
  std::string nonce = random_bytes(kVaultNonceSize);
  std::string out(kVaultNonceSize + plaintext.size() + kVaultTagSize, '\0');
  std::memcpy(out.data(), nonce.data(), kVaultNonceSize);
  int len = 0;
  // 96-bit IV is the GCM default length; no parameter needed.
  if (EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), u8(key), u8(std::string_view(nonce)),
                          nullptr) != 1)
    return std::nullopt;
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, u8(aad), static_cast<int>(aad.size())) != 1)
    return std::nullopt;
  unsigned char* ct = u8(out) + kVaultNonceSize;
  if (!plaintext.empty() && EVP_EncryptUpdate(ctx.get(), ct, &len, u8(plaintext),
                                              static_cast<int>(plaintext.size())) != 1)
    return std::nullopt;
  if (EVP_EncryptFinal_ex(ctx.get(), ct + plaintext.size(), &len) != 1) return std::nullopt;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
                                                           ct + plaintext.size(), kVaultTagSize),
                         OSSL_PARAM_construct_end()};
  if (EVP_CIPHER_CTX_get_params(ctx.get(), params) != 1) return std::nullopt;
  return out;
}

std::optional<std::string> vault_open(std::string_view key, std::string_view sealed,
                                      std::string_view aad) {
  if (key.size() != kVaultKeySize || sealed.size() < kVaultOverhead || !fits_int(sealed.size()) ||
      !fits_int(aad.size()))
    return std::nullopt;
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return std::nullopt;
  std::string_view nonce = sealed.substr(0, kVaultNonceSize);
  std::string_view ct = sealed.substr(kVaultNonceSize, sealed.size() - kVaultOverhead);
  std::string tag(sealed.substr(sealed.size() - kVaultTagSize));
  int len = 0;
  if (EVP_DecryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), u8(key), u8(nonce), nullptr) != 1)
    return std::nullopt;
  if (!aad.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, u8(aad), static_cast<int>(aad.size())) != 1)
    return std::nullopt;
  std::string out(ct.size(), '\0');
  if (!ct.empty() &&
      EVP_DecryptUpdate(ctx.get(), u8(out), &len, u8(ct), static_cast<int>(ct.size())) != 1) {
    secure_wipe(out);
    return std::nullopt;
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag.data(), kVaultTagSize),
      OSSL_PARAM_construct_end()};
  unsigned char final_block[16];
  if (EVP_CIPHER_CTX_set_params(ctx.get(), params) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), final_block, &len) != 1) {
    secure_wipe(out);  // GCM decrypts before it authenticates
    return std::nullopt;
  }
  return out;
}

namespace {

std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// Type, mode and size of a key file, as load_or_create_key_file() requires.
bool check_key_stat(const struct stat& st, const std::string& path, std::string* error) {
  if (!S_ISREG(st.st_mode)) {
    *error = "vault key file " + path + " is not a regular file";
    return false;
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    *error = "vault key file " + path + " has mode " + mode +
             ": it must not be accessible by group or others (chmod 600)";
    return false;
  }
  if (st.st_size != static_cast<off_t>(kVaultKeySize)) {
    *error = "vault key file " + path + " has " + std::to_string(st.st_size) +
             " bytes; a vault key is exactly 32 bytes";
    return false;
  }
  return true;
}

// Reads the key from an open descriptor after checking type, mode and size.
std::optional<SecretString> read_key(int fd, const std::string& path, std::string* error) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    *error = errno_text("cannot stat vault key file", path);
    return std::nullopt;
  }
  if (!check_key_stat(st, path, error)) return std::nullopt;
  std::string key(kVaultKeySize + 1, '\0');  // one spare byte to detect growth
  size_t got = 0;
  while (got < key.size()) {
    ssize_t n = read(fd, key.data() + got, key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      secure_wipe(key);
      *error = errno_text("cannot read vault key file", path);
      return std::nullopt;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got != kVaultKeySize) {
    secure_wipe(key);
    *error = "vault key file " + path + " changed size while being read";
    return std::nullopt;
  }
  key.resize(kVaultKeySize);
  return SecretString(std::move(key));
}

// Creates the file exclusively and fills it; nullopt + errno EEXIST when
// another process won the race.
std::optional<SecretString> create_key(const std::string& path, std::string* error) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno != EEXIST) *error = errno_text("cannot create vault key file", path);
    return std::nullopt;
  }
  SecretString key(random_bytes(kVaultKeySize));
  size_t done = 0;
  bool ok = true;
  while (ok && done < kVaultKeySize) {
    ssize_t n = write(fd, key.str().data() + done, kVaultKeySize - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      ok = false;
    else
      done += static_cast<size_t>(n);
  }
  if (ok && fsync(fd) != 0) ok = false;
  if (!ok) *error = errno_text("cannot write vault key file", path);
  close(fd);
  if (!ok) {
    unlink(path.c_str());
    errno = 0;
    return std::nullopt;
  }
  // Make the new directory entry durable too (best effort).
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  if (int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return key;
}

}  // namespace

bool check_key_file(const std::string& path, std::string* error) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return true;  // created on first start
    *error = errno_text("cannot stat vault key file", path);
    return false;
  }
  if (!check_key_stat(st, path, error)) return false;
  if (access(path.c_str(), R_OK) != 0) {
    *error = errno_text("cannot read vault key file", path);
    return false;
  }
  return true;
}

std::optional<SecretString> load_or_create_key_file(const std::string& path, std::string* error) {
  std::string ignored;
  if (!error) error = &ignored;
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      auto key = read_key(fd, path, error);
      close(fd);
      return key;
    }
    if (errno != ENOENT) {
      *error = errno_text("cannot open vault key file", path);
      return std::nullopt;
    }
    if (auto key = create_key(path, error)) return key;
    if (errno != EEXIST) return std::nullopt;  // *error set by create_key
  }
  *error = "vault key file " + path + " appeared and vanished while being created";
  return std::nullopt;
}

}  // namespace s2::crypto
