// See connection.h.
#include "common/net/connection.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

namespace s2 {
namespace {
std::atomic<uint64_t> g_next_id{1};

struct WriteReq {
  uv_write_t req;
  std::string data;
};

// Reads are consumed synchronously (TLS and expat copy what they keep), so one
// buffer per loop thread is enough.
thread_local char g_read_buf[64 * 1024];
}  // namespace

// Per loop: the connections with output queued this turn. A prepare handle
// flushes before the loop waits (output queued by timers, deferred work and
// close callbacks) and a check handle right after the I/O phase (output
// queued while handling reads); both run only while something is queued.
struct OutputFlusher {
  uv_prepare_t prepare{};
  uv_check_t check{};
  std::vector<Connection*> dirty;
  bool running = false;

  static OutputFlusher& of(uv_loop_t* loop) {
    thread_local std::unordered_map<uv_loop_t*, std::unique_ptr<OutputFlusher>> all;
    auto& f = all[loop];
    if (f && uv_is_closing(reinterpret_cast<uv_handle_t*>(&f->prepare))) {
      // Its loop was shut down (handles closed by a final uv_walk); a new
      // loop may sit at the same address. The old handles may still be on
      // the closing queue: their memory is left alone.
      (void)f.release();
    }
    if (!f) {
      f = std::make_unique<OutputFlusher>();
      uv_prepare_init(loop, &f->prepare);
      uv_check_init(loop, &f->check);
      f->prepare.data = f->check.data = f.get();
      // Lives as long as its loop: the daemon closes every handle of the
      // loop at the end (Server::run's uv_walk).
    }
    return *f;
  }
  void add(Connection* c) {
    dirty.push_back(c);
    if (running) return;
    running = true;
    uv_prepare_start(&prepare,
                     [](uv_prepare_t* p) { static_cast<OutputFlusher*>(p->data)->run(); });
    uv_check_start(&check, [](uv_check_t* k) { static_cast<OutputFlusher*>(k->data)->run(); });
  }
  void remove(Connection* c) {
    for (auto& d : dirty)
      if (d == c) d = nullptr;
  }
  void run() {
    // Flushing may queue more (a TLS error closing a connection): loop.
    while (!dirty.empty()) {
      auto batch = std::move(dirty);
      dirty.clear();
      for (auto* c : batch) {
        if (!c) continue;
        c->flush_queued_ = false;
        c->flush_output();
      }
    }
    running = false;
    uv_prepare_stop(&prepare);
    uv_check_stop(&check);
  }
};

class Connection::XmlSink : public XmlStreamHandler {
 public:
  explicit XmlSink(Connection* c) : c_(c) {}
  void on_stream_open(const StreamHeader& h) override {
    if (c_->handler_ && !c_->closing_) c_->handler_->on_conn_stream_open(h);
  }
  void on_stanza(Stanza s) override {
    if (c_->handler_ && !c_->closing_) c_->handler_->on_conn_stanza(std::move(s));
  }
  void on_stream_close() override {
    if (c_->handler_ && !c_->closing_) c_->handler_->on_conn_stream_close();
  }
  void on_xml_error(const XmlError& e) override {
    if (c_->handler_ && !c_->closing_) c_->handler_->on_conn_xml_error(e);
  }

 private:
  Connection* c_;
};

Connection::Connection(uv_loop_t* loop, Handler* handler, const Options& opts)
    : loop_(loop), handler_(handler), opts_(opts), id_(g_next_id++) {
  uv_tcp_init(loop_, &tcp_);
  tcp_.data = this;
  uv_timer_init(loop_, &close_guard_);
  close_guard_.data = this;
  handles_open_ = 2;
  sink_ = std::make_unique<XmlSink>(this);
  xml_ = std::make_unique<XmlStream>(*sink_, opts_.xml, opts_.expected_ns);
}

Connection::~Connection() = default;

Connection* Connection::accept(uv_stream_t* server, Handler* handler, const Options& opts) {
  auto* c = new Connection(server->loop, handler, opts);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp_)) != 0) {
    c->handler_ = nullptr;
    c->fail("accept failed");
    return nullptr;
  }
  uv_tcp_nodelay(&c->tcp_, 1);
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(&c->tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    c->peer_ = sockaddr_to_string(reinterpret_cast<sockaddr*>(&ss));
  c->connected_ = true;
  c->awaiting_proxy_ = opts.proxy_protocol;
  c->start_reading();
  return c;
}

Connection* Connection::connect(uv_loop_t* loop, const sockaddr_storage& addr, Handler* handler,
                                const Options& opts) {
  auto* c = new Connection(loop, handler, opts);
  c->peer_ = sockaddr_to_string(reinterpret_cast<const sockaddr*>(&addr));
  c->connect_to(reinterpret_cast<const sockaddr*>(&addr));
  return c;
}

