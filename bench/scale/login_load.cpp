// login_load: an XMPP login load client cheap enough not to be the bottleneck
// of a login benchmark (bench/scale/bench_fast.py drives it).
//
//   login_load --devices FILE --mode fast|sasl2-plain|legacy-plain --port P
//              --cafile CA [--host 127.0.0.1] [--domain legacy.test]
//              [--concurrency 20] [--rate R] [--hold S] [--timeout S] [--out FILE]
//
// FILE has one device per line, tab-separated: source address, user, password,
// resource tag, user-agent id, FAST token or "-", FAST count. Each device
// connects from its source address, does STARTTLS and one of:
//   sasl2-plain   SASL2 PLAIN + Bind2 + <request-token/> (XEP-0388/0386/0484)
//   fast          SASL2 HT-SHA-256-NONE with the device's token and count
//   legacy-plain  SASL1 PLAIN, stream restart, resource bind (+ session iq)
// which is the wire format of bench/relay/axmpp.py (login_sasl2, login_plain).
// Login time runs from the TCP connect to <success/> (SASL2) or the bind
// result (legacy). A logged-in device sends <presence/> and stays connected,
// reading and discarding, until every login is done and --hold seconds more;
// then it sends </stream:stream> and a TLS close_notify.
//
// Output: when the last login is done, --out gets one line per device (index,
// ok|fail, ms, new FAST token or "-", error) and stdout one JSON line with the
// summary (a driver samples the servers' CPU when it reads it); at exit a
// second JSON line reports the close. Exit status 1 if any login failed.
//
// The escaping, base64 and the HT-SHA-256-NONE proof are the proxy's own
// (s2_xml, s2_crypto), so the client speaks exactly what the server parses.
//
// Cost: one thread, one SSL_CTX, TLS through memory BIOs so reads and writes
// are plain libuv calls (uv_try_write first: no allocation in the common
// case), expat only until the login is done.
#include <expat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/crypto/encoding.h"
#include "common/crypto/ht.h"
#include "common/xml/stanza.h"

namespace {

// Expat reports namespaced names as "namespace local" (separator ' ').
constexpr std::string_view kFeatures = "http://etherx.jabber.org/streams features";
constexpr std::string_view kStreamError = "http://etherx.jabber.org/streams error";
constexpr std::string_view kTlsProceed = "urn:ietf:params:xml:ns:xmpp-tls proceed";
constexpr std::string_view kTlsNs = "urn:ietf:params:xml:ns:xmpp-tls ";
constexpr std::string_view kSasl2Success = "urn:xmpp:sasl:2 success";
constexpr std::string_view kSasl2Ns = "urn:xmpp:sasl:2 ";
constexpr std::string_view kSasl2Authz = "urn:xmpp:sasl:2 authorization-identifier";
constexpr std::string_view kSasl1Success = "urn:ietf:params:xml:ns:xmpp-sasl success";
constexpr std::string_view kSasl1Ns = "urn:ietf:params:xml:ns:xmpp-sasl ";
constexpr std::string_view kFastToken = "urn:xmpp:fast:0 token";
constexpr std::string_view kSession = "urn:ietf:params:xml:ns:xmpp-session session";
constexpr std::string_view kSessionOptional = "urn:ietf:params:xml:ns:xmpp-session optional";
constexpr std::string_view kIq = "jabber:client iq";

constexpr size_t kMaxDetail = 300;       // bytes of a failure's text kept for the report
constexpr uint64_t kCloseGraceNs = 5e9;  // a closing device waits this long for the server's EOF
constexpr uint64_t kSweepMs = 200;       // login deadlines and close graces are checked this often
constexpr size_t kIoBuf = 64 * 1024;

enum class Mode { Sasl2Plain, Fast, LegacyPlain };

struct Options {
  std::string devices_file, out_file, host = "127.0.0.1", domain = "legacy.test", cafile;
  int port = 0;
  Mode mode = Mode::Fast;
  size_t concurrency = 20;
  double rate = 0;  // login starts per second, 0 = only the concurrency cap
  double hold = 0;  // seconds the devices stay connected after the last login
  double timeout = 60;
};

struct Device {
  std::string addr, user, password, tag, ua, token;
  long count = 0;
};

struct Result {
  bool ok = false;
  double ms = 0;
  std::string token;  // the new FAST token, if the success carried one
  std::string error;
};

double seconds_since(uint64_t t0) { return (uv_hrtime() - t0) / 1e9; }

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string ssl_error_text() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// The local name of an expat "namespace local" name.
std::string_view local_name(std::string_view name) {
  const size_t sp = name.rfind(' ');
  return sp == std::string_view::npos ? name : name.substr(sp + 1);
}

const char* attr(const XML_Char** atts, std::string_view key) {
  for (; *atts; atts += 2) {
    if (key == atts[0]) return atts[1];
  }
  return nullptr;
}

// What the login needs to know of one top-level element (a child of the stream).
struct Top {
  std::string name, type, id, token, authz;
  std::string detail;  // child names and text: the reason of a failure or error
  bool session_required = false;
};

class Run;

// One device: one TCP connection, its TLS session and its stream parser.
class Conn {
 public:
  Conn(Run& run, size_t index);
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn();

