// See health_cli.h.
#include "proxy/health_cli.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>

#include "common/net/connection.h"  // split_host_port
#include "policies/health.h"
#include "proxy/service_state.h"

namespace s2 {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// GET /metrics; "" when the answer's status line is 200 (the whole answer in
// *answer_out), else why not.
std::string probe(const std::string& address, double timeout_s, std::string* answer_out) {
  std::string host;
  int port = 0;
  if (!split_host_port(address, &host, &port)) return "bad metrics address " + address;
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    return "cannot resolve " + host + ": " + gai_strerror(rc);
  std::string why = "cannot connect to " + address;
  int fd = -1;
  for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      why = "cannot connect to " + address + ": " + std::strerror(errno);
      close(fd);
      fd = -1;
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (poll(&p, 1, remaining_ms(deadline)) != 1 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      why = "cannot connect to " + address + ": " +
            (err ? std::strerror(err) : std::string("timed out"));
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) return why + " (is the daemon running?)";
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: " + address + "\r\n\r\n";
  std::string answer;
  bool sent = send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  while (sent) {  // HTTP/1.0: the daemon closes after the answer
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, remaining_ms(deadline)) != 1) break;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const std::string status = answer.substr(0, answer.find_first_of("\r\n"));
  if (status.rfind("HTTP/1.", 0) == 0 && status.size() >= 12 && status.compare(9, 3, "200") == 0) {
    *answer_out = std::move(answer);
    return {};
  }
  if (status.empty()) return "no HTTP answer from " + address + " within the timeout";
  return "metrics at " + address + " answered \"" + status + "\"";
}

// The value of an unlabelled series in a Prometheus text answer, or -1.
double series(const std::string& text, const std::string& name) {
  const std::string key = "\n" + name + " ";
  const size_t at = text.find(key);
  if (at == std::string::npos) return -1;
  return std::strtod(text.c_str() + at + key.size(), nullptr);
}

}  // namespace

std::string local_address_for(const std::string& listen_address) {
  if (listen_address.rfind("0.0.0.0:", 0) == 0) return "127.0.0.1:" + listen_address.substr(8);
  if (listen_address.rfind("[::]:", 0) == 0) return "[::1]:" + listen_address.substr(5);
  return listen_address;
}

int health_check(const Config& cfg, double timeout_s) {
  std::string address;
  std::ifstream in(service::metrics_addr_file(cfg.data_dir));
  if (in) std::getline(in, address);
  if (address.empty()) address = cfg.metrics;
  if (address.empty()) {
    std::cerr << "s2proxy health: no metrics listener: none recorded in "
              << service::metrics_addr_file(cfg.data_dir)
              << " (is the daemon running with --metrics?) and none configured\n";
    return 1;
  }
  std::string answer;
  if (std::string why = probe(local_address_for(address), timeout_s, &answer); !why.empty()) {
    std::cerr << "s2proxy health: " << why << "\n";
    return 1;
  }
  policy::AnchorHealth h;
  h.anchors = series(answer, "s2proxy_anchors");
  h.ready = series(answer, "s2proxy_anchors_ready");
  const double started = series(answer, "process_start_time_seconds");
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  h.uptime_s = started > 0 ? now - started : 0;
  if (std::string why = policy::anchors_problem(h); !why.empty()) {
    std::cerr << "s2proxy health: " << why << "\n";
    return 1;
  }
  std::cout << "ok: " << local_address_for(address) << " answered /metrics";
  if (h.anchors > 0)
    std::cout << "; anchors logged in upstream: " << static_cast<long>(h.ready) << " of "
              << static_cast<long>(h.anchors);
  std::cout << "\n";
  return 0;
}

}  // namespace s2
