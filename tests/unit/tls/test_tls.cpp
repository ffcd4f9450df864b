// Unit tests for common/tls: self-signed certificate generation, context
// setup, and two TlsSessions (client and server) wired back to back in memory.
//
// Two wirings: "direct" feeds each side's ciphertext into the other from
// inside on_cipher (so every callback re-enters the peer, and through it
// ourselves: the re-entrancy the daemon relies on), "queued" collects
// ciphertext and lets the test deliver it, in any slicing (byte by byte) or
// after tampering with it.
#include <doctest/doctest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/tls/tls.h"

namespace fs = std::filesystem;
using s2::TlsSession;

namespace {

const std::string kDomain = "example.test";

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/s2_tls_test.XXXXXX";
    char* p = mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string slurp(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mode_t file_mode(const std::string& file) {
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr load_cert(const std::string& file) {
  FILE* fp = std::fopen(file.c_str(), "r");
  REQUIRE(fp != nullptr);
  X509Ptr x(PEM_read_X509(fp, nullptr, nullptr, nullptr));
  std::fclose(fp);
  REQUIRE(x);
  return x;
}

std::vector<std::string> dns_sans(X509* x) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type != GEN_DNS) continue;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                     ASN1_STRING_length(n->d.dNSName));
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// A generated certificate/key pair plus server and client contexts.
struct Certs {
  TempDir dir;
  std::string cert = dir.path + "/tls/" + kDomain + ".crt";
  std::string key = dir.path + "/tls/" + kDomain + ".key";
  s2::SslCtxPtr server;
  Certs() {
    std::string error;
    REQUIRE_MESSAGE(s2::ensure_self_signed(kDomain, cert, key, &error), error);
    server = s2::make_server_ctx(cert, key, &error);
    REQUIRE_MESSAGE(server, error);
  }
  s2::SslCtxPtr client(bool verify) const {
    std::string error;
    auto ctx = s2::make_client_ctx(verify ? cert : "", !verify, &error);
    REQUIRE_MESSAGE(ctx, error);
    return ctx;
  }
};

// One side of a pair and everything its callbacks reported.
struct Endpoint {
  std::unique_ptr<TlsSession> tls;
  std::string plain;
  std::vector<std::string> events;  // "handshake", "close", "error: ..."
  std::string error;
  int handshakes = 0;
  int closes = 0;
  int errors = 0;
  int after_error = 0;  // callbacks that fired after on_error (must stay 0)
  void note_callback() {
    if (errors) ++after_error;
  }
};

struct Pair {
  enum class Wire { Direct, Queued };
  Endpoint server, client;
  std::string to_server, to_client;  // queued ciphertext
  Wire wire;

  Pair(SSL_CTX* server_ctx, SSL_CTX* client_ctx, const std::string& server_name,
       Wire w = Wire::Direct)
      : wire(w) {
    server.tls = std::make_unique<TlsSession>(server_ctx, TlsSession::Role::Server);
    client.tls = std::make_unique<TlsSession>(client_ctx, TlsSession::Role::Client, server_name);
    hook(server, client, to_client);
    hook(client, server, to_server);
  }

  void hook(Endpoint& self, Endpoint& peer, std::string& queue) {
    self.tls->on_cipher = [this, &self, &peer, &queue](const char* d, size_t n) {
      self.note_callback();
      if (wire == Wire::Queued) {
        queue.append(d, n);
      } else if (peer.tls) {
        peer.tls->feed_cipher(d, n);
      }
    };
    self.tls->on_plain = [&self](const char* d, size_t n) {
      self.note_callback();
      self.plain.append(d, n);
      self.events.push_back("plain");
    };
    self.tls->on_handshake_done = [&self] {
      self.note_callback();
      ++self.handshakes;
      self.events.push_back("handshake");
    };
    self.tls->on_close = [&self] {
      self.note_callback();
      ++self.closes;
      self.events.push_back("close");
    };
    self.tls->on_error = [&self](const std::string& why) {
      self.note_callback();
      ++self.errors;
      self.error = why;
      self.events.push_back("error: " + why);
    };
  }