  void start();
  void close_gracefully();
  void sweep(uint64_t now);

 private:
  enum class State {
    Connecting,
    PlainFeatures,
    Proceed,
    Handshake,
    SecureFeatures,
    Auth,
    BoundFeatures,
    Bind,
    Session,
    Held,     // logged in; incoming data is decrypted and dropped
    Closing,  // </stream:stream> sent, waiting for the server's EOF
    Done,     // the handle is closed or closing
  };

  bool logging_in() const { return state_ < State::Held; }
  bool alive() const { return state_ != State::Done; }

  // I/O.
  static void on_connect(uv_connect_t* req, int status);
  static void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_closed(uv_handle_t* h);
  void read(const char* data, size_t n);
  void read_tls();
  void send(std::string_view text);
  void send_raw(const char* data, size_t n);
  void flush_tls();
  void close_now();

  // The login's steps.
  void open_stream(bool with_from);
  void begin_tls();
  void handshake();
  void send_auth();
  void on_top();
  void logged_in();
  void fail(std::string why);
  void finish_login(bool ok, std::string error);

  // The parser.
  void reset_parser();
  void stop_parser() { XML_StopParser(parser_, XML_FALSE); }
  void feed(const char* data, size_t n);
  static void XMLCALL on_start(void* self, const XML_Char* name, const XML_Char** atts);
  static void XMLCALL on_end(void* self, const XML_Char* name);
  static void XMLCALL on_text(void* self, const XML_Char* s, int len);

  Run& run_;
  const size_t index_;
  State state_ = State::Connecting;
  uv_tcp_t tcp_{};
  uv_connect_t connect_req_{};
  uv_shutdown_t shutdown_req_{};
  bool handle_open_ = false;
  uint64_t started_ = 0, closing_since_ = 0;
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // ciphertext from the socket, owned by ssl_
  BIO* wbio_ = nullptr;  // ciphertext for the socket, owned by ssl_
  XML_Parser parser_ = nullptr;
  bool parser_reset_due_ = false;  // a stream restart: reset once XML_Parse returns
  int depth_ = 0;
  bool in_authz_ = false, in_session_ = false, session_optional_ = false, keep_detail_ = false;
  Top top_;
};

// The whole run: devices, pacing, results and the summary.
class Run {
 public:
  Run(Options opts, std::vector<Device> devices, SSL_CTX* ctx);
  int exec();

  const Options& opts() const { return opts_; }
  const Device& device(size_t i) const { return devices_[i]; }
  uv_loop_t* loop() { return &loop_; }
  SSL_CTX* ssl_ctx() const { return ctx_; }
  static char* read_buffer() { return read_buf_; }
  static char* plain_buffer() { return plain_buf_; }

  void login_finished(size_t index, Result r);
  void conn_opened() { ++open_conns_; }
  void conn_closed();
  void count_dropped() { ++dropped_; }
  void count_close_timeout() { ++close_timeouts_; }

 private:
  void pump();
  bool take_token();
  void all_logins_done();
  void close_all();
  void maybe_stop();
  std::string summary_json() const;
  void write_results() const;

