// TLS as a pure byte transformer over two OpenSSL memory BIOs (see tls.h).
//
// Design
// * One SSL per TlsSession, with BIO_s_mem() on each side: `in_` receives the
//   ciphertext the transport read from the socket (feed_cipher), `out_`
//   collects what OpenSSL wants sent, and flush_out() hands it to on_cipher.
//   A memory BIO never blocks and never returns WANT_WRITE, so every SSL call
//   either makes progress or reports WANT_READ ("feed me more").
// * pump() is the only place that calls into SSL for I/O and the only place
//   that fires callbacks. One step: finish the handshake if needed, read all
//   available plaintext (SSL_read until WANT_READ), encrypt the buffered
//   plaintext, send a requested close_notify, and flush `out_` after each of
//   these so the peer sees records in the order OpenSSL produced them.
// * Re-entrancy: callbacks run the owner's code, which may call write_plain(),
//   shutdown() or even feed_cipher() on this session again (a back-to-back
//   pair in the tests does exactly that). While a pump is running such calls
//   only queue their work (append to pending_plain_ / in_, set a flag) and
//   raise `again_`; the outer pump loops until nothing is queued. So SSL is
//   never entered from inside a callback, and no callback runs inside an SSL
//   call (no OpenSSL callbacks are installed).
// * Destruction from a callback is tolerated although owners are expected to
//   defer it: the destructor sets `*dead_`, a flag living on the outermost
//   pump's stack, and every path checks it right after each callback before
//   touching a member again.
// * Errors: the message is built from the OpenSSL error queue (and the
//   certificate verification result) right after the failing call, before
//   any callback can run OpenSSL code on this thread. The alert OpenSSL
//   queued is flushed to the peer first, then on_error fires once; after it
//   no callback fires and every entry point is a no-op.
// * Memory: SSL_MODE_RELEASE_BUFFERS frees OpenSSL's record buffers on idle
//   sessions; ciphertext is fed into `in_` and plaintext encrypted in 16 KiB
//   slices (one record), pumping between slices, so neither memory BIO grows
//   much beyond one record even for large transfers.
#include "common/tls/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace s2 {
namespace {

constexpr size_t kSlice = 16 * 1024;  // one TLS record of plaintext

// Drains the thread's OpenSSL error queue into "a; b; c" (most useful first).
std::string openssl_errors() {
  std::string out;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
    if ((flags & ERR_TXT_STRING) && data && *data) {
      out += " (";
      out += data;
      out += ")";
    }
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

bool set_error(std::string* error, std::string msg) {
  if (error) *error = std::move(msg);
  return false;
}

bool is_ip_literal(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// Never prompt on the terminal for a passphrase: an encrypted key is an error.
int no_passphrase(char*, int, int, void*) { return 0; }

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct ExtDeleter {
  void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, ExtDeleter>;

PkeyPtr read_private_key(const std::string& file, std::string* error) {
  ERR_clear_error();
  BioPtr bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) {
    set_error(error, "cannot open private key " + file + ": " + openssl_errors());
    return nullptr;
  }
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) set_error(error, "cannot read private key " + file + ": " + openssl_errors());
  return key;
}

// A hostname we can put into a DNS SAN and an X509V3 config string.
bool valid_domain(const std::string& d) {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.') return false;
  return std::all_of(d.begin(), d.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
  });
}

bool make_parent_dir(const std::string& file, std::string* error) {
  std::filesystem::path parent = std::filesystem::path(file).parent_path();
  if (parent.empty()) return true;
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec)
    return set_error(error, "cannot create directory " + parent.string() + ": " + ec.message());
  return true;
}