  // Queued wiring: delivers ciphertext in pieces of at most `piece` bytes
  // until neither side has anything left to say.
  void deliver(size_t piece = SIZE_MAX) {
    for (int round = 0; round < 10000 && !(to_server.empty() && to_client.empty()); ++round) {
      feed(to_server, server, piece);
      feed(to_client, client, piece);
    }
    CHECK(to_server.empty());
    CHECK(to_client.empty());
  }
  static void feed(std::string& queue, Endpoint& to, size_t piece) {
    std::string batch;
    batch.swap(queue);  // feeding may queue more
    for (size_t off = 0; off < batch.size() && to.tls; off += piece)
      to.tls->feed_cipher(batch.data() + off, std::min(piece, batch.size() - off));
  }

  void start() {
    client.tls->start();
    server.tls->start();
    if (wire == Wire::Queued) deliver();
  }
  bool established() const { return server.tls->handshake_done() && client.tls->handshake_done(); }
  void check_no_late_callbacks() const {
    CHECK(server.after_error == 0);
    CHECK(client.after_error == 0);
  }
};

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("ensure_self_signed creates a P-256 SHA-256 cert for domain and *.domain") {
  TempDir dir;
  const std::string cert = dir.path + "/a/b/srv.crt";  // parent dirs do not exist yet
  const std::string key = dir.path + "/a/b/srv.key";
  std::string error;
  REQUIRE_MESSAGE(s2::ensure_self_signed(kDomain, cert, key, &error), error);

  CHECK(file_mode(key) == 0600);
  CHECK(file_mode(cert) == 0644);
  CHECK(slurp(key).find("-----BEGIN PRIVATE KEY-----") == 0);
  CHECK(slurp(cert).find("-----BEGIN CERTIFICATE-----") == 0);

  X509Ptr x = load_cert(cert);
  CHECK(X509_get_version(x.get()) == X509_VERSION_3);
  char cn[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x.get()), NID_commonName, cn, sizeof cn);
  CHECK(std::string(cn) == kDomain);
  CHECK(X509_NAME_cmp(X509_get_subject_name(x.get()), X509_get_issuer_name(x.get())) == 0);
  CHECK(dns_sans(x.get()) == std::vector<std::string>{kDomain, "*." + kDomain});
  CHECK(X509_check_host(x.get(), kDomain.c_str(), 0, 0, nullptr) == 1);
  CHECK(X509_check_host(x.get(), "xmpp.example.test", 0, 0, nullptr) == 1);
  CHECK(X509_check_host(x.get(), "a.b.example.test", 0, 0, nullptr) != 1);
  CHECK(X509_check_host(x.get(), "example.org", 0, 0, nullptr) != 1);
  CHECK(X509_get_signature_nid(x.get()) == NID_ecdsa_with_SHA256);

  EVP_PKEY* pub = X509_get0_pubkey(x.get());
  REQUIRE(pub != nullptr);
  CHECK(EVP_PKEY_is_a(pub, "EC"));
  char group[64] = {0};
  REQUIRE(EVP_PKEY_get_group_name(pub, group, sizeof group, nullptr) == 1);
  CHECK(std::string(group) == "prime256v1");

  int days = 0, secs = 0;
  REQUIRE(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x.get()), X509_get0_notAfter(x.get())) ==
          1);
  CHECK(days >= 3650);
  CHECK(days <= 3660);
  CHECK(X509_cmp_current_time(X509_get0_notBefore(x.get())) < 0);  // valid now
  CHECK(X509_cmp_current_time(X509_get0_notAfter(x.get())) > 0);

  // The pair works as a server identity (make_server_ctx checks they match).
  CHECK_MESSAGE(s2::make_server_ctx(cert, key, &error), error);
}

TEST_CASE("ensure_self_signed keeps an existing pair untouched") {
  TempDir dir;
  const std::string cert = dir.path + "/c.crt", key = dir.path + "/c.key";
  std::string error;
  REQUIRE(s2::ensure_self_signed(kDomain, cert, key, &error));
  const std::string cert1 = slurp(cert), key1 = slurp(key);
  struct stat before {};
  REQUIRE(::stat(key.c_str(), &before) == 0);

  REQUIRE_MESSAGE(s2::ensure_self_signed(kDomain, cert, key, &error), error);
  CHECK(slurp(cert) == cert1);
  CHECK(slurp(key) == key1);
  struct stat after {};
  REQUIRE(::stat(key.c_str(), &after) == 0);
  CHECK(after.st_ino == before.st_ino);
  CHECK(file_mode(key) == 0600);

  // Even for another domain: existing files are the operator's.
  REQUIRE(s2::ensure_self_signed("other.test", cert, key, &error));
  CHECK(slurp(cert) == cert1);
}