  Options opts_;
  std::vector<Device> devices_;
  SSL_CTX* ctx_;
  uv_loop_t loop_{};
  uv_timer_t pace_timer_{}, sweep_timer_{}, hold_timer_{};
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<Result> results_;
  size_t next_ = 0, in_flight_ = 0, finished_ = 0, open_conns_ = 0;
  size_t dropped_ = 0, close_timeouts_ = 0;
  bool closing_ = false, stopped_ = false;
  double tokens_ = 1, burst_ = 1;
  uint64_t last_refill_ = 0, t0_ = 0, t_done_ = 0;
  double cpu0_ = 0, cpu_logins_ = 0;
  static char read_buf_[kIoBuf];
  static char plain_buf_[kIoBuf];
};

char Run::read_buf_[kIoBuf];
char Run::plain_buf_[kIoBuf];

// ---- Conn: I/O ------------------------------------------------------------

Conn::Conn(Run& run, size_t index) : run_(run), index_(index) {}

Conn::~Conn() {
  if (ssl_) SSL_free(ssl_);
  if (parser_) XML_ParserFree(parser_);
}

void Conn::start() {
  started_ = uv_hrtime();
  const Device& d = run_.device(index_);
  if (run_.opts().mode == Mode::Fast && d.token == "-")
    return fail("no FAST token for this device");
  sockaddr_in src{}, dst{};
  if (uv_ip4_addr(d.addr.c_str(), 0, &src) != 0) return fail("bad source address " + d.addr);
  uv_ip4_addr(run_.opts().host.c_str(), run_.opts().port, &dst);
  int rc = uv_tcp_init_ex(run_.loop(), &tcp_, AF_INET);
  if (rc != 0) return fail(std::string("socket: ") + uv_strerror(rc));
  handle_open_ = true;
  run_.conn_opened();
  tcp_.data = this;
  // The source port is picked at connect(), per destination: bind() alone
  // would reserve one per source address whatever the destination.
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) == 0) {
    const int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  }
  uv_tcp_nodelay(&tcp_, 1);
  rc = uv_tcp_bind(&tcp_, reinterpret_cast<const sockaddr*>(&src), 0);
  if (rc == 0) {
    connect_req_.data = this;
    rc = uv_tcp_connect(&connect_req_, &tcp_, reinterpret_cast<const sockaddr*>(&dst), on_connect);
  }
  if (rc != 0) fail(std::string("connect: ") + uv_strerror(rc));
}

void Conn::on_connect(uv_connect_t* req, int status) {
  auto* c = static_cast<Conn*>(req->data);
  if (!c->alive()) return;
  if (status < 0) return c->fail(std::string("connect: ") + uv_strerror(status));
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp_), on_alloc, on_read);
  c->parser_ = XML_ParserCreateNS(nullptr, ' ');
  c->reset_parser();
  c->state_ = State::PlainFeatures;
  c->open_stream(false);  // no 'from' in cleartext, as axmpp.py
}

// Every read is consumed before the next one starts: one shared buffer.
void Conn::on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  *buf = uv_buf_init(Run::read_buffer(), kIoBuf);
}

void Conn::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(s->data);
  if (nread == 0 || !c->alive()) return;
  if (nread > 0) return c->read(buf->base, static_cast<size_t>(nread));
  switch (c->state_) {
    case State::Held:
      c->run_.count_dropped();
      return c->close_now();
    case State::Closing:
      return c->close_now();
    default:
      return c->fail(nread == UV_EOF ? "connection closed by the server"
                                     : std::string("read: ") + uv_strerror(nread));
  }
}

void Conn::read(const char* data, size_t n) {
  if (state_ == State::Closing) return;  // the close is sent: nothing left to read
  if (!ssl_) return feed(data, n);
  if (BIO_write(rbio_, data, static_cast<int>(n)) != static_cast<int>(n)) {
    return fail("BIO_write failed");
  }
  if (state_ == State::Handshake) {
    handshake();
    if (state_ == State::Handshake || !alive()) return;
  }
  read_tls();
}

void Conn::read_tls() {
  for (;;) {
    const int r = SSL_read(ssl_, Run::plain_buffer(), kIoBuf);
    if (r > 0) {
      if (logging_in()) feed(Run::plain_buffer(), static_cast<size_t>(r));
      if (!alive()) return;
      continue;
    }
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ) break;
    if (e == SSL_ERROR_ZERO_RETURN && !logging_in()) {
      if (state_ == State::Held) run_.count_dropped();
      return close_now();
    }
    return fail(e == SSL_ERROR_ZERO_RETURN ? "TLS closed by the server"
                                           : "TLS read: " + ssl_error_text());
  }
  flush_tls();  // TLS 1.3 may answer post-handshake messages (key update)
}