Connection* Connection::connect_host(uv_loop_t* loop, const std::string& host, int port,
                                     Handler* handler, const Options& opts) {
  auto* c = new Connection(loop, handler, opts);
  c->peer_ = host + ":" + std::to_string(port);
  auto* req = new uv_getaddrinfo_t;
  req->data = c;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  c->resolving_ = true;
  int rc = uv_getaddrinfo(
      loop, req,
      [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
        auto* c = static_cast<Connection*>(req->data);
        delete req;
        c->resolving_ = false;
        if (c->free_after_resolve_) {  // closed (and its handles gone) meanwhile
          if (res) uv_freeaddrinfo(res);
          delete c;
          return;
        }
        if (c->closing_) {
          if (res) uv_freeaddrinfo(res);
          return;
        }
        if (status != 0 || !res) {
          if (res) uv_freeaddrinfo(res);
          c->fail(std::string("cannot resolve ") + c->peer_ + ": " + uv_strerror(status));
          return;
        }
        sockaddr_storage ss{};
        std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
        uv_freeaddrinfo(res);
        c->peer_ = sockaddr_to_string(reinterpret_cast<sockaddr*>(&ss));
        c->connect_to(reinterpret_cast<sockaddr*>(&ss));
      },
      host.c_str(), std::to_string(port).c_str(), &hints);
  if (rc != 0) {
    delete req;
    c->resolving_ = false;
    c->fail(std::string("cannot resolve ") + host + ": " + uv_strerror(rc));
  }
  return c;
}

void Connection::connect_to(const sockaddr* addr) {
  auto* req = new uv_connect_t;
  req->data = this;
  int rc = uv_tcp_connect(req, &tcp_, addr, [](uv_connect_t* req, int status) {
    auto* c = static_cast<Connection*>(req->data);
    delete req;
    if (status == UV_ECANCELED || c->closing_) return;
    if (status != 0) {
      c->fail(std::string("connect failed: ") + uv_strerror(status));
      return;
    }
    c->connected_ = true;
    uv_tcp_nodelay(&c->tcp_, 1);
    c->start_reading();
    if (c->handler_) c->handler_->on_conn_connected();
  });
  if (rc != 0) {
    delete req;
    fail(std::string("connect failed: ") + uv_strerror(rc));
  }
}

void Connection::set_reading(bool on, unsigned reason) {
  const unsigned before = pause_mask_;
  pause_mask_ = on ? (pause_mask_ & ~reason) : (pause_mask_ | reason);
  if ((before == 0) == (pause_mask_ == 0)) return;
  if (handle_closed_ || closing_) return;
  if (pause_mask_ != 0 && reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  } else if (pause_mask_ == 0 && !reading_ && connected_) {
    start_reading();
  }
}

void Connection::start_reading() {
  if (pause_mask_ != 0 || reading_) return;
  reading_ = true;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&tcp_),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        buf->base = g_read_buf;
        buf->len = sizeof g_read_buf;
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* c = static_cast<Connection*>(s->data);
        if (c->lingering_) {
          if (n < 0) c->finish_close();  // the peer closed too (or failed): done
          return;                        // discarded
        }
        if (n > 0) {
          c->on_read(buf->base, static_cast<size_t>(n));
        } else if (n < 0) {
          c->fail(n == UV_EOF ? "peer closed the connection"
                              : std::string("read error: ") + uv_strerror(static_cast<int>(n)));
        }
      });
}

void Connection::on_read(const char* data, size_t len) {
  if (closing_) return;
  if (handler_) handler_->on_conn_bytes_read(len);
  if (closing_) return;
  if (opts_.quick_ack) {
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
  }
  if (awaiting_proxy_) {
    on_proxy_bytes(data, len);
  } else if (tls_) {
    tls_->feed_cipher(data, len);
  } else {
    on_plain(data, len);
  }
}

void Connection::on_proxy_bytes(const char* data, size_t len) {
  preface_.append(data, len);
  auto r = proxyproto::parse(preface_);
  if (r.status == proxyproto::Status::NeedMore) return;
  if (r.status == proxyproto::Status::Error) {
    preface_.clear();
    fail("PROXY protocol: " + r.error);
    return;
  }
  awaiting_proxy_ = false;
  std::string rest = preface_.substr(r.header.length);
  preface_.clear();
  preface_.shrink_to_fit();
  if (r.header.has_address) {
    via_ = peer_;
    peer_ = r.header.source;
  }
  if (handler_) handler_->on_conn_proxy_header(r.header);
  if (!rest.empty() && !closing_) on_read(rest.data(), rest.size());
}