TEST_CASE("ensure_self_signed with only one of the two files") {
  TempDir dir;
  const std::string cert = dir.path + "/c.crt", key = dir.path + "/c.key";
  std::string error;
  REQUIRE(s2::ensure_self_signed(kDomain, cert, key, &error));
  const std::string key1 = slurp(key);

  SUBCASE("key without certificate: certify the existing key") {
    fs::remove(cert);
    REQUIRE_MESSAGE(s2::ensure_self_signed(kDomain, cert, key, &error), error);
    CHECK(slurp(key) == key1);
    CHECK(file_mode(cert) == 0644);
    CHECK_MESSAGE(s2::make_server_ctx(cert, key, &error), error);
  }
  SUBCASE("certificate without key: refuse, keep the certificate") {
    const std::string cert1 = slurp(cert);
    fs::remove(key);
    CHECK_FALSE(s2::ensure_self_signed(kDomain, cert, key, &error));
    CHECK(error.find("missing") != std::string::npos);
    CHECK(slurp(cert) == cert1);
    CHECK_FALSE(fs::exists(key));
  }
}

TEST_CASE("ensure_self_signed rejects unusable domains and unwritable paths") {
  TempDir dir;
  std::string error;
  for (const char* bad : {"", "evil.test,DNS:bank.test", "sp ace.test", ".lead.test"}) {
    CAPTURE(bad);
    error.clear();
    CHECK_FALSE(s2::ensure_self_signed(bad, dir.path + "/x.crt", dir.path + "/x.key", &error));
    CHECK_FALSE(error.empty());
    CHECK_FALSE(fs::exists(dir.path + "/x.key"));
  }
  CHECK_FALSE(
      s2::ensure_self_signed(kDomain, dir.path + "/same.pem", dir.path + "/same.pem", &error));
  CHECK_FALSE(fs::exists(dir.path + "/same.pem"));
  // A regular file where the directory should be.
  std::ofstream(dir.path + "/file") << "x";
  error.clear();
  CHECK_FALSE(
      s2::ensure_self_signed(kDomain, dir.path + "/file/c.crt", dir.path + "/file/c.key", &error));
  CHECK_FALSE(error.empty());
}

TEST_CASE("make_server_ctx: settings and error messages") {
  Certs c;
  SSL_CTX* ctx = c.server.get();
  CHECK(SSL_CTX_get_min_proto_version(ctx) == TLS1_2_VERSION);
  CHECK((SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION) != 0);
  CHECK((SSL_CTX_get_options(ctx) & SSL_OP_NO_COMPRESSION) != 0);
  CHECK((SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET) == 0);
  CHECK((SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS) != 0);
  CHECK(SSL_CTX_get_max_early_data(ctx) == 0);
  CHECK(SSL_CTX_get_recv_max_early_data(ctx) == 0);

  std::string error;
  CHECK_FALSE(s2::make_server_ctx(c.dir.path + "/nope.crt", c.key, &error));
  CHECK(error.find("nope.crt") != std::string::npos);
  CHECK_FALSE(s2::make_server_ctx(c.cert, c.dir.path + "/nope.key", &error));
  CHECK(error.find("nope.key") != std::string::npos);

  // Key from another pair.
  const std::string cert2 = c.dir.path + "/2.crt", key2 = c.dir.path + "/2.key";
  REQUIRE(s2::ensure_self_signed(kDomain, cert2, key2, &error));
  CHECK_FALSE(s2::make_server_ctx(c.cert, key2, &error));
  CHECK(error.find("does not match") != std::string::npos);

  // Garbage PEM.
  std::ofstream(c.dir.path + "/junk.pem") << "not a certificate\n";
  CHECK_FALSE(s2::make_server_ctx(c.dir.path + "/junk.pem", c.key, &error));
  CHECK(error.find("junk.pem") != std::string::npos);
  CHECK_FALSE(s2::make_server_ctx(c.cert, c.dir.path + "/junk.pem", &error));
  CHECK(error.find("junk.pem") != std::string::npos);
}