void Conn::send(std::string_view text) {
  if (!ssl_) return send_raw(text.data(), text.size());
  // A memory BIO grows as needed: SSL_write never wants to wait here.
  if (SSL_write(ssl_, text.data(), static_cast<int>(text.size())) <= 0) {
    return fail("TLS write: " + ssl_error_text());
  }
  flush_tls();
}

void Conn::flush_tls() {
  const size_t pending = BIO_ctrl_pending(wbio_);
  if (pending == 0) return;
  static std::string scratch;
  scratch.resize(pending);
  const int n = BIO_read(wbio_, scratch.data(), static_cast<int>(pending));
  if (n > 0) send_raw(scratch.data(), static_cast<size_t>(n));
}

struct WriteReq {
  uv_write_t req;
  Conn* conn;
  std::string data;
};

// uv_try_write first: on loopback the whole buffer almost always goes at once,
// and only a remainder is copied into a queued write.
void Conn::send_raw(const char* data, size_t n) {
  if (!alive()) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  uv_buf_t b = uv_buf_init(const_cast<char*>(data), n);
  const int w = uv_try_write(stream, &b, 1);
  if (w >= 0 && static_cast<size_t>(w) == n) return;
  if (w < 0 && w != UV_EAGAIN) return fail(std::string("write: ") + uv_strerror(w));
  const size_t done = w > 0 ? static_cast<size_t>(w) : 0;
  auto* req = new WriteReq{{}, this, std::string(data + done, n - done)};
  req->req.data = req;
  b = uv_buf_init(req->data.data(), req->data.size());
  const int rc = uv_write(&req->req, stream, &b, 1, on_write);
  if (rc != 0) {
    delete req;
    fail(std::string("write: ") + uv_strerror(rc));
  }
}

void Conn::on_write(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  Conn* c = w->conn;
  delete w;
  if (status < 0 && status != UV_ECANCELED && c->logging_in()) {
    c->fail(std::string("write: ") + uv_strerror(status));
  }
}

void Conn::close_now() {
  if (state_ == State::Done) return;
  state_ = State::Done;
  if (parser_) stop_parser();
  if (handle_open_) uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_closed);
}

void Conn::on_closed(uv_handle_t* h) { static_cast<Conn*>(h->data)->run_.conn_closed(); }

void Conn::close_gracefully() {
  if (state_ != State::Held) return;
  send("</stream:stream>");
  SSL_shutdown(ssl_);  // queues close_notify; the server's is not awaited
  flush_tls();
  if (!alive()) return;
  state_ = State::Closing;
  closing_since_ = uv_hrtime();
  shutdown_req_.data = this;
  // FIN once the queued writes are out; the server answers with its EOF.
  if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_),
                  [](uv_shutdown_t*, int) {}) != 0) {
    close_now();
  }
}

void Conn::sweep(uint64_t now) {
  if (logging_in() && now - started_ > run_.opts().timeout * 1e9) {
    fail("timeout in state " + std::to_string(static_cast<int>(state_)));
  } else if (state_ == State::Closing && now - closing_since_ > kCloseGraceNs) {
    run_.count_close_timeout();
    close_now();
  }
}

// ---- Conn: the login --------------------------------------------------------

void Conn::open_stream(bool with_from) {
  const auto& o = run_.opts();
  std::string h =
      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
      "xmlns:stream='http://etherx.jabber.org/streams' to='" +
      s2::xml_escape(o.domain) + "'";
  // The proxy pre-connects the upstream session of a secured stream whose
  // header names a known account (client_session.cpp maybe_preconnect).
  if (with_from) h += " from='" + s2::xml_escape(run_.device(index_).user + "@" + o.domain) + "'";
  h += " version='1.0'>";
  send(h);
}

void Conn::begin_tls() {
  ssl_ = SSL_new(run_.ssl_ctx());
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  // An empty read BIO means "wait for more", not end of file.
  BIO_set_mem_eof_return(rbio_, -1);
  SSL_set_bio(ssl_, rbio_, wbio_);
  SSL_set_connect_state(ssl_);
  const std::string& domain = run_.opts().domain;
  SSL_set_tlsext_host_name(ssl_, domain.c_str());
  SSL_set1_host(ssl_, domain.c_str());
  state_ = State::Handshake;
  handshake();
}