void Connection::on_plain(const char* data, size_t len) {
  if (closing_) return;
  xml_->feed(data, len);
}

void Connection::send(std::string_view data) {
  if (closing_ || handle_closed_ || shutdown_started_ || data.empty()) return;
  if (write_queue_bytes() + data.size() > opts_.max_write_buffer) {
    // A peer that does not read must not make us buffer without bound.
    fail("write buffer limit exceeded (peer not reading)");
    return;
  }
  out_pending_.append(data);
  if (!flush_queued_) {
    flush_queued_ = true;
    OutputFlusher::of(loop_).add(this);
  }
}

void Connection::before_next_flush(std::function<void()> fn) {
  if (closing_ || handle_closed_ || shutdown_started_) return;
  before_flush_ = std::move(fn);
  if (!flush_queued_) {
    flush_queued_ = true;
    OutputFlusher::of(loop_).add(this);
  }
}

void Connection::flush_output() {
  if (before_flush_) {
    auto fn = std::move(before_flush_);
    before_flush_ = nullptr;
    fn();  // may send(): it joins this write
  }
  if (out_pending_.empty()) return;
  std::string out = std::move(out_pending_);
  out_pending_.clear();
  if (handle_closed_ || shutdown_started_) return;
  if (tls_) {
    tls_->write_plain(out.data(), out.size());
  } else {
    write_raw(out.data(), out.size());
  }
}

size_t Connection::write_queue_bytes() const {
  return uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&tcp_)) +
         out_pending_.size();
}

void Connection::write_raw(const char* data, size_t len) {
  if (handle_closed_ || shutdown_started_ || len == 0) return;
  if (uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&tcp_)) + len >
      opts_.max_write_buffer) {
    // A peer that does not read must not make us buffer without bound.
    fail("write buffer limit exceeded (peer not reading)");
    return;
  }
  ++writes_issued_;
  auto* w = new WriteReq;
  w->data.assign(data, len);
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1,
                    [](uv_write_t* req, int) { delete static_cast<WriteReq*>(req->data); });
  if (rc != 0) {
    delete w;
    fail(std::string("write failed: ") + uv_strerror(rc));
  }
}

void Connection::start_tls(SSL_CTX* ctx, TlsSession::Role role, const std::string& server_name) {
  if (tls_ || closing_) return;
  // What was sent before (a server's <proceed/>) goes out in plaintext.
  flush_output();
  // Anything that arrived in plaintext after the element that triggered TLS
  // is dropped (STARTTLS command injection).
  xml_->reset(false);
  tls_ = std::make_unique<TlsSession>(ctx, role, server_name);
  tls_->on_cipher = [this](const char* d, size_t n) { write_raw(d, n); };
  tls_->on_plain = [this](const char* d, size_t n) { on_plain(d, n); };
  tls_->on_handshake_done = [this] {
    if (handler_ && !closing_) handler_->on_conn_tls_ready();
  };
  tls_->on_error = [this](const std::string& why) { fail("TLS: " + why); };
  tls_->on_close = [this] { fail("peer closed TLS"); };
  tls_->start();
}

void Connection::reset_stream(bool keep_rest) { xml_->reset(keep_rest); }

void Connection::close() {
  if (closing_) return;
  before_flush_ = nullptr;  // nothing rides on a stream that ends
  flush_output();           // "flushes what was sent, then closes"
  closing_ = true;
  xml_->stop();
  if (tls_ && !tls_->failed()) tls_->shutdown();
  if (!connected_) {
    finish_close();
    return;
  }
  // close() is often called from inside TLS or XML callbacks, while the
  // last bytes (a stream error, close_notify) are still being encrypted and
  // written by the frames below us. Shut the socket down on the next loop
  // turn, when every write is queued; then let the queue drain, but never
  // wait for a stuck peer for long.
  uv_timer_start(
      &close_guard_,
      [](uv_timer_t* t) {
        auto* c = static_cast<Connection*>(t->data);
        c->shutdown_started_ = true;
        uv_timer_start(
            &c->close_guard_,
            [](uv_timer_t* t) { static_cast<Connection*>(t->data)->finish_close(); }, 3000, 0);
        c->shutdown_req_.data = c;
        int rc = uv_shutdown(&c->shutdown_req_, reinterpret_cast<uv_stream_t*>(&c->tcp_),
                             [](uv_shutdown_t* req, int status) {
                               auto* conn = static_cast<Connection*>(req->data);
                               if (status == 0) {
                                 conn->linger();
                               } else {
                                 conn->finish_close();
                               }
                             });
        if (rc != 0) c->finish_close();
      },
      0, 0);
}