TEST_CASE("make_client_ctx: verification modes and errors") {
  Certs c;
  auto verifying = c.client(true);
  CHECK(SSL_CTX_get_verify_mode(verifying.get()) == SSL_VERIFY_PEER);
  CHECK(SSL_CTX_get_min_proto_version(verifying.get()) == TLS1_2_VERSION);
  CHECK((SSL_CTX_get_mode(verifying.get()) & SSL_MODE_RELEASE_BUFFERS) != 0);
  auto insecure = c.client(false);
  CHECK(SSL_CTX_get_verify_mode(insecure.get()) == SSL_VERIFY_NONE);

  std::string error;
  CHECK_MESSAGE(s2::make_client_ctx("", false, &error), error);    // system store
  CHECK(s2::make_client_ctx(c.dir.path + "/tls", false, &error));  // CA directory
  CHECK_FALSE(s2::make_client_ctx(c.dir.path + "/missing.pem", false, &error));
  CHECK(error.find("missing.pem") != std::string::npos);
}

TEST_CASE("handshake completes in memory; TLS 1.3 by default") {
  Certs c;
  auto client_ctx = c.client(false);
  Pair p(c.server.get(), client_ctx.get(), kDomain);
  CHECK_FALSE(p.server.tls->handshake_done());
  p.start();
  REQUIRE(p.established());
  CHECK(p.server.handshakes == 1);
  CHECK(p.client.handshakes == 1);
  CHECK(p.server.tls->version() == "TLSv1.3");
  CHECK(p.client.tls->version() == "TLSv1.3");
  CHECK_FALSE(p.client.tls->cipher().empty());
  CHECK(p.client.tls->cipher() == p.server.tls->cipher());
  CHECK(p.server.errors == 0);
  CHECK(p.client.errors == 0);
  CHECK_FALSE(p.server.tls->failed());

  const std::string cb = p.client.tls->tls_exporter();
  CHECK(cb.size() == 32);
  CHECK(cb == p.server.tls->tls_exporter());

  // A second connection gets different channel-binding data.
  Pair q(c.server.get(), client_ctx.get(), kDomain);
  q.start();
  REQUIRE(q.established());
  CHECK(q.client.tls->tls_exporter() != cb);
}

TEST_CASE("data flows both ways, small and 1 MiB in chunks") {
  Certs c;
  auto client_ctx = c.client(false);
  for (auto wire : {Pair::Wire::Direct, Pair::Wire::Queued}) {
    CAPTURE(static_cast<int>(wire));
    Pair p(c.server.get(), client_ctx.get(), kDomain, wire);
    p.start();
    REQUIRE(p.established());

    p.client.tls->write_plain("<stream:stream to='example.test'>");
    p.server.tls->write_plain(std::string_view("<stream:stream from='example.test'>"));
    if (wire == Pair::Wire::Queued) p.deliver();
    CHECK(p.server.plain == "<stream:stream to='example.test'>");
    CHECK(p.client.plain == "<stream:stream from='example.test'>");
    p.server.plain.clear();
    p.client.plain.clear();

    const std::string up = random_bytes(1 << 20, 1), down = random_bytes(1 << 20, 2);
    // Uneven chunk sizes, interleaved directions.
    size_t off = 0, step = 1;
    while (off < up.size()) {
      size_t n = std::min(step, up.size() - off);
      p.client.tls->write_plain(up.data() + off, n);
      p.server.tls->write_plain(down.data() + off, n);
      off += n;
      step = step * 3 + 7;
      if (step > 70000) step = 1;
      if (wire == Pair::Wire::Queued) p.deliver(4096);
    }
    CHECK(p.server.plain.size() == up.size());
    CHECK(p.server.plain == up);
    CHECK(p.client.plain.size() == down.size());
    CHECK(p.client.plain == down);
    CHECK(p.server.errors + p.client.errors == 0);
  }
}

TEST_CASE("ciphertext delivered one byte at a time") {
  Certs c;
  auto client_ctx = c.client(true);  // with verification, so the whole chain is parsed
  Pair p(c.server.get(), client_ctx.get(), kDomain, Pair::Wire::Queued);
  p.client.tls->start();
  p.deliver(1);
  REQUIRE(p.established());

  const std::string up = random_bytes(40000, 3), down = random_bytes(20000, 4);
  p.client.tls->write_plain(up);
  p.server.tls->write_plain(down);
  p.deliver(1);
  CHECK(p.server.plain == up);
  CHECK(p.client.plain == down);
  CHECK(p.server.errors + p.client.errors == 0);
}

