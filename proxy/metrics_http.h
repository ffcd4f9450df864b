// Minimal HTTP/1.0 responder for Prometheus scrapes: GET /metrics returns
// render_metrics(), anything else 404. One request per connection, requests
// larger than 8 KiB are refused; meant for loopback or a scrape network.
#pragma once

#include <uv.h>

#include <string>

namespace s2 {

class MetricsHttp {
 public:
  explicit MetricsHttp(uv_loop_t* loop) : loop_(loop) {}
  ~MetricsHttp();
  bool listen(const std::string& addr, std::string* error);
  void close();
  // The address actually bound ("127.0.0.1:9102", "[::1]:9102"; port 0 resolved), "" when closed.
  std::string bound_address() const;

 private:
  uv_loop_t* loop_;
  uv_tcp_t* server_ = nullptr;
};

}  // namespace s2