// Our FIN is out and everything before it was written. Closing the socket
// now while the peer's bytes sit unread in it would make the kernel answer
// with RST, which can destroy the stream error we just sent before the peer
// reads it (a client that floods us is exactly one that still sends). So
// read and discard until the peer closes too, for at most a second.
void Connection::linger() {
  if (handle_closed_) return;
  lingering_ = true;
  uv_timer_start(
      &close_guard_, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->finish_close(); }, 1000,
      0);
  if (!reading_) {
    pause_mask_ = 0;
    start_reading();
  }
}

void Connection::detach() {
  handler_ = nullptr;
  close();
}

void Connection::fail(const std::string& reason) {
  if (close_reason_.empty()) close_reason_ = reason;
  closing_ = true;
  xml_->stop();
  finish_close();
}

void Connection::finish_close() {
  if (handle_closed_) return;
  handle_closed_ = true;
  out_pending_.clear();
  if (flush_queued_) {
    flush_queued_ = false;
    OutputFlusher::of(loop_).remove(this);
  }
  if (close_reason_.empty()) close_reason_ = "closed";
  auto on_handle_closed = [](uv_handle_t* h) {
    auto* c = static_cast<Connection*>(h->data);
    if (--c->handles_open_ > 0) return;
    if (c->handler_) c->handler_->on_conn_closed(c->close_reason_);
    // A pending getaddrinfo still points at us: it frees us when it returns.
    if (c->resolving_) {
      c->free_after_resolve_ = true;
      return;
    }
    delete c;
  };
  uv_timer_stop(&close_guard_);
  uv_close(reinterpret_cast<uv_handle_t*>(&close_guard_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_handle_closed);
}

// ---- Timer ----

struct Timer::Handle {
  uv_timer_t t;
  std::function<void()> cb;
};

// The libuv handle is made at the first start(): a device owns about a dozen timers (SM acks,
// pings, login and drain deadlines) and an idle one has started few of them (issue 12: RSS per
// idle device).
Timer::Timer(uv_loop_t* loop) : loop_(loop) {}

Timer::~Timer() {
  if (!h_) return;
  uv_timer_stop(&h_->t);
  h_->cb = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&h_->t),
           [](uv_handle_t* h) { delete static_cast<Handle*>(h->data); });
}

void Timer::start(uint64_t ms, std::function<void()> cb, uint64_t repeat_ms) {
  if (!h_) {
    h_ = new Handle;
    uv_timer_init(loop_, &h_->t);
    h_->t.data = h_;
    if (unref_) uv_unref(reinterpret_cast<uv_handle_t*>(&h_->t));
  }
  h_->cb = std::move(cb);
  uv_timer_start(
      &h_->t,
      [](uv_timer_t* t) {
        auto* h = static_cast<Handle*>(t->data);
        if (h->cb) {
          auto cb = h->cb;  // the callback may stop or restart this timer
          cb();
        }
      },
      ms, repeat_ms);
}

void Timer::stop() {
  if (h_) uv_timer_stop(&h_->t);
}

void Timer::unref() {
  unref_ = true;
  if (h_) uv_unref(reinterpret_cast<uv_handle_t*>(&h_->t));
}

bool Timer::active() const {
  return h_ && uv_is_active(reinterpret_cast<uv_handle_t*>(&h_->t)) != 0;
}

void defer(uv_loop_t* loop, std::function<void()> fn) {
  struct Deferred {
    uv_timer_t t;
    std::function<void()> fn;
  };
  auto* d = new Deferred{{}, std::move(fn)};
  uv_timer_init(loop, &d->t);
  d->t.data = d;
  uv_timer_start(
      &d->t,
      [](uv_timer_t* t) {
        auto* d = static_cast<Deferred*>(t->data);
        d->fn();
        uv_close(reinterpret_cast<uv_handle_t*>(&d->t),
                 [](uv_handle_t* h) { delete static_cast<Deferred*>(h->data); });
      },
      0, 0);
}

// ---- addresses ----

bool split_host_port(const std::string& s, std::string* host, int* port) {
  std::string h, p;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    h = s.substr(1, close - 1);
    p = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos || s.find(':') != colon) return false;
    h = s.substr(0, colon);
    p = s.substr(colon + 1);
  }
  if (h.empty() || p.empty() || p.size() > 5) return false;
  int v = 0;
  for (char ch : p) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
  }
  if (v < 1 || v > 65535) return false;
  *host = h;
  *port = v;
  return true;
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

bool resolve_host_port(const std::string& host, int port, sockaddr_storage* out,
                       std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0 || !res) {
    *error = "cannot resolve " + host + ": " + gai_strerror(rc);
    return false;
  }
  std::memset(out, 0, sizeof *out);
  std::memcpy(out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return true;
}

std::string sockaddr_to_string(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    uv_ip4_name(in, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    uv_ip6_name(in6, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "?";
}

}  // namespace s2