TEST_CASE("write_plain before the handshake is delivered after it, in order") {
  Certs c;
  auto client_ctx = c.client(false);
  for (auto wire : {Pair::Wire::Direct, Pair::Wire::Queued}) {
    CAPTURE(static_cast<int>(wire));
    Pair p(c.server.get(), client_ctx.get(), kDomain, wire);
    p.client.tls->write_plain("one ");  // before start(): nothing is sent yet
    CHECK(p.to_server.empty());
    p.server.tls->write_plain("server first");
    p.client.tls->start();
    p.client.tls->write_plain("two");  // handshake under way (or done, if direct)
    if (wire == Pair::Wire::Queued) {
      CHECK_FALSE(p.client.tls->handshake_done());
      p.deliver();
    }
    REQUIRE(p.established());
    CHECK(p.server.plain == "one two");
    CHECK(p.client.plain == "server first");
  }
}

TEST_CASE("shutdown sends close_notify; the peer gets on_close after the data") {
  Certs c;
  auto client_ctx = c.client(false);
  Pair p(c.server.get(), client_ctx.get(), kDomain);
  p.start();
  REQUIRE(p.established());

  p.client.tls->write_plain("last words");
  p.client.tls->shutdown();
  p.client.tls->shutdown();               // idempotent
  p.client.tls->write_plain("too late");  // dropped after shutdown
  CHECK(p.server.plain == "last words");
  CHECK(p.server.closes == 1);
  CHECK(p.server.tls->peer_closed());
  REQUIRE(p.server.events.size() >= 2);
  CHECK(p.server.events.back() == "close");
  CHECK(p.server.events[p.server.events.size() - 2] == "plain");
  CHECK(p.client.closes == 0);

  // Half-close: the server may still answer, then close its side.
  p.server.tls->write_plain("bye");
  p.server.tls->shutdown();
  CHECK(p.client.plain == "bye");
  CHECK(p.client.closes == 1);
  CHECK(p.server.closes == 1);
  CHECK(p.server.errors + p.client.errors == 0);

  // Data after close_notify is ignored, without callbacks.
  const size_t events = p.server.events.size();
  p.server.tls->feed_cipher("\x17\x03\x03\x00\x05hello", 10);
  CHECK(p.server.events.size() == events);
}

TEST_CASE("shutdown requested during the handshake is sent after it") {
  Certs c;
  auto client_ctx = c.client(false);
  Pair p(c.server.get(), client_ctx.get(), kDomain, Pair::Wire::Queued);
  p.client.tls->start();
  p.client.tls->write_plain("queued");
  p.client.tls->shutdown();
  p.deliver();
  REQUIRE(p.established());
  CHECK(p.server.plain == "queued");
  CHECK(p.server.closes == 1);
}

TEST_CASE("client verification: right host, wildcard, wrong host, unknown CA") {
  Certs c;
  auto verifying = c.client(true);

  SUBCASE("hostname = domain") {
    Pair p(c.server.get(), verifying.get(), kDomain);
    p.start();
    CHECK(p.established());
    CHECK(p.client.errors == 0);
  }
  SUBCASE("hostname covered by the wildcard") {
    Pair p(c.server.get(), verifying.get(), "conference.example.test");
    p.start();
    CHECK(p.established());
  }
  SUBCASE("wrong hostname") {
    Pair p(c.server.get(), verifying.get(), "other.example");
    p.start();
    CHECK_FALSE(p.client.tls->handshake_done());
    CHECK(p.client.handshakes == 0);
    CHECK(p.client.errors == 1);
    CHECK(p.client.tls->failed());
    CHECK(p.client.error.find("hostname mismatch") != std::string::npos);
    CHECK(p.client.tls->error() == p.client.error);
    // The client's alert reached the server, which fails too.
    CHECK(p.server.errors == 1);
    CHECK(p.server.error.find("alert") != std::string::npos);
    CHECK_FALSE(p.server.tls->handshake_done());
    p.check_no_late_callbacks();
    // A dead session ignores everything.
    p.client.tls->write_plain("x");
    p.client.tls->feed_cipher("garbage", 7);
    p.client.tls->shutdown();
    CHECK(p.client.errors == 1);
    p.check_no_late_callbacks();
  }
  SUBCASE("no hostname still checks the chain") {
    Pair p(c.server.get(), verifying.get(), "");
    p.start();
    CHECK(p.established());
  }
  SUBCASE("certificate not in the trust store") {
    std::string error;
    auto system = s2::make_client_ctx("", false, &error);
    REQUIRE(system);
    Pair p(c.server.get(), system.get(), kDomain);
    p.start();
    CHECK(p.client.errors == 1);
    CHECK(p.client.error.find("certificate verify failed") != std::string::npos);
    CHECK(p.client.error.find("(certificate verification: self-signed certificate)") !=
          std::string::npos);
    p.check_no_late_callbacks();
  }
}