// Creates `file` exclusively with exactly `mode` and writes it with `write`.
// On any failure the partial file is removed.
template <typename WriteFn>
bool write_new_file(const std::string& file, mode_t mode, WriteFn write, std::string* error) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return set_error(error, "cannot create " + file + ": " + std::strerror(errno));
  // The umask may have removed bits (never added any); make the mode exact.
  if (::fchmod(fd, mode) != 0) {
    std::string why = std::strerror(errno);
    ::close(fd);
    ::unlink(file.c_str());
    return set_error(error, "cannot chmod " + file + ": " + why);
  }
  FILE* fp = ::fdopen(fd, "w");
  if (!fp) {
    std::string why = std::strerror(errno);
    ::close(fd);
    ::unlink(file.c_str());
    return set_error(error, "cannot open " + file + ": " + why);
  }
  ERR_clear_error();
  bool ok = write(fp) == 1;
  std::string why = ok ? "" : openssl_errors();
  if (ok && (std::fflush(fp) != 0 || ::fsync(fileno(fp)) != 0)) {
    ok = false;
    why = std::strerror(errno);
  }
  if (std::fclose(fp) != 0 && ok) {
    ok = false;
    why = std::strerror(errno);
  }
  if (!ok) {
    ::unlink(file.c_str());
    return set_error(error, "cannot write " + file + ": " + why);
  }
  return true;
}

bool add_ext(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value, std::string* error) {
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return set_error(error, std::string("cannot add certificate extension ") + OBJ_nid2sn(nid) +
                                ": " + openssl_errors());
  return true;
}

X509Ptr make_self_signed(const std::string& domain, EVP_PKEY* key, std::string* error) {
  X509Ptr cert(X509_new());
  BnPtr serial(BN_new());
  if (!cert || !serial) {
    set_error(error, "out of memory creating certificate");
    return nullptr;
  }
  // Random positive 159-bit serial (RFC 5280: at most 20 octets, non-zero).
  bool ok = X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
            BN_rand(serial.get(), 159, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1 &&
            BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr &&
            // An hour of slack for clients whose clock is slightly behind.
            X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
            X509_time_adj_ex(X509_getm_notAfter(cert.get()), 3653, 0, nullptr) != nullptr &&
            X509_set_pubkey(cert.get(), key) == 1;
  if (!ok) {
    set_error(error, "cannot build certificate: " + openssl_errors());
    return nullptr;
  }
  // CN is limited to 64 characters (RFC 5280 ub-common-name); the SAN is what
  // clients check anyway, so a longer domain gets a generic CN.
  const std::string cn = domain.size() <= 64 ? domain : "s2proxy self-signed";
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1) {
    set_error(error, "cannot set certificate name: " + openssl_errors());
    return nullptr;
  }
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  const std::string san =
      is_ip_literal(domain) ? "IP:" + domain : "DNS:" + domain + ",DNS:*." + domain;
  if (!add_ext(cert.get(), &v3, NID_basic_constraints, "critical,CA:FALSE", error) ||
      !add_ext(cert.get(), &v3, NID_key_usage, "critical,digitalSignature", error) ||
      !add_ext(cert.get(), &v3, NID_ext_key_usage, "serverAuth,clientAuth", error) ||
      !add_ext(cert.get(), &v3, NID_subject_key_identifier, "hash", error) ||
      !add_ext(cert.get(), &v3, NID_subject_alt_name, san, error))
    return nullptr;
  if (X509_sign(cert.get(), key, EVP_sha256()) <= 0) {
    set_error(error, "cannot sign certificate: " + openssl_errors());
    return nullptr;
  }
  return cert;
}

SslCtxPtr new_ctx(const SSL_METHOD* method, std::string* error) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(method));
  if (!ctx) {
    set_error(error, "SSL_CTX_new failed: " + openssl_errors());
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_default_passwd_cb(ctx.get(), no_passphrase);
  return ctx;
}

}  // namespace

// ---- contexts ----

SslCtxPtr make_server_ctx(const std::string& cert_file, const std::string& key_file,
                          std::string* error) {
  SslCtxPtr ctx = new_ctx(TLS_server_method(), error);
  if (!ctx) return nullptr;
  // No 0-RTT: tickets do not advertise early data and none is accepted, so a
  // replayed first flight (e.g. a FAST login) cannot succeed. Session
  // tickets themselves (1-RTT resumption) stay enabled.
  SSL_CTX_set_max_early_data(ctx.get(), 0);
  SSL_CTX_set_recv_max_early_data(ctx.get(), 0);

  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1) {
    set_error(error, "cannot load certificate chain " + cert_file + ": " + openssl_errors());
    return nullptr;
  }
  PkeyPtr key = read_private_key(key_file, error);
  if (!key) return nullptr;
  ERR_clear_error();
  X509* leaf = SSL_CTX_get0_certificate(ctx.get());
  if (!leaf || X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    set_error(error, "private key " + key_file + " does not match certificate " + cert_file);
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    set_error(error, "cannot use private key " + key_file + ": " + openssl_errors());
    return nullptr;
  }
  return ctx;
}