void Conn::handshake() {
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    // The client Finished goes out with the stream header: one write, one segment.
    state_ = State::SecureFeatures;
    open_stream(run_.opts().mode != Mode::LegacyPlain);
    return;
  }
  flush_tls();
  if (SSL_get_error(ssl_, r) != SSL_ERROR_WANT_READ) {
    const long v = SSL_get_verify_result(ssl_);
    fail("TLS handshake: " +
         (v != X509_V_OK ? std::string(X509_verify_cert_error_string(v)) : ssl_error_text()));
  }
}

void Conn::send_auth() {
  const Device& d = run_.device(index_);
  const Mode mode = run_.opts().mode;
  if (mode == Mode::LegacyPlain) {
    send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
         s2::crypto::base64_encode(std::string(1, '\0') + d.user + '\0' + d.password) + "</auth>");
    return;
  }
  const std::string ua =
      "<user-agent id='" + s2::xml_escape(d.ua) + "'><software>s2bench</software></user-agent>";
  const std::string bind =
      "<bind xmlns='urn:xmpp:bind:0'><tag>" + s2::xml_escape(d.tag) + "</tag></bind>";
  if (mode == Mode::Sasl2Plain) {
    send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>" +
         s2::crypto::base64_encode(std::string(1, '\0') + d.user + '\0' + d.password) +
         "</initial-response>" + ua + bind +
         "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/></authenticate>");
    return;
  }
  send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>" +
       s2::crypto::base64_encode(d.user + '\0' + s2::crypto::ht_initiator_hmac(d.token)) +
       "</initial-response>" + ua + bind + "<fast xmlns='urn:xmpp:fast:0' count='" +
       std::to_string(d.count) + "'/></authenticate>");
}

// One complete child of the stream, in the light of where the login is.
void Conn::on_top() {
  const std::string_view name = top_.name;
  if (name == kStreamError) return fail("stream error: " + top_.detail);
  switch (state_) {
    case State::PlainFeatures:
      if (name != kFeatures) return;
      send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      state_ = State::Proceed;
      return;
    case State::Proceed:
      if (name == kTlsProceed) {
        parser_reset_due_ = true;  // the secured stream is a new document
        stop_parser();             // nothing follows <proceed/> in cleartext
        return begin_tls();
      }
      if (name.starts_with(kTlsNs)) return fail("STARTTLS refused: " + top_.detail);
      return;
    case State::SecureFeatures:
      if (name != kFeatures) return;
      send_auth();
      state_ = State::Auth;
      return;
    case State::Auth:
      if (name == kSasl2Success) {
        // Bind2 bound the device: the identifier is its full JID.
        if (top_.authz.find('/') == std::string::npos) {
          return fail("SASL2 success without a full JID: '" + top_.authz + "'");
        }
        return logged_in();
      }
      if (name == kSasl1Success) {
        parser_reset_due_ = true;
        stop_parser();
        open_stream(false);
        state_ = State::BoundFeatures;
        return;
      }
      if (name.starts_with(kSasl2Ns) || name.starts_with(kSasl1Ns)) {
        return fail("SASL " + std::string(local_name(name)) + ": " + top_.detail);
      }
      return;
    case State::BoundFeatures:
      if (name != kFeatures) return;
      session_optional_ = !top_.session_required;
      send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" +
           s2::xml_escape(run_.device(index_).tag) + "</resource></bind></iq>");
      state_ = State::Bind;
      return;
    case State::Bind:
    case State::Session: {
      const char* want = state_ == State::Bind ? "b" : "s";
      if (name != kIq || top_.id != want) return;
      if (top_.type != "result")
        return fail(std::string(want) + " iq " + top_.type + ": " + top_.detail);
      if (state_ == State::Session || session_optional_) return logged_in();
      send("<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
      state_ = State::Session;
      return;
    }
    default:
      return;
  }
}

void Conn::logged_in() {
  stop_parser();  // whatever follows is dropped unparsed
  state_ = State::Held;
  finish_login(true, {});
  send("<presence/>");
}

// A failure after the login (a write error while held) only loses the device.
void Conn::fail(std::string why) {
  const State was = state_;
  close_now();
  if (was < State::Held) {
    finish_login(false, std::move(why));
  } else if (was == State::Held) {
    run_.count_dropped();
  }
}