TEST_CASE("garbage ciphertext makes the server fail cleanly") {
  Certs c;
  for (const std::string& junk :
       {std::string("GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"),
        std::string("<?xml version='1.0'?><stream:stream>"), random_bytes(5000, 5),
        std::string("\x16\x03\x01\xff\xff", 5) + random_bytes(70000, 6)}) {
    CAPTURE(junk.size());
    Endpoint server;
    server.tls = std::make_unique<TlsSession>(c.server.get(), TlsSession::Role::Server);
    std::string sent;
    server.tls->on_cipher = [&](const char* d, size_t n) {
      server.note_callback();
      sent.append(d, n);
    };
    server.tls->on_plain = [&](const char*, size_t) { server.note_callback(); };
    server.tls->on_handshake_done = [&] { server.note_callback(); };
    server.tls->on_error = [&](const std::string& why) {
      server.note_callback();
      ++server.errors;
      server.error = why;
    };
    server.tls->start();
    server.tls->feed_cipher(junk.data(), junk.size());
    CHECK(server.errors == 1);
    CHECK(server.tls->failed());
    CHECK_FALSE(server.error.empty());
    CHECK(server.error.find("handshake failed") == 0);
    server.tls->feed_cipher(junk.data(), junk.size());
    server.tls->write_plain("x");
    CHECK(server.errors == 1);
    CHECK(server.after_error == 0);
  }
}

TEST_CASE("a corrupted record after the handshake fails the receiver") {
  Certs c;
  auto client_ctx = c.client(false);
  Pair p(c.server.get(), client_ctx.get(), kDomain, Pair::Wire::Queued);
  p.start();
  REQUIRE(p.established());
  p.client.tls->write_plain("hello, tampered world");
  REQUIRE(p.to_server.size() > 10);
  p.to_server[p.to_server.size() - 3] ^= 0x40;
  p.deliver();
  CHECK(p.server.plain.empty());
  CHECK(p.server.errors == 1);
  CHECK(p.server.error.find("read failed") == 0);
  CHECK(p.server.error.find("bad record mac") != std::string::npos);
  CHECK(p.client.error.find("certificate verification") == std::string::npos);
  CHECK(p.client.errors == 1);  // it received the server's alert
  p.check_no_late_callbacks();
}

TEST_CASE("TLS versions: 1.1-only client refused, 1.2 accepted") {
  Certs c;
  SUBCASE("TLS 1.1") {
    auto old = c.client(false);
    // Security level 0 so this client can offer TLS 1.1 at all.
    REQUIRE(SSL_CTX_set_cipher_list(old.get(), "DEFAULT:@SECLEVEL=0") == 1);
    REQUIRE(SSL_CTX_set_min_proto_version(old.get(), TLS1_1_VERSION) == 1);
    REQUIRE(SSL_CTX_set_max_proto_version(old.get(), TLS1_1_VERSION) == 1);
    Pair p(c.server.get(), old.get(), kDomain);
    p.start();
    CHECK_FALSE(p.server.tls->handshake_done());
    CHECK(p.server.errors == 1);
    CHECK(p.server.error.find("unsupported protocol") != std::string::npos);
    CHECK(p.client.errors == 1);
    p.check_no_late_callbacks();
  }
  SUBCASE("TLS 1.2") {
    auto tls12 = c.client(true);
    REQUIRE(SSL_CTX_set_max_proto_version(tls12.get(), TLS1_2_VERSION) == 1);
    Pair p(c.server.get(), tls12.get(), kDomain);
    p.start();
    REQUIRE(p.established());
    CHECK(p.client.tls->version() == "TLSv1.2");
    CHECK(p.server.tls->version() == "TLSv1.2");
    CHECK(p.client.tls->tls_exporter().empty());  // RFC 9266 wants TLS 1.3 here
    p.client.tls->write_plain("over 1.2");
    CHECK(p.server.plain == "over 1.2");
  }
}

