// The daemon's top level on one libuv loop: client listeners (STARTTLS and
// direct TLS), the metrics endpoint, signal handling (SIGTERM/SIGINT drain,
// SIGHUP reloads the TLS certificate) and the shared ProxyContext.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "proxy/config.h"
#include "proxy/proxy_context.h"
#include "proxy/retention_sweeper.h"
#include "proxy/storage_guard.h"

namespace s2 {

class MetricsHttp;

class Server {
 public:
  explicit Server(const Config& cfg);
  ~Server();
  // Sets everything up (certificate, contexts, listeners). Returns false and
  // sets *error when the daemon cannot start.
  bool start(std::string* error);
  // Runs the loop until shutdown completes. Returns the exit code.
  int run();

 private:
  bool open_state(std::string* error);
  bool listen(const std::string& addr, bool direct_tls, std::string* error);
  void begin_shutdown(const char* why);
  void reload_tls();
  void start_anchors();
  void flush_store();
  void start_idle_memory_sweep();

  uv_loop_t loop_{};
  ProxyContext ctx_;
  std::vector<uv_tcp_t*> listeners_;
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  std::unique_ptr<MetricsHttp> metrics_;
  std::unique_ptr<Timer> force_exit_;
  std::unique_ptr<Timer> token_sweep_;
  std::unique_ptr<Timer> idle_sweep_;      // start_idle_memory_sweep()
  std::unique_ptr<StorageGuard> storage_;  // ctx_.storage
  std::unique_ptr<RetentionSweeper> retention_;
  std::unique_ptr<Timer> anchor_starter_;  // staggered anchor logins at start-up
  std::vector<std::string> anchors_to_start_;
};

}  // namespace s2
