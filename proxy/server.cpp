// See server.h.
#include "proxy/server.h"

#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include "common/crypto/vault.h"
#include "common/store/mirror.h"
#include "common/store/pg_store.h"
#include "common/tls/tls.h"
#include "common/util/clock.h"
#include "common/util/log.h"
#include "common/xml/xml_stream.h"
#include "proxy/account_hub.h"
#include "proxy/client_session.h"
#include "proxy/cluster.h"
#include "proxy/device.h"
#include "proxy/metrics_catalogue.h"
#include "proxy/metrics_http.h"
#include "proxy/service_state.h"
#include "proxy/storage_guard.h"
#include "proxy/store_open.h"

namespace s2 {
namespace {
bool make_dir(const std::string& path, std::string* error) {
  if (mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) return true;
  *error = "--data-dir: cannot create " + path + ": " + std::strerror(errno);
  return false;
}
}  // namespace

Server::Server(const Config& cfg) {
  uv_loop_init(&loop_);
  ctx_.loop = &loop_;
  ctx_.config = cfg;
}

Server::~Server() {
  // Every handle is closed by the time run() returns.
  uv_loop_close(&loop_);
}

bool Server::start(std::string* error) {
  const Config& cfg = ctx_.config;
  register_metrics_catalogue();  // every documented series at zero from the first scrape
  if (!make_dir(cfg.data_dir, error)) return false;
  if (cfg.tls_cert.empty()) {
    if (!make_dir(cfg.data_dir + "/tls", error)) return false;
    if (!ensure_self_signed(cfg.domain, cfg.cert_file(), cfg.key_file(), error)) return false;
  }
  if (!open_state(error)) return false;
  ctx_.server_tls = make_server_ctx(cfg.cert_file(), cfg.key_file(), error);
  if (!ctx_.server_tls) return false;
  ctx_.upstream_tls = make_client_ctx(cfg.upstream_ca, cfg.upstream_insecure, error);
  if (!ctx_.upstream_tls) return false;

  split_host_port(cfg.upstream, &ctx_.upstream.host, &ctx_.upstream.port);
  // Resolved now to fail fast on a typo; every upstream connect resolves again.
  sockaddr_storage probe{};
  if (!resolve_host_port(ctx_.upstream.host, ctx_.upstream.port, &probe, error)) {
    *error = "--upstream: " + *error;
    return false;
  }
  ctx_.upstream.domain = cfg.domain;
  ctx_.upstream.tls = cfg.upstream_tls == "direct"  ? UpstreamParams::Tls::Direct
                      : cfg.upstream_tls == "plain" ? UpstreamParams::Tls::Plain
                                                    : UpstreamParams::Tls::StartTls;
  ctx_.upstream.ssl_ctx = ctx_.upstream_tls.get();
  ctx_.upstream.timeout_s = cfg.upstream_timeout;
  // The upstream is trusted more than clients but still bounded.
  ctx_.upstream.conn.xml.max_stanza_bytes = 4 * cfg.max_stanza_bytes;
  ctx_.upstream.conn.max_write_buffer = cfg.max_buffered_bytes;
  ctx_.upstream.ping_interval_s = cfg.upstream_ping_interval;
  ctx_.upstream.conn.quick_ack = true;
  ctx_.kdf = std::make_unique<KeyDeriver>(&loop_);
  ctx_.upstream.kdf = ctx_.kdf.get();
  ctx_.upstream_gate = std::make_unique<UpstreamLoginGate>(
      &loop_,
      policy::PacerConfig{cfg.upstream_login_rate,
                          static_cast<uint32_t>(std::clamp(cfg.upstream_login_rate, 1.0, 50.0)),
                          cfg.upstream_logins_in_flight});
  ctx_.upstream.login_gate = ctx_.upstream_gate.get();

  ctx_.client_conn.xml.max_stanza_bytes = cfg.max_stanza_bytes;
  ctx_.client_conn.xml.max_depth = cfg.max_depth;
  ctx_.client_conn.max_write_buffer = cfg.max_buffered_bytes;

  // Signals before listeners: once the port accepts, SIGTERM must drain.
  uv_signal_init(&loop_, &sigterm_);
  uv_signal_init(&loop_, &sigint_);
  uv_signal_init(&loop_, &sighup_);
  sigterm_.data = sigint_.data = sighup_.data = this;
  uv_signal_start(
      &sigterm_,
      [](uv_signal_t* s, int) { static_cast<Server*>(s->data)->begin_shutdown("SIGTERM"); },
      SIGTERM);
  uv_signal_start(
      &sigint_,
      [](uv_signal_t* s, int) { static_cast<Server*>(s->data)->begin_shutdown("SIGINT"); }, SIGINT);
  uv_signal_start(
      &sighup_, [](uv_signal_t* s, int) { static_cast<Server*>(s->data)->reload_tls(); }, SIGHUP);
  signal(SIGPIPE, SIG_IGN);

  if (!cfg.listen.empty() && !listen(cfg.listen, false, error)) return false;
  if (!cfg.listen_tls.empty() && !listen(cfg.listen_tls, true, error)) return false;
  if (!cfg.metrics.empty()) {
    metrics_ = std::make_unique<MetricsHttp>(&loop_);
    if (!metrics_->listen(cfg.metrics, error)) return false;
  }

  start_anchors();
  if (ctx_.cluster) ctx_.cluster->start();
  if (!cfg.proxy_protocol.empty())
    S2_LOG(cfg.proxy_protocol_from.empty() ? LogLevel::Warn : LogLevel::Info,
           "server.proxy_protocol",
           {{"listeners", cfg.proxy_protocol},
            {"trusted", cfg.proxy_protocol_from.empty() ? "any source: make the listener reachable "
                                                          "only from the balancer"
                                                        : cfg.proxy_protocol_from}});
  S2_LOG(LogLevel::Info, "server.started",
         {{"domain", cfg.domain},
          {"listen", cfg.listen},
          {"listen_tls", cfg.listen_tls},
          {"upstream", cfg.upstream},
          {"upstream_tls", cfg.upstream_tls},
          {"cert", cfg.cert_file()},
          {"max_clients", cfg.max_clients}});
  // Supervisors (service_state.h): the metrics address for `s2proxy health`, then readiness.
  if (metrics_) {
    std::string why;
    if (!service::write_metrics_addr(cfg.data_dir, metrics_->bound_address(), &why))
      S2_LOG(LogLevel::Warn, "server.metrics_addr_unwritten", {{"error", why}});
  }
  service::notify_ready("serving " + cfg.domain + " in front of " + cfg.upstream);
  return true;
}

// The vault key, the store (--store: the LMDB mirror or PostgreSQL) and what lives in it.
bool Server::open_state(std::string* error) {
  const Config& cfg = ctx_.config;
  auto key = crypto::load_or_create_key_file(cfg.vault_key_path(), error);
  if (!key) {
    *error = "--vault-key-file: " + *error;
    return false;
  }
  ctx_.executor = std::make_unique<LoopExecutor>(&loop_);
  ctx_.executor->unref();
  store::WriterOptions wo;
  wo.executor = [ex = ctx_.executor.get()](std::function<void()> fn) { ex->post(std::move(fn)); };
  wo.on_commit = [](const store::CommitInfo& info) {
    mirror_commit_duration().observe(
        std::chrono::duration<double>(info.apply + info.commit).count());
  };
  auto opened = open_configured_store(cfg, std::move(wo));
  if (!opened) {
    *error = opened.error().text;
    return false;
  }
  ctx_.store = std::move(opened.value());
  S2_LOG(LogLevel::Info, "server.store", {{"store", describe_store(cfg)}});
  if (!cfg.advertise.empty() && !store_is_postgresql(cfg))
    S2_LOG(
        LogLevel::Warn, "server.advertise_unused",
        {{"advertise", cfg.advertise},
         {"why", "--advertise matters only with a PostgreSQL --store (nodes sharing accounts)"}});
  if (auto* pg = dynamic_cast<store::PgStore*>(ctx_.store.get())) {
    // Nodes sharing the database share its accounts: one owner each (cluster.h).
    store::LeaseOptions lo{cfg.store,
                           cfg.advertise.empty() ? store::this_process_name() : cfg.advertise,
                           cfg.advertise};
    auto leases = store::AccountLeases::open(std::move(lo), *pg);
    if (!leases) {
      *error = "--store: " + describe_store(cfg) + ": account leases: " + leases.error().text;
      return false;
    }
    ctx_.cluster = std::make_unique<Cluster>(ctx_, &loop_, std::move(leases.value()));
  }
  ctx_.vault = std::make_unique<CredentialVault>(*ctx_.store, key->str(), &loop_);
  ctx_.fast = std::make_unique<FastTokens>(*ctx_.store, ctx_.vault->derived_secret("fast-token"),
                                           static_cast<int64_t>(cfg.fast_token_lifetime * 1000));
  ctx_.resource_secret = ctx_.vault->derived_secret("bind2-resource");
  // Expired FAST token records are purged hourly (user-agent ids are chosen
  // by clients, so records would otherwise only grow).
  token_sweep_ = std::make_unique<Timer>(&loop_);
  token_sweep_->start(
      1000,
      [this] {
        ctx_.store->submit({store::op::ExpireFastTokens{unix_ms()}}, [](store::WriteResult r) {
          if (r.ok() && !r.ops.empty() && r.ops[0].count > 0)
            S2_LOG(LogLevel::Info, "fast.expired", {{"tokens", r.ops[0].count}});
        });
      },
      3600 * 1000);
  token_sweep_->unref();
  start_idle_memory_sweep();
  // With PostgreSQL the data dir holds no history: the database's own
  // disk-full errors (SQLSTATE 53100, Errc::kNoSpace) refuse instead.
  storage_ = std::make_unique<StorageGuard>(&loop_, cfg.data_dir,
                                            store_is_postgresql(cfg) ? 0 : cfg.min_free_disk);
  ctx_.storage = storage_.get();
  storage_->start();
  retention_ =
      std::make_unique<RetentionSweeper>(&loop_, *ctx_.store, cfg.archive_max_age,
                                         cfg.archive_max_messages, cfg.archive_sweep_interval);
  if (ctx_.cluster)
    retention_->only_accounts([this](store::AccountNo a) { return ctx_.cluster->owns(a); });
  retention_->start();
  const policy::ThrottleConfig tc{cfg.login_free_failures, 1000,
                                  static_cast<int64_t>(cfg.login_backoff_max * 1000)};
  ctx_.throttle_ip = policy::LoginThrottle(tc);
  ctx_.throttle_account = policy::LoginThrottle(tc);
  ctx_.login_gate = policy::LoginGate(
      policy::LoginGateConfig{cfg.login_concurrency_per_address, cfg.login_queue_per_address});
  ctx_.preauth = policy::PreauthBudget(
      policy::PreauthConfig{cfg.max_unauthenticated_per_address, cfg.max_unauthenticated});
  ctx_.max_clients = cfg.max_clients;
  gauge("s2proxy_max_clients", "client connections allowed in all")
      .set(static_cast<int64_t>(cfg.max_clients));
  std::string why;
  if (auto nets = proxyproto::parse_networks(cfg.proxy_protocol_from, &why)) {
    ctx_.proxy_from = std::move(*nets);
  } else {
    *error = "--proxy-protocol-from: " + why;
    return false;
  }
  return true;
}

// Every account the vault knows keeps an anchor upstream, devices or not:
// that is how its history keeps arriving while all of them sleep.
void Server::start_anchors() {
  auto accounts = ctx_.store->list_accounts();
  if (!accounts.ok()) return;
  for (const auto& a : *accounts) {
    auto cred = ctx_.store->get_credentials(a.account);
    if (cred.ok() && cred.value()) anchors_to_start_.push_back(a.bare_jid);
  }
  S2_LOG(LogLevel::Info, "server.anchors", {{"accounts", anchors_to_start_.size()}});
  // A restart must not open thousands of upstream logins in one burst: 50
  // anchors every 100 ms (a thousand accounts are up in two seconds).
  anchor_starter_ = std::make_unique<Timer>(&loop_);
  anchor_starter_->start(
      0,
      [this] {
        for (int i = 0; i < 50 && !anchors_to_start_.empty(); ++i) {
          if (!ctx_.shutting_down) AccountHub::of(ctx_, anchors_to_start_.back()).start_anchor();
          anchors_to_start_.pop_back();
        }
        if (anchors_to_start_.empty()) anchor_starter_->stop();
      },
      100);
  anchor_starter_->unref();
}

bool Server::listen(const std::string& addr, bool direct_tls, std::string* error) {
  std::string host;
  int port = 0;
  sockaddr_storage ss{};
  const char* key = direct_tls ? "--listen-tls" : "--listen";
  if (!split_host_port(addr, &host, &port) || !resolve_host_port(host, port, &ss, error)) {
    *error = std::string(key) + ": cannot use " + addr + (error->empty() ? "" : ": " + *error);
    return false;
  }
  auto* tcp = new uv_tcp_t;
  uv_tcp_init(&loop_, tcp);
  tcp->data = this;
  listeners_.push_back(tcp);
  int rc = uv_tcp_bind(tcp, reinterpret_cast<sockaddr*>(&ss), 0);
  if (rc == 0) {
    auto cb = direct_tls ? [](uv_stream_t* s, int status) {
      if (status == 0) ClientSession::accept(static_cast<Server*>(s->data)->ctx_, s, true);
    } : [](uv_stream_t* s, int status) {
      if (status == 0) ClientSession::accept(static_cast<Server*>(s->data)->ctx_, s, false);
    };
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), 1024, cb);
  }
  if (rc != 0) {
    *error = std::string(key) + ": cannot listen on " + addr + ": " + uv_strerror(rc);
    return false;
  }
  return true;
}

