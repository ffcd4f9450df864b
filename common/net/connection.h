// One XMPP byte stream on a libuv TCP handle: TCP ⇄ (TLS) ⇄ XML stream.
//
// Used in both roles: ClientSession (the proxy is the server) and
// UpstreamSession (the proxy is a client of the legacy server), so both sides
// share one transport built on libuv + OpenSSL memory BIOs + expat
// (ARCHITECTURE.md §3: libstrophe's own select() loop cannot carry thousands
// of upstream sessions).
//
// Ownership follows libuv: a Connection is heap-allocated and deletes itself
// in its uv_close callback. Its owner (the Handler) is told through
// on_conn_closed() and must not touch the pointer afterwards; an owner that
// goes away first calls detach(), which closes the connection without calling
// back. Closing is asynchronous, so a handler may call close() from inside any
// callback and the object stays valid until the stack unwinds.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/net/proxy_protocol.h"
#include "common/tls/tls.h"
#include "common/xml/xml_stream.h"

namespace s2 {

class Connection {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void on_conn_connected() {}  // outbound connect completed
    virtual void on_conn_tls_ready() {}  // TLS handshake completed
    virtual void on_conn_stream_open(const StreamHeader& header) = 0;
    virtual void on_conn_stanza(Stanza stanza) = 0;
    virtual void on_conn_stream_close() = 0;
    virtual void on_conn_xml_error(const XmlError& error) = 0;
    // Final: the socket is gone (peer closed, error, or our close()).
    virtual void on_conn_closed(const std::string& reason) = 0;
    // Options::proxy_protocol: the PROXY header was read; peer() is now the
    // client it names (unchanged for LOCAL / UNKNOWN), via() the balancer.
    // Bytes after the header reach TLS / XML only after this returns. A bad
    // header closes the connection instead (on_conn_closed, reason
    // "PROXY protocol: …").
    virtual void on_conn_proxy_header(const proxyproto::Header& /*header*/) {}
    // Bytes taken from the socket (before TLS and XML see them): input rate
    // limits (set_reading(false, kPauseRate) here stops the next read).
    virtual void on_conn_bytes_read(size_t /*n*/) {}
  };

  struct Options {
    XmlLimits xml;
    std::string expected_ns = "jabber:client";
    size_t max_write_buffer = 4 * 1024 * 1024;  // bytes queued to a slow peer
    // Acknowledge every read at once (TCP_QUICKACK, re-armed after each
    // read). For upstream sockets: a peer with Nagle on (Prosody's default)
    // otherwise holds its next small write until our delayed ACK fires,
    // ~40 ms, on every request/response turn.
    bool quick_ack = false;
    // Accepted connections start with a PROXY protocol header (v1 or v2).
    bool proxy_protocol = false;
  };

  // Accepts a pending connection on `server`. Returns null on failure.
  static Connection* accept(uv_stream_t* server, Handler* handler, const Options& opts);
  // Connects to an address resolved beforehand (resolve_host_port). Result
  // via on_conn_connected or on_conn_closed.
  static Connection* connect(uv_loop_t* loop, const sockaddr_storage& addr, Handler* handler,
                             const Options& opts);
  // Resolves host (asynchronously, on every call: addresses of containers and
  // DNS names change) and connects to the first address.
  static Connection* connect_host(uv_loop_t* loop, const std::string& host, int port,
                                  Handler* handler, const Options& opts);

  // Queues bytes for the peer. Everything sent during one loop turn leaves
  // as one TLS write (one record up to 16 KiB) and one socket write, at the
  // end of the turn's I/O phase or before the loop next waits (output
  // coalescing: a burst of stanzas is one segment, not one per stanza).
  void send(std::string_view data);
  void send(const Stanza& s) { send(s.to_string()); }
  // Writes what send() queued now (close() and start_tls() do it first).
  void flush_output();
  // Runs `fn` once, just before this connection's next flush (scheduling one
  // if none is), so that what it sends joins the same write: an SM <r/> then
  // rides with the stanzas it asks about instead of costing a segment, and
  // the peer a read, of its own. One hook at a time (a second replaces the
  // first); close() and detach() drop it unrun.
  void before_next_flush(std::function<void()> fn);
  bool before_flush_pending() const { return static_cast<bool>(before_flush_); }
  // Socket writes issued so far (tests and benchmarks of the coalescing).
  uint64_t writes_issued() const { return writes_issued_; }
  // Switch to TLS. For a server-side STARTTLS, call after writing <proceed/>;
  // plaintext already buffered after <starttls/> is discarded (the XML stream
  // is reset without keeping the rest).
  void start_tls(SSL_CTX* ctx, TlsSession::Role role, const std::string& server_name = {});
  bool tls_active() const { return tls_ != nullptr; }
  bool secure() const { return tls_ && tls_->handshake_done(); }
  // New XML stream (after STARTTLS or SASL1 success); see XmlStream::reset.
  void reset_stream(bool keep_rest = true);
  // Flushes what was sent, then closes (TLS close_notify first).
  void close();
  // Closes at once, without callbacks to the handler.
  void detach();