SslCtxPtr make_client_ctx(const std::string& ca_file, bool insecure, std::string* error) {
  SslCtxPtr ctx = new_ctx(TLS_client_method(), error);
  if (!ctx) return nullptr;
  if (insecure) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    return ctx;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  ERR_clear_error();
  if (ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
      set_error(error, "cannot load the system CA store: " + openssl_errors());
      return nullptr;
    }
    return ctx;
  }
  std::error_code ec;
  bool dir = std::filesystem::is_directory(ca_file, ec);
  int ok = dir ? SSL_CTX_load_verify_dir(ctx.get(), ca_file.c_str())
               : SSL_CTX_load_verify_file(ctx.get(), ca_file.c_str());
  if (ok != 1) {
    set_error(error, "cannot load CA " + std::string(dir ? "directory " : "file ") + ca_file +
                         ": " + openssl_errors());
    return nullptr;
  }
  return ctx;
}

// ---- self-signed certificate ----

bool ensure_self_signed(const std::string& domain, const std::string& cert_file,
                        const std::string& key_file, std::string* error) {
  if (cert_file == key_file)
    return set_error(error, "certificate and key must be different files: " + cert_file);
  std::error_code ec;
  const bool have_cert = std::filesystem::exists(cert_file, ec);
  const bool have_key = std::filesystem::exists(key_file, ec);
  if (have_cert && have_key) return true;  // keep whatever is there
  if (have_cert)
    // Generating a key would orphan the certificate, and overwriting a
    // certificate we did not make is not ours to do.
    return set_error(error, "certificate " + cert_file + " exists but its key " + key_file +
                                " is missing; remove the certificate to regenerate both");
  if (!valid_domain(domain))
    return set_error(error, "cannot make a certificate for domain '" + domain + "'");
  if (!make_parent_dir(key_file, error) || !make_parent_dir(cert_file, error)) return false;

  PkeyPtr key;
  if (have_key) {
    // A previous run died between the two files: certify the existing key.
    key = read_private_key(key_file, error);
    if (!key) return false;
  } else {
    ERR_clear_error();
    key.reset(EVP_EC_gen("P-256"));
    if (!key) return set_error(error, "cannot generate EC P-256 key: " + openssl_errors());
    if (!write_new_file(
            key_file, 0600,
            [&](FILE* fp) {
              return PEM_write_PrivateKey(fp, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
            },
            error))
      return false;
  }
  X509Ptr cert = make_self_signed(domain, key.get(), error);
  if (!cert) return false;
  return write_new_file(
      cert_file, 0644, [&](FILE* fp) { return PEM_write_X509(fp, cert.get()); }, error);
}

// ---- TlsSession ----

namespace {
size_t bio_capacity(BIO* b) {
  BUF_MEM* bm = nullptr;
  BIO_get_mem_ptr(b, &bm);
  return bm ? bm->max : 0;
}
}  // namespace

TlsSession::TlsSession(SSL_CTX* ctx, Role role, const std::string& server_name) : role_(role) {
  ERR_clear_error();
  ssl_ = SSL_new(ctx);
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (!ssl_ || !in_ || !out_) {
    error_ = "cannot create TLS session: " + openssl_errors();
    SSL_free(ssl_);
    BIO_free(in_);
    BIO_free(out_);
    ssl_ = nullptr;
    in_ = out_ = nullptr;
    return;
  }
  SSL_set_bio(ssl_, in_, out_);  // ssl_ owns both BIOs from here on
  if (role == Role::Server) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  if (server_name.empty()) return;
  bool ok = true;
  // SNI carries host names only (RFC 6066 §3), never address literals.
  if (!is_ip_literal(server_name)) ok = SSL_set_tlsext_host_name(ssl_, server_name.c_str()) == 1;
  if (ok && (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER)) {
    SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    ok = SSL_set1_host(ssl_, server_name.c_str()) == 1;  // also handles IP literals
  }
  if (!ok) {
    error_ = "cannot set server name '" + server_name + "': " + openssl_errors();
    SSL_free(ssl_);
    ssl_ = nullptr;
    in_ = out_ = nullptr;
  }
}

TlsSession::~TlsSession() {
  if (dead_) *dead_ = true;
  SSL_free(ssl_);
}

size_t TlsSession::release_idle() {
  size_t released = 0;
  for_each([&](TlsSession& s) { released += s.release_buffers() ? 1 : 0; });
  return released;
}

bool TlsSession::release_buffers() {
  if (!ssl_ || failed_ || in_pump_ || !handshake_done_) return false;
  bool released = false;
  if (pending_plain_.empty() && pending_plain_.capacity() > std::string().capacity()) {
    std::string().swap(pending_plain_);
    released = true;
  }
  if (BIO_ctrl_pending(in_) != 0 || BIO_ctrl_pending(out_) != 0) return released;
  if (bio_capacity(in_) == 0 && bio_capacity(out_) == 0) return released;
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  if (!in || !out) {  // keep the old ones: nothing lost but the chance to shrink
    BIO_free(in);
    BIO_free(out);
    return released;
  }
  SSL_set_bio(ssl_, in, out);  // frees the old pair
  in_ = in;
  out_ = out;
  return true;
}

void TlsSession::start() {
  if (started_ || failed_) return;
  started_ = true;
  if (role_ == Role::Client || !ssl_) pump();
}

void TlsSession::feed_cipher(const char* data, size_t len) {
  if (failed_ || peer_closed_ || len == 0) return;
  if (!ssl_) {
    pump();  // reports the construction error
    return;
  }
  if (in_pump_) {
    // Re-entrant call from one of our callbacks: queue, the outer pump reads it.
    size_t written = 0;
    if (BIO_write_ex(in_, data, len, &written) != 1 || written != len) {
      fail("out of memory buffering ciphertext");
      return;
    }
    again_ = true;
    return;
  }
  // Slice by slice, so that `in_` never holds much more than one record.
  while (len > 0 && !failed_ && !peer_closed_) {
    size_t n = std::min(len, kSlice);
    size_t written = 0;
    if (BIO_write_ex(in_, data, n, &written) != 1 || written != n) {
      fail("out of memory buffering ciphertext");
      return;
    }
    data += n;
    len -= n;
    bool dead = false;
    dead_ = &dead;
    pump();
    if (dead) return;
    dead_ = nullptr;
  }
}

void TlsSession::write_plain(const char* data, size_t len) {
  if (failed_ || shutdown_requested_ || len == 0) return;
  pending_plain_.append(data, len);
  if (handshake_done_) pump();
}

void TlsSession::shutdown() {
  if (failed_ || shutdown_requested_) return;
  shutdown_requested_ = true;
  if (handshake_done_) pump();
}

void TlsSession::pump() {
  if (in_pump_) {
    again_ = true;
    return;
  }
  if (failed_) return;
  if (!ssl_) {
    fail(error_);
    return;
  }
  // feed_cipher() may already have installed a flag of its own; reuse it so
  // that it learns about a destruction too.
  bool local_dead = false;
  bool* dead = dead_ ? dead_ : &local_dead;
  bool* outer = dead_;
  dead_ = dead;
  in_pump_ = true;
  bool ok = true;
  do {
    again_ = false;
    ok = step();
  } while (ok && again_);
  if (*dead) return;
  in_pump_ = false;
  dead_ = outer;
}

bool TlsSession::step() {
  bool* dead = dead_;
  if (!handshake_done_) {
    if (role_ == Role::Client && !started_) return true;  // waits for start()
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return flush_out();
      return fail_ssl(e, "handshake");
    }
    handshake_done_ = true;
    if (!flush_out()) return false;
    if (on_handshake_done) {
      auto cb = on_handshake_done;  // the owner may reassign it
      cb();
      if (*dead || failed_) return false;
    }
  }

  if (!peer_closed_) {
    char buf[kSlice];
    for (;;) {
      size_t n = 0;
      ERR_clear_error();
      int r = SSL_read_ex(ssl_, buf, sizeof buf, &n);
      if (r == 1) {
        if (on_plain) {
          on_plain(buf, n);
          if (*dead || failed_) return false;
        }
        continue;
      }
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ) break;
      if (e == SSL_ERROR_ZERO_RETURN) {  // close_notify
        peer_closed_ = true;
        if (!flush_out()) return false;
        if (on_close) {
          auto cb = on_close;
          cb();
          if (*dead || failed_) return false;
        }
        break;
      }
      return fail_ssl(e, "read");
    }
  }

  if (!write_pending()) return false;
  if (shutdown_requested_ && !shutdown_sent_) {
    shutdown_sent_ = true;
    ERR_clear_error();
    SSL_shutdown(ssl_);  // 0: close_notify queued, 1: both sides done
    ERR_clear_error();
  }
  return flush_out();
}

