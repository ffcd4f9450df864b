// See metrics_http.h.
#include "proxy/metrics_http.h"

#include <string>

#include "common/net/connection.h"
#include "common/util/metrics.h"

namespace s2 {
namespace {
struct HttpConn {
  uv_tcp_t tcp;
  std::string request;
  bool answered = false;
};

void close_conn(HttpConn* c) {
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
           [](uv_handle_t* h) { delete static_cast<HttpConn*>(h->data); });
}

void respond(HttpConn* c, const std::string& status, const std::string& body) {
  c->answered = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
  struct Write {
    uv_write_t req;
    std::string data;
    HttpConn* c;
  };
  auto* w = new Write{{},
                      "HTTP/1.0 " + status +
                          "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body,
                      c};
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1, [](uv_write_t* req, int) {
        auto* w = static_cast<Write*>(req->data);
        close_conn(w->c);
        delete w;
      }) != 0) {
    delete w;
    close_conn(c);
  }
}
}  // namespace

MetricsHttp::~MetricsHttp() { close(); }

bool MetricsHttp::listen(const std::string& addr, std::string* error) {
  std::string host;
  int port = 0;
  sockaddr_storage ss{};
  if (!split_host_port(addr, &host, &port) || !resolve_host_port(host, port, &ss, error)) {
    if (error->empty()) *error = "--metrics: bad address " + addr;
    return false;
  }
  server_ = new uv_tcp_t;
  uv_tcp_init(loop_, server_);
  server_->data = this;
  int rc = uv_tcp_bind(server_, reinterpret_cast<sockaddr*>(&ss), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(server_), 64, [](uv_stream_t* s, int status) {
      if (status < 0) return;
      auto* c = new HttpConn;
      uv_tcp_init(s->loop, &c->tcp);
      c->tcp.data = c;
      if (uv_accept(s, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
        close_conn(c);
        return;
      }
      uv_read_start(
          reinterpret_cast<uv_stream_t*>(&c->tcp),
          [](uv_handle_t*, size_t, uv_buf_t* buf) {
            static thread_local char b[4096];
            buf->base = b;
            buf->len = sizeof b;
          },
          [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
            auto* c = static_cast<HttpConn*>(s->data);
            if (c->answered) return;
            if (n < 0) {
              close_conn(c);
              return;
            }
            c->request.append(buf->base, static_cast<size_t>(n));
            if (c->request.size() > 8192) {
              respond(c, "413 Request Entity Too Large", "too large\n");
              return;
            }
            if (c->request.find("\r\n\r\n") == std::string::npos &&
                c->request.find("\n\n") == std::string::npos)
              return;
            if (c->request.rfind("GET /metrics ", 0) == 0 ||
                c->request.rfind("GET /metrics?", 0) == 0) {
              respond(c, "200 OK", render_metrics());
            } else {
              respond(c, "404 Not Found", "try /metrics\n");
            }
          });
    });
  }
  if (rc != 0) {
    *error = "--metrics: cannot listen on " + addr + ": " + uv_strerror(rc);
    close();
    return false;
  }
  return true;
}

std::string MetricsHttp::bound_address() const {
  if (!server_) return {};
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getsockname(server_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  char host[INET6_ADDRSTRLEN] = {};
  int port = 0;
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    uv_ip6_name(a, host, sizeof host);
    port = ntohs(a->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  uv_ip4_name(a, host, sizeof host);
  port = ntohs(a->sin_port);
  return std::string(host) + ":" + std::to_string(port);
}

void MetricsHttp::close() {
  if (!server_) return;
  uv_close(reinterpret_cast<uv_handle_t*>(server_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  server_ = nullptr;
}

}  // namespace s2
