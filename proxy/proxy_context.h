// What every session of the daemon shares: the loop, the configuration, the
// TLS contexts, the resolved upstream, and the registry of live sessions
// (for shutdown and metrics).
#pragma once

#include <uv.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/net/loop_executor.h"
#include "common/net/proxy_protocol.h"
#include "common/store/store.h"
#include "common/tls/tls.h"
#include "policies/address_limits.h"
#include "policies/archive_timing.h"
#include "policies/login_throttle.h"
#include "proxy/config.h"
#include "proxy/credential_vault.h"
#include "proxy/fast_tokens.h"
#include "proxy/key_deriver.h"
#include "proxy/upstream_login_gate.h"
#include "proxy/upstream_session.h"

namespace s2 {

class Cluster;

class AccountHub;
class ClientSession;
class Device;
class StorageGuard;

class ProxyContext {
 public:
  uv_loop_t* loop = nullptr;
  Config config;
  SslCtxPtr server_tls;
  SslCtxPtr upstream_tls;
  UpstreamParams upstream;  // template for every upstream session
  Connection::Options client_conn;
  bool shutting_down = false;

  std::unique_ptr<LoopExecutor> executor;  // store completions → loop thread
  std::unique_ptr<store::Store> store;     // LMDB or PostgreSQL (credentials, tokens, history)
  std::unique_ptr<Cluster> cluster;        // PostgreSQL: account leases (null with LMDB)
  std::unique_ptr<CredentialVault> vault;
  std::unique_ptr<UpstreamLoginGate> upstream_gate;  // upstream logins paced (upstream.login_gate)
  std::unique_ptr<KeyDeriver> kdf;  // PBKDF2 off the loop + memo (upstream.kdf points here)
  std::unique_ptr<FastTokens> fast;
  StorageGuard* storage = nullptr;  // space for new persistent messages (Server owns it)
  policy::LoginThrottle throttle_ip;
  policy::LoginThrottle throttle_account;
  // Per source address limits (policies/address_limits.h): login slots with
  // their queue (tickets are ClientSession::seq_), unauthenticated connections.
  policy::LoginGate login_gate;
  std::unordered_map<uint64_t, ClientSession*> login_waiters;  // ticket → queued session
  policy::PreauthBudget preauth;
  uint64_t max_clients = 0;  // effective (--max-clients or from the descriptor limit); 0: none
  std::vector<proxyproto::Network> proxy_from;  // --proxy-protocol-from; empty: any source
  // Logins in progress: SASL mechanism and start (steady clock), for
  // s2proxy_login_duration_seconds and the auth log lines (auth_common.cpp).
  struct LoginStart {
    std::string mechanism;
    std::chrono::steady_clock::time_point at;
  };
  std::unordered_map<const ClientSession*, LoginStart> login_starts;
  // What the upstream said about itself, and when (uv_now; none: never asked): whether it
  // archives (disco#info of an account) and when (its XEP-0092 software version,
  // policies/archive_timing.h). Properties of the upstream's host, not of an account: the
  // anchors of all accounts share them (Anchor::after_bind).
  struct UpstreamTraits {
    bool has_mam = false;
    policy::ArchiveTiming archive_timing = policy::ArchiveTiming::MaybeLate;
    std::optional<uint64_t> asked_at_ms;
  };
  UpstreamTraits upstream_traits;
  int prewarmed = 0;  // client sessions holding a pre-connected upstream session
  // Anchors moved onto a device's link in the current second (policies/anchor_move.h).
  struct AnchorMoves {
    uint64_t second = 0;
    uint32_t count = 0;
  } anchor_moves;

  // Secret for stable Bind2 resources (derived from the vault key, so a
  // device keeps its resource across restarts).
  std::string resource_secret;

  std::unordered_set<ClientSession*> sessions;
  std::unordered_map<Device*, std::unique_ptr<Device>> devices;
  std::unordered_map<std::string, Device*> resumable;                 // SM id → device
  std::unordered_map<std::string, std::unique_ptr<AccountHub>> hubs;  // bare JID → hub
};

// Records which mechanism a login uses and when it started (auth_common.cpp).
void note_login_start(ProxyContext& ctx, const ClientSession* s, const std::string& mechanism);

}  // namespace s2