bool TlsSession::write_pending() {
  if (!handshake_done_ || shutdown_sent_ || pending_plain_.empty()) return true;
  // Callbacks fired by flush_out() may append; index by offset, not pointer.
  size_t off = 0;
  while (off < pending_plain_.size()) {
    size_t chunk = std::min(pending_plain_.size() - off, kSlice);
    size_t n = 0;
    ERR_clear_error();
    if (SSL_write_ex(ssl_, pending_plain_.data() + off, chunk, &n) != 1)
      return fail_ssl(SSL_get_error(ssl_, 0), "write");
    off += n;
    if (!flush_out()) return false;
  }
  if (pending_plain_.capacity() > 4 * kSlice) {
    std::string().swap(pending_plain_);  // give a large transfer's memory back
  } else {
    pending_plain_.clear();
  }
  return true;
}

bool TlsSession::flush_out() {
  bool* dead = dead_;
  char buf[kSlice];
  for (;;) {
    int n = BIO_read(out_, buf, sizeof buf);
    if (n <= 0) return true;
    if (on_cipher) {
      on_cipher(buf, static_cast<size_t>(n));
      if (*dead || failed_) return false;
    }
  }
}

bool TlsSession::fail_ssl(int ssl_error, const char* what) {
  // Build the message now: flushing the alert below runs callbacks, which may
  // run OpenSSL code on this thread and overwrite its error queue.
  std::string msg = std::string(what) + " failed: ";
  const bool verify_failed =
      ERR_GET_REASON(ERR_peek_error()) == SSL_R_CERTIFICATE_VERIFY_FAILED ||
      ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_CERTIFICATE_VERIFY_FAILED;
  if (ssl_error == SSL_ERROR_SSL || ERR_peek_error() != 0) {
    msg += openssl_errors();
  } else if (ssl_error == SSL_ERROR_SYSCALL) {
    msg += "unexpected end of stream";
  } else {
    msg += "SSL error " + std::to_string(ssl_error);
  }
  // The reason OpenSSL gives is just "certificate verify failed"; say why.
  long verify = SSL_get_verify_result(ssl_);
  if (verify_failed && verify != X509_V_OK) {
    msg += " (certificate verification: ";
    msg += X509_verify_cert_error_string(verify);
    msg += ")";
  }
  // Let the peer see the alert OpenSSL queued, if any.
  if (!flush_out()) return false;
  fail(msg);
  return false;
}

void TlsSession::fail(const std::string& why) {
  if (failed_) return;
  failed_ = true;
  std::string msg = why;  // `why` may be error_ itself; the callback gets a copy
  error_ = msg;
  std::string().swap(pending_plain_);
  if (on_error) {
    auto cb = on_error;
    cb(msg);  // may destroy *this: touch nothing afterwards
  }
}

std::string TlsSession::version() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

std::string TlsSession::cipher() const {
  const SSL_CIPHER* c = ssl_ ? SSL_get_current_cipher(ssl_) : nullptr;
  return c ? SSL_CIPHER_get_name(c) : "";
}

std::string TlsSession::tls_exporter() const {
  if (!ssl_ || !handshake_done_ || failed_ || SSL_version(ssl_) != TLS1_3_VERSION) return {};
  static constexpr char kLabel[] = "EXPORTER-Channel-Binding";
  std::string out(32, '\0');
  if (SSL_export_keying_material(ssl_, reinterpret_cast<unsigned char*>(out.data()), out.size(),
                                 kLabel, sizeof kLabel - 1, nullptr, 0, 0) != 1) {
    ERR_clear_error();
    return {};
  }
  return out;
}

}  // namespace s2