void Conn::finish_login(bool ok, std::string error) {
  Result r;
  r.ok = ok;
  r.ms = seconds_since(started_) * 1e3;
  if (ok) r.token = std::move(top_.token);
  r.error = std::move(error);
  run_.login_finished(index_, std::move(r));
}

// ---- Conn: the parser -------------------------------------------------------

// XML_ParserReset clears the handlers too.
void Conn::reset_parser() {
  XML_ParserReset(parser_, nullptr);
  XML_SetUserData(parser_, this);
  XML_SetElementHandler(parser_, on_start, on_end);
  XML_SetCharacterDataHandler(parser_, on_text);
  depth_ = 0;
  parser_reset_due_ = false;
}

void Conn::feed(const char* data, size_t n) {
  if (XML_Parse(parser_, data, static_cast<int>(n), XML_FALSE) != XML_STATUS_OK) {
    // Stopped on purpose: a stream restart, a login's end, or a failure.
    if (XML_GetErrorCode(parser_) != XML_ERROR_ABORTED) {
      return fail(std::string("XML: ") + XML_ErrorString(XML_GetErrorCode(parser_)));
    }
    if (parser_reset_due_ && alive()) reset_parser();
  }
}

void XMLCALL Conn::on_start(void* self, const XML_Char* name, const XML_Char** atts) {
  auto* c = static_cast<Conn*>(self);
  const std::string_view n = name;
  if (++c->depth_ < 2) return;  // the stream header
  Top& t = c->top_;
  if (c->depth_ == 2) {
    t = Top{};
    t.name = n;
    c->keep_detail_ = n != kFeatures;
    if (const char* v = attr(atts, "type")) t.type = v;
    if (const char* v = attr(atts, "id")) t.id = v;
    return;
  }
  if (c->depth_ == 3) {
    if (n == kFastToken) {
      if (const char* v = attr(atts, "token")) t.token = v;
    }
    c->in_authz_ = n == kSasl2Authz;
    c->in_session_ = n == kSession;
    if (c->in_session_) t.session_required = true;
  } else if (c->depth_ == 4 && c->in_session_ && n == kSessionOptional) {
    t.session_required = false;
  }
  if (c->keep_detail_ && t.detail.size() < kMaxDetail) {
    t.detail += '<';
    t.detail += local_name(n);
    t.detail += '>';
  }
}

void XMLCALL Conn::on_end(void* self, const XML_Char*) {
  auto* c = static_cast<Conn*>(self);
  if (c->depth_ == 3) c->in_authz_ = c->in_session_ = false;
  if (c->depth_-- == 2) c->on_top();
  if (c->depth_ == 0 && c->logging_in()) c->fail("stream closed by the server");
}

void XMLCALL Conn::on_text(void* self, const XML_Char* s, int len) {
  auto* c = static_cast<Conn*>(self);
  if (c->in_authz_) {
    c->top_.authz.append(s, len);
  } else if (c->keep_detail_ && c->depth_ >= 3 && c->top_.detail.size() < kMaxDetail) {
    c->top_.detail.append(s, std::min<size_t>(len, kMaxDetail));
  }
}

// ---- Run --------------------------------------------------------------------

Run::Run(Options opts, std::vector<Device> devices, SSL_CTX* ctx)
    : opts_(std::move(opts)), devices_(std::move(devices)), ctx_(ctx) {
  uv_loop_init(&loop_);
  results_.resize(devices_.size());
  conns_.resize(devices_.size());
  // A burst of 10 ms of logins absorbs the timer's millisecond granularity.
  burst_ = std::max(1.0, opts_.rate * 0.01);
}

int Run::exec() {
  for (uv_timer_t* t : {&pace_timer_, &sweep_timer_, &hold_timer_}) {
    uv_timer_init(&loop_, t);
    t->data = this;
  }
  uv_timer_start(
      &sweep_timer_,
      [](uv_timer_t* t) {
        auto* run = static_cast<Run*>(t->data);
        const uint64_t now = uv_hrtime();
        for (auto& c : run->conns_) {
          if (c) c->sweep(now);
        }
      },
      kSweepMs, kSweepMs);
  cpu0_ = cpu_seconds();
  t0_ = last_refill_ = uv_hrtime();
  if (devices_.empty()) all_logins_done();
  pump();
  uv_run(&loop_, UV_RUN_DEFAULT);
  conns_.clear();  // frees the SSL sessions and parsers
  uv_loop_close(&loop_);
  std::printf(
      "{\"event\": \"closed\", \"dropped_during_hold\": %zu, \"close_timeouts\": %zu, "
      "\"cpu_seconds_total\": %.3f}\n",
      dropped_, close_timeouts_, cpu_seconds() - cpu0_);
  const bool all_ok = std::all_of(results_.begin(), results_.end(), [](auto& r) { return r.ok; });
  return all_ok ? 0 : 1;
}