TEST_CASE("callbacks may call back into the session (echo server)") {
  Certs c;
  auto client_ctx = c.client(false);
  for (auto wire : {Pair::Wire::Direct, Pair::Wire::Queued}) {
    CAPTURE(static_cast<int>(wire));
    Pair p(c.server.get(), client_ctx.get(), kDomain, wire);
    TlsSession& srv = *p.server.tls;
    srv.on_handshake_done = [&] {
      ++p.server.handshakes;
      srv.write_plain("welcome;");
    };
    srv.on_plain = [&](const char* d, size_t n) {
      std::string s(d, n);
      p.server.plain += s;
      srv.write_plain("echo:" + s + ";");
      if (p.server.plain.find("quit") != std::string::npos) srv.shutdown();
    };
    p.client.tls->on_handshake_done = [&] {
      ++p.client.handshakes;
      p.client.tls->write_plain("hi");  // written from inside the handshake callback
    };
    p.start();
    REQUIRE(p.established());
    if (wire == Pair::Wire::Queued) p.deliver();
    CHECK(p.client.plain == "welcome;echo:hi;");
    p.client.tls->write_plain("quit");
    if (wire == Pair::Wire::Queued) p.deliver();
    CHECK(p.client.plain == "welcome;echo:hi;echo:quit;");
    CHECK(p.client.closes == 1);
    CHECK(p.server.errors + p.client.errors == 0);
  }
}

TEST_CASE("the owner may destroy the session from inside a callback") {
  Certs c;
  auto client_ctx = c.client(false);

  SUBCASE("from on_plain") {
    Pair p(c.server.get(), client_ctx.get(), kDomain);
    p.start();
    REQUIRE(p.established());
    int calls = 0;
    p.server.tls->on_plain = [&](const char*, size_t) {
      ++calls;
      p.server.tls.reset();
    };
    p.client.tls->write_plain(random_bytes(100000, 7));  // many records, one feed
    CHECK(calls == 1);
    CHECK(p.server.tls == nullptr);
  }
  SUBCASE("from on_error") {
    auto server = std::make_unique<TlsSession>(c.server.get(), TlsSession::Role::Server);
    int errors = 0;
    server->on_error = [&](const std::string&) {
      ++errors;
      server.reset();
    };
    const std::string junk = random_bytes(50000, 8);
    server->feed_cipher(junk.data(), junk.size());
    CHECK(errors == 1);
    CHECK(server == nullptr);
  }
  SUBCASE("from on_handshake_done, with data behind it") {
    Pair p(c.server.get(), client_ctx.get(), kDomain, Pair::Wire::Queued);
    p.client.tls->write_plain("early");
    p.client.tls->start();
    p.server.tls->on_handshake_done = [&] { p.server.tls.reset(); };
    p.deliver();
    CHECK(p.server.tls == nullptr);
  }
}

TEST_CASE("idle sessions give their buffers back and carry on, even mid-record") {
  Certs c;
  auto client_ctx = c.client(false);
  Pair p(c.server.get(), client_ctx.get(), kDomain, Pair::Wire::Queued);
  p.start();
  REQUIRE(p.established());
  const std::string burst = random_bytes(64 * 1024, 7);
  p.client.tls->write_plain(burst);
  p.server.tls->write_plain(burst);
  p.deliver(4096);
  REQUIRE(p.server.plain == burst);
  REQUIRE(p.client.plain == burst);
  CHECK(TlsSession::release_idle() >= 2);  // both ends carried a burst
  CHECK(TlsSession::release_idle() == 0);  // nothing left to give back

  // Half a record reaches the server, then the buffers go, then the rest.
  p.server.plain.clear();
  p.client.tls->write_plain("<message><body>after the release</body></message>");
  REQUIRE(p.to_server.size() > 2);
  const std::string record = std::exchange(p.to_server, {});
  p.server.tls->feed_cipher(record.data(), record.size() / 2);
  TlsSession::release_idle();
  p.server.tls->feed_cipher(record.data() + record.size() / 2, record.size() - record.size() / 2);
  CHECK(p.server.plain == "<message><body>after the release</body></message>");
  p.client.plain.clear();
  p.server.tls->write_plain("<r/>");
  p.deliver();
  CHECK(p.client.plain == "<r/>");
  CHECK(p.server.errors + p.client.errors == 0);
}