void Server::reload_tls() {
  std::string error;
  auto fresh = make_server_ctx(ctx_.config.cert_file(), ctx_.config.key_file(), &error);
  if (!fresh) {
    S2_LOG(LogLevel::Error, "server.tls_reload_failed", {{"error", error}});
    return;
  }
  // Sessions that already run keep a reference to the old SSL_CTX through
  // their SSL objects (OpenSSL refcounts it), so swapping is safe.
  ctx_.server_tls = std::move(fresh);
  S2_LOG(LogLevel::Info, "server.tls_reloaded", {{"cert", ctx_.config.cert_file()}});
}

void Server::begin_shutdown(const char* why) {
  if (ctx_.shutting_down) return;
  ctx_.shutting_down = true;
  S2_LOG(LogLevel::Info, "server.shutdown", {{"signal", why}, {"sessions", ctx_.sessions.size()}});
  service::notify_stopping(std::string("draining after ") + why);
  if (metrics_) service::remove_metrics_addr(ctx_.config.data_dir);  // health fails from now on
  for (auto* l : listeners_)
    uv_close(reinterpret_cast<uv_handle_t*>(l),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  listeners_.clear();
  if (metrics_) metrics_->close();
  // Signal handles stay installed (a second SIGTERM must not kill us with
  // the default action) but no longer keep the loop alive.
  for (auto* s : {&sigterm_, &sigint_, &sighup_}) uv_unref(reinterpret_cast<uv_handle_t*>(s));
  // Hibernating devices have no client to close; end their upstream sessions.
  std::vector<Device*> devices;
  for (auto& [d, owned] : ctx_.devices) devices.push_back(d);
  for (auto* d : devices) d->end();
  for (auto& [account, hub] : ctx_.hubs) hub->stop_anchor();
  if (ctx_.cluster) ctx_.cluster->stop();
  // Copy: shutting a session down may remove it from the set.
  std::vector<ClientSession*> sessions(ctx_.sessions.begin(), ctx_.sessions.end());
  for (auto* s : sessions) s->shutdown("system-shutdown", "the proxy is shutting down");
  // Peers get a few seconds to read their </stream:stream>; then we stop.
  // 4 s, so the whole stop (then the store's last commits) stays within the
  // ~5 s the unit file and the README promise.
  force_exit_ = std::make_unique<Timer>(&loop_);
  force_exit_->start(4000, [this] {
    // Something still holds the loop open: say what, for whoever reads why
    // the stop took the full grace period.
    std::map<std::string, int> alive;
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void* arg) {
          if (uv_is_active(h) && uv_has_ref(h) && !uv_is_closing(h))
            ++(*static_cast<std::map<std::string, int>*>(arg))[uv_handle_type_name(h->type)];
        },
        &alive);
    std::string what;
    for (auto& [type, n] : alive)
      what += (what.empty() ? "" : ",") + type + "=" + std::to_string(n);
    S2_LOG(LogLevel::Warn, "server.forced_stop", {{"active_handles", what}});
    uv_stop(&loop_);
  });
  force_exit_->unref();
  token_sweep_.reset();
  idle_sweep_.reset();
  if (storage_) storage_->stop();
  if (retention_) retention_->stop();
  anchor_starter_.reset();
}