// Starts logins while the concurrency cap and the token bucket allow.
void Run::pump() {
  while (next_ < devices_.size() && in_flight_ < opts_.concurrency) {
    if (opts_.rate > 0 && !take_token()) {
      if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&pace_timer_))) {
        const double wait_ms = std::ceil((1.0 - tokens_) / opts_.rate * 1e3);
        uv_timer_start(
            &pace_timer_, [](uv_timer_t* t) { static_cast<Run*>(t->data)->pump(); },
            static_cast<uint64_t>(wait_ms), 0);
      }
      return;
    }
    const size_t i = next_++;
    ++in_flight_;
    conns_[i] = std::make_unique<Conn>(*this, i);
    conns_[i]->start();
  }
}

bool Run::take_token() {
  const uint64_t now = uv_hrtime();
  tokens_ = std::min(burst_, tokens_ + (now - last_refill_) / 1e9 * opts_.rate);
  last_refill_ = now;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

void Run::login_finished(size_t index, Result r) {
  results_[index] = std::move(r);
  --in_flight_;
  if (++finished_ == devices_.size()) return all_logins_done();
  pump();
}

void Run::all_logins_done() {
  t_done_ = uv_hrtime();
  cpu_logins_ = cpu_seconds() - cpu0_;
  write_results();
  std::printf("%s\n", summary_json().c_str());
  std::fflush(stdout);
  uv_timer_start(
      &hold_timer_, [](uv_timer_t* t) { static_cast<Run*>(t->data)->close_all(); },
      static_cast<uint64_t>(opts_.hold * 1e3), 0);
}

void Run::close_all() {
  closing_ = true;
  for (auto& c : conns_) {
    if (c) c->close_gracefully();
  }
  maybe_stop();
}

void Run::conn_closed() {
  --open_conns_;
  maybe_stop();
}

// The loop ends once every connection is closed after the hold: the timers go too.
void Run::maybe_stop() {
  if (!closing_ || open_conns_ > 0 || stopped_) return;
  stopped_ = true;
  for (uv_timer_t* t : {&pace_timer_, &sweep_timer_, &hold_timer_}) {
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
  }
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double k = (sorted.size() - 1) * p / 100.0;
  const size_t lo = static_cast<size_t>(k);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo);
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::Sasl2Plain:
      return "sasl2-plain";
    case Mode::Fast:
      return "fast";
    case Mode::LegacyPlain:
      return "legacy-plain";
  }
  return "?";
}

std::string Run::summary_json() const {
  std::vector<double> ms;
  std::vector<std::string> errors;
  size_t new_tokens = 0;
  for (const Result& r : results_) {
    if (r.ok) ms.push_back(r.ms);
    if (!r.ok && errors.size() < 5) errors.push_back(r.error);
    if (!r.token.empty()) ++new_tokens;
  }
  std::sort(ms.begin(), ms.end());
  const double secs = (t_done_ - t0_) / 1e9;
  std::ostringstream j;
  j.setf(std::ios::fixed);
  j.precision(3);
  j << "{\"mode\": \"" << mode_name(opts_.mode) << "\", \"n\": " << results_.size()
    << ", \"ok\": " << ms.size() << ", \"failed\": " << results_.size() - ms.size()
    << ", \"seconds\": " << secs << ", \"logins_per_s\": " << (secs > 0 ? ms.size() / secs : 0)
    << ", \"p50_ms\": " << percentile(ms, 50) << ", \"p90_ms\": " << percentile(ms, 90)
    << ", \"p99_ms\": " << percentile(ms, 99) << ", \"max_ms\": " << (ms.empty() ? 0 : ms.back())
    << ", \"cpu_seconds\": " << cpu_logins_
    << ", \"cpu_share\": " << (secs > 0 ? cpu_logins_ / secs : 0)
    << ", \"cpu_ms_per_login\": " << (results_.empty() ? 0 : 1e3 * cpu_logins_ / results_.size())
    << ", \"concurrency\": " << opts_.concurrency << ", \"rate\": " << opts_.rate
    << ", \"new_tokens\": " << new_tokens << ", \"errors\": [";
  for (size_t i = 0; i < errors.size(); ++i) j << (i ? ", " : "") << json_string(errors[i]);
  j << "]}";
  return j.str();
}

