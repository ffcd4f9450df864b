// TLS over OpenSSL memory BIOs, independent of any socket.
//
// The transport feeds ciphertext read from the network into feed_cipher();
// plaintext comes out through on_plain and ciphertext to send through
// on_cipher. This keeps TLS a pure byte transformer that runs on the libuv
// loop thread (no blocking sockets), for both roles: server (clients of the
// proxy: STARTTLS and direct TLS, XEP-0368) and client (upstream sessions).
// TLS >= 1.2, SSL_MODE_RELEASE_BUFFERS, no early data (0-RTT) so a replayed
// FAST login cannot succeed.
//
// Callbacks fire only from inside start()/feed_cipher()/write_plain()/
// shutdown(). From a callback the owner may call write_plain(), shutdown() or
// feed_cipher() again (the work is queued and done before the outer call
// returns) and may close its transport; it should defer destroying the
// TlsSession, although destruction from a callback is tolerated. After
// on_error no callback fires and every call is a no-op.
#pragma once

#include <openssl/ssl.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/util/thread_list.h"

namespace s2 {

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// Server context from PEM files. Returns null and sets *error on failure.
SslCtxPtr make_server_ctx(const std::string& cert_file, const std::string& key_file,
                          std::string* error);
// Client context: verify against `ca_file` (or the system store when empty)
// unless `insecure`. Returns null and sets *error on failure.
SslCtxPtr make_client_ctx(const std::string& ca_file, bool insecure, std::string* error);

// Creates (once) a self-signed certificate for `domain` (SAN domain and
// *.domain, EC P-256, 10 years) at cert_file / key_file (key mode 0600) when
// either is missing; keeps existing files. Returns false and sets *error on failure.
bool ensure_self_signed(const std::string& domain, const std::string& cert_file,
                        const std::string& key_file, std::string* error);

class TlsSession : public ThreadListed<TlsSession> {  // release_idle() walks them
 public:
  enum class Role { Server, Client };
  // For Role::Client, `server_name` is used for SNI and hostname verification.
  TlsSession(SSL_CTX* ctx, Role role, const std::string& server_name = {});
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Output callbacks; set them before start().
  std::function<void(const char*, size_t)> on_cipher;  // bytes to write to the socket
  std::function<void(const char*, size_t)> on_plain;   // decrypted application data
  std::function<void()> on_handshake_done;
  std::function<void(const std::string&)> on_error;  // fatal; the session is dead
  // The peer sent close_notify (clean end of its data, like EOF). Fires once;
  // write_plain()/shutdown() still work afterwards (TLS half-close).
  std::function<void()> on_close;

  // Client role: sends the ClientHello. Server role: no-op (waits for data).
  void start();
  // Ciphertext from the network. Callbacks may fire from inside.
  void feed_cipher(const char* data, size_t len);
  // Plaintext to encrypt; buffered until the handshake completes.
  void write_plain(const char* data, size_t len);
  void write_plain(std::string_view s) { write_plain(s.data(), s.size()); }
  // Sends close_notify after any buffered plaintext (deferred until the
  // handshake completes if it is still running). Later write_plain() calls are
  // dropped. Idempotent.
  void shutdown();

  bool handshake_done() const { return handshake_done_; }
  bool failed() const { return failed_; }
  std::string version() const;  // "TLSv1.3"
  std::string cipher() const;
  // First fatal error (what on_error received); empty while healthy.
  const std::string& error() const { return error_; }
  // The peer's close_notify was received (on_close fired).
  bool peer_closed() const { return peer_closed_; }
  // RFC 9266 "tls-exporter" channel-binding data (32 bytes) for SCRAM-PLUS;
  // empty before the handshake or when not TLS 1.3.
  std::string tls_exporter() const;

  // Memory of idle sessions (issue 12): the memory BIOs keep the capacity of the largest burst
  // they carried. Replaces the BIOs of every established session on this thread that holds no
  // buffered ciphertext either way (new ones allocate on first use) and drops spare capacity
  // of the plaintext queue. Returns how many sessions gave memory back.
  static size_t release_idle();

 private:
  bool release_buffers();
  void pump();  // drives handshake/reads, flushes the write BIO
  // The step helpers return false when the session must not be touched any
  // more (destroyed from a callback, or failed).
  bool step();
  bool flush_out();
  bool write_pending();
  bool fail_ssl(int ret, const char* what);
  void fail(const std::string& why);

  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // network -> SSL
  BIO* out_ = nullptr;  // SSL -> network
  std::string pending_plain_;
  std::string error_;
  Role role_;
  bool handshake_done_ = false;
  bool failed_ = false;
  bool started_ = false;
  bool peer_closed_ = false;
  bool shutdown_requested_ = false;
  bool shutdown_sent_ = false;
  bool in_pump_ = false;  // re-entrancy guard: nested calls only queue work
  bool again_ = false;    // work was queued while pumping
  bool* dead_ = nullptr;  // set by the destructor while a pump() is running
};

}  // namespace s2