// Waits until every writer is idle and every completion has run on this
// thread: Store::flush completes after everything submitted before it (the
// deferrable writes too, and on each of PostgreSQL's writers: a completion run
// after the store is gone would reach into it); rounds repeat while
// completions keep submitting.
void Server::flush_store() {
  if (!ctx_.store || !ctx_.executor) return;
  for (int round = 0; round < 8; ++round) {
    bool done = false;
    ctx_.store->flush([&done](store::WriteResult) { done = true; });
    for (int spins = 0; !done && spins < 20000; ++spins) {
      ctx_.executor->drain();
      if (!done) uv_sleep(1);
    }
    ctx_.executor->drain();
  }
}

int Server::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  force_exit_.reset();
  token_sweep_.reset();
  idle_sweep_.reset();
  ctx_.storage = nullptr;
  storage_.reset();
  retention_.reset();
  anchor_starter_.reset();
  // Let pending writes commit and their completions run (they may submit
  // follow-up writes), then close the mirror before the loop goes away.
  ctx_.devices.clear();
  flush_store();
  ctx_.hubs.clear();
  flush_store();
  ctx_.fast.reset();
  ctx_.vault.reset();
  ctx_.cluster.reset();  // releases the leases (its connection closes)
  ctx_.store.reset();
  if (ctx_.executor) ctx_.executor->drain();
  ctx_.executor.reset();
  if (ctx_.upstream_gate) ctx_.upstream_gate->shutdown();
  // Close whatever is left (after a forced stop) and let close callbacks run.
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  // Closing the signal handles gave SIGTERM and SIGINT their default action
  // back: a repeated SIGTERM (a supervisor, an impatient operator) in the
  // last microseconds before exit must not turn a clean stop into a kill.
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  uv_run(&loop_, UV_RUN_DEFAULT);
  S2_LOG(LogLevel::Info, "server.stopped", {});
  return 0;
}

// Idle connections give memory back (issue 12: RSS per idle device). Every few seconds the XML
// parsers of streams that have rested that long between stanzas are freed (XmlStream::
// release_idle: ~9 KiB each, rebuilt on the next byte), and so are the memory BIOs of TLS
// sessions with nothing buffered (TlsSession::release_idle: the capacity of their largest burst);
// when many were, free heap pages go back to the OS, so RSS shows it.
void Server::start_idle_memory_sweep() {
  static constexpr uint64_t kEveryMs = 5000;
  idle_sweep_ = std::make_unique<Timer>(&loop_);
  idle_sweep_->start(
      kEveryMs,
      [] {
        const size_t parsers = XmlStream::release_idle(std::chrono::milliseconds(kEveryMs));
        const size_t tls = TlsSession::release_idle();
#ifdef __GLIBC__
        if (parsers + tls >= 64) malloc_trim(0);
#endif
        if (parsers + tls > 0)
          S2_LOG(LogLevel::Debug, "memory.idle_released", {{"parsers", parsers}, {"tls", tls}});
      },
      kEveryMs);
  idle_sweep_->unref();
}

}  // namespace s2
