// What every session of the daemon shares: the loop, the configuration, the
// TLS contexts, the resolved upstream, and the registry of live sessions
// (for shutdown and metrics).
#pragma once

#include <uv.h>

#include <unordered_set>

#include "common/tls/tls.h"
#include "proxy/config.h"
#include "proxy/upstream_session.h"

namespace s2 {

class ClientSession;

class ProxyContext {
 public:
  uv_loop_t* loop = nullptr;
  Config config;
  SslCtxPtr server_tls;
  SslCtxPtr upstream_tls;
  UpstreamParams upstream;        // template for every upstream session
  Connection::Options client_conn;
  bool shutting_down = false;

  std::unordered_set<ClientSession*> sessions;
};

}  // namespace s2