// One line per device: index, ok|fail, ms, new token or "-", error.
void Run::write_results() const {
  if (opts_.out_file.empty()) return;
  std::ofstream out(opts_.out_file);
  for (size_t i = 0; i < results_.size(); ++i) {
    const Result& r = results_[i];
    std::string err = r.error;
    std::replace_if(
        err.begin(), err.end(), [](char c) { return c == '\t' || c == '\n'; }, ' ');
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.3f", r.ms);
    out << i << '\t' << (r.ok ? "ok" : "fail") << '\t' << ms << '\t'
        << (r.token.empty() ? "-" : r.token) << '\t' << err << '\n';
  }
}

// ---- set-up -----------------------------------------------------------------

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "login_load: %s\nusage: login_load --devices FILE --port P --cafile CA "
               "[--mode fast|sasl2-plain|legacy-plain] [--host H] [--domain D] [--concurrency N] "
               "[--rate R] [--hold S] [--timeout S] [--out FILE]\n",
               why.c_str());
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string key = argv[i];
    if (i + 1 >= argc) usage(key + " needs a value");
    const std::string v = argv[i + 1];
    if (key == "--devices")
      o.devices_file = v;
    else if (key == "--out")
      o.out_file = v;
    else if (key == "--host")
      o.host = v;
    else if (key == "--port")
      o.port = std::atoi(v.c_str());
    else if (key == "--domain")
      o.domain = v;
    else if (key == "--cafile")
      o.cafile = v;
    else if (key == "--concurrency")
      o.concurrency = std::max(1L, std::atol(v.c_str()));
    else if (key == "--rate")
      o.rate = std::atof(v.c_str());
    else if (key == "--hold")
      o.hold = std::atof(v.c_str());
    else if (key == "--timeout")
      o.timeout = std::atof(v.c_str());
    else if (key == "--mode") {
      if (v == "fast")
        o.mode = Mode::Fast;
      else if (v == "sasl2-plain")
        o.mode = Mode::Sasl2Plain;
      else if (v == "legacy-plain")
        o.mode = Mode::LegacyPlain;
      else
        usage("unknown mode " + v);
    } else {
      usage("unknown option " + key);
    }
  }
  if (o.devices_file.empty() || o.cafile.empty() || o.port <= 0) {
    usage("--devices, --port and --cafile are required");
  }
  sockaddr_in probe{};
  if (uv_ip4_addr(o.host.c_str(), o.port, &probe) != 0) usage("--host wants an IPv4 address");
  return o;
}

std::vector<Device> read_devices(const std::string& path) {
  std::ifstream in(path);
  if (!in) usage("cannot read " + path);
  std::vector<Device> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::istringstream ls(line);
    for (std::string field; std::getline(ls, field, '\t');) f.push_back(field);
    if (f.size() != 7) usage(path + ": want 7 tab-separated fields: " + line);
    out.push_back({f[0], f[1], f[2], f[3], f[4], f[5], std::atol(f[6].c_str())});
  }
  return out;
}

// One context for every connection. Certificates are verified against the CA
// file and the domain (SSL_set1_host per connection). No session cache: every
// login is a full handshake, as a returning device's after a while away.
SSL_CTX* make_ssl_ctx(const Options& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_load_verify_locations(ctx, o.cafile.c_str(), nullptr) != 1) {
    usage("TLS set-up (" + o.cafile + "): " + ssl_error_text());
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return ctx;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  const Options opts = parse_args(argc, argv);
  std::vector<Device> devices = read_devices(opts.devices_file);
  SSL_CTX* ctx = make_ssl_ctx(opts);
  int rc;
  {
    Run run(opts, std::move(devices), ctx);
    rc = run.exec();
  }
  SSL_CTX_free(ctx);
  return rc;
}