  // Flow control: stop taking bytes from the peer (TCP pushes back on it)
  // until reading is turned on again. Bytes already read are still parsed.
  // Independent reasons pause independently; reading resumes when none holds.
  static constexpr unsigned kPauseFlow = 1;  // the session's own flow control
  static constexpr unsigned kPauseRate = 2;  // input rate limit (flood control)
  void set_reading(bool on, unsigned reason = kPauseFlow);
  bool reading_paused() const { return pause_mask_ != 0; }

  const std::string& peer() const { return peer_; }
  // The socket's own peer when a PROXY header replaced peer(); else "".
  const std::string& via() const { return via_; }
  bool awaiting_proxy_header() const { return awaiting_proxy_; }
  uint64_t id() const { return id_; }
  size_t write_queue_bytes() const;

 private:
  class XmlSink;
  Connection(uv_loop_t* loop, Handler* handler, const Options& opts);
  ~Connection();
  void start_reading();
  void connect_to(const sockaddr* addr);
  void on_read(const char* data, size_t len);
  void on_plain(const char* data, size_t len);
  void on_proxy_bytes(const char* data, size_t len);
  void write_raw(const char* data, size_t len);
  void fail(const std::string& reason);
  void finish_close();
  void linger();
  friend struct OutputFlusher;

  uv_loop_t* loop_;
  uv_tcp_t tcp_{};
  Handler* handler_;
  Options opts_;
  std::unique_ptr<XmlSink> sink_;
  std::unique_ptr<XmlStream> xml_;
  std::unique_ptr<TlsSession> tls_;
  std::string peer_;
  std::string via_;
  bool awaiting_proxy_ = false;
  std::string preface_;  // PROXY header bytes so far
  std::string close_reason_;
  uint64_t id_;
  bool closing_ = false;
  bool handle_closed_ = false;
  bool reading_ = false;     // uv_read_start is in effect
  unsigned pause_mask_ = 0;  // reasons set_reading(false) holds
  bool connected_ = false;
  bool shutdown_started_ = false;
  bool lingering_ = false;  // after our FIN: reading only to discard (see linger())
  uv_shutdown_t shutdown_req_{};
  uv_timer_t close_guard_{};
  int handles_open_ = 0;
  bool resolving_ = false;  // a getaddrinfo request points at us
  bool free_after_resolve_ = false;
  std::string out_pending_;             // sent this loop turn, not yet written
  std::function<void()> before_flush_;  // before_next_flush()
  bool flush_queued_ = false;           // on the loop's flush list
  uint64_t writes_issued_ = 0;
};

// A one-shot or repeating timer owned by an object; cancel() (or the
// destructor of the owning Timer) stops it. Memory of the uv handle is freed
// in its close callback, so a Timer object itself may be destroyed at any time.
class Timer {
 public:
  explicit Timer(uv_loop_t* loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  void start(uint64_t ms, std::function<void()> cb, uint64_t repeat_ms = 0);
  void stop();
  bool active() const;
  // An unref'd timer does not keep the loop alive (shutdown guards).
  void unref();

 private:
  struct Handle;
  uv_loop_t* loop_;
  Handle* h_ = nullptr;  // made at the first start()
  bool unref_ = false;
};

// Runs `fn` on the next loop iteration (e.g. to destroy an object whose
// callback is still on the stack).
void defer(uv_loop_t* loop, std::function<void()> fn);

// Splits "host:port" / "[v6]:port". Returns false when malformed.
bool split_host_port(const std::string& s, std::string* host, int* port);
// Whether `host` (as split_host_port gives it) names this machine's loopback: an IPv4 literal
// in 127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z), or `localhost`. Traffic to it never leaves
// the machine.
bool is_loopback_host(const std::string& host);
// Resolves host:port (blocking getaddrinfo; used at start-up only). Returns
// false and sets *error when the name does not resolve.
bool resolve_host_port(const std::string& host, int port, sockaddr_storage* out,
                       std::string* error);
std::string sockaddr_to_string(const sockaddr* sa);

}  // namespace s2
