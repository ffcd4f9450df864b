// See config.h.
#include "proxy/config.h"

#include "common/net/connection.h"

namespace s2 {

std::string Config::cert_file() const {
  return tls_cert.empty() ? data_dir + "/tls/" + domain + ".crt" : tls_cert;
}
std::string Config::key_file() const {
  return tls_key.empty() ? data_dir + "/tls/" + domain + ".key" : tls_key;
}

std::string Config::vault_key_path() const {
  return vault_key_file.empty() ? data_dir + "/vault.key" : vault_key_file;
}

namespace {
// Flag "--upstream-tls" ⇒ env "S2PROXY_UPSTREAM_TLS".
std::string env_name(const std::string& flag) {
  std::string e = "S2PROXY_";
  for (char c : flag) e += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return e;
}

template <typename T>
CLI::Option* opt(CLI::App& app, const std::string& name, T& var, const std::string& help) {
  return app.add_option("--" + name, var, help)->envname(env_name(name))->capture_default_str();
}
}  // namespace

void add_config_options(CLI::App& app, Config& c) {
  app.set_config("--config", "", "TOML config file; keys are the flag names without --");
  // An unknown key in the file is an error naming it, not silently ignored.
  app.allow_config_extras(CLI::config_extras_mode::error);
  opt(app, "domain", c.domain, "XMPP domain served (the upstream's virtual host)");
  opt(app, "upstream", c.upstream, "upstream c2s address HOST:PORT");
  opt(app, "upstream-tls", c.upstream_tls, "how to secure upstream: starttls|direct|plain")
      ->check(CLI::IsMember({"starttls", "direct", "plain"}));
  opt(app, "upstream-ca", c.upstream_ca, "CA file that signs the upstream certificate");
  app.add_flag("--upstream-insecure", c.upstream_insecure,
               "do not verify the upstream certificate (testing only)")
      ->envname(env_name("upstream-insecure"));
  opt(app, "listen", c.listen, "client listener with STARTTLS, ADDR:PORT (empty: off)");
  opt(app, "listen-tls", c.listen_tls, "client listener with direct TLS (XEP-0368), ADDR:PORT");
  opt(app, "data-dir", c.data_dir, "state directory (certificate, mirror, vault)");
  opt(app, "tls-cert", c.tls_cert,
      "PEM certificate for clients (default: self-signed in data dir)");
  opt(app, "tls-key", c.tls_key, "PEM private key for --tls-cert");
  opt(app, "metrics", c.metrics, "Prometheus endpoint ADDR:PORT (empty: off)");
  opt(app, "log-level", c.log_level, "debug|info|warn|error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  opt(app, "log-format", c.log_format, "text|json")->check(CLI::IsMember({"text", "json"}));
  opt(app, "max-stanza-bytes", c.max_stanza_bytes, "largest stanza accepted from a client")
      ->check(CLI::Range(uint64_t{1024}, uint64_t{64} << 20));
  opt(app, "max-depth", c.max_depth, "deepest XML nesting accepted")->check(CLI::Range(4, 1024));
  opt(app, "tls-handshake-timeout", c.tls_handshake_timeout, "seconds to finish TLS")
      ->check(CLI::Range(0.1, 3600.0));
  opt(app, "auth-timeout", c.auth_timeout, "seconds from connect to authenticated")
      ->check(CLI::Range(0.1, 3600.0));
  opt(app, "upstream-timeout", c.upstream_timeout, "seconds for an upstream login")
      ->check(CLI::Range(0.1, 3600.0));
  opt(app, "max-buffered-bytes", c.max_buffered_bytes, "unsent bytes buffered per connection")
      ->check(CLI::Range(uint64_t{16384}, uint64_t{1} << 32));
  opt(app, "sm-resume-timeout", c.sm_resume_timeout,
      "seconds a disconnected device stays resumable (XEP-0198)")
      ->check(CLI::Range(1.0, 86400.0));
  opt(app, "sm-max-queue", c.sm_max_queue, "unacknowledged stanzas kept per device")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000}));
  opt(app, "vault-key-file", c.vault_key_file,
      "32-byte key sealing stored credentials (default: created 0600 in the data dir)");
  opt(app, "login-free-failures", c.login_free_failures,
      "failed logins per source address and per account before backoff starts")
      ->check(CLI::Range(0u, 1000u));
  opt(app, "login-backoff-max", c.login_backoff_max, "seconds, cap of the login backoff")
      ->check(CLI::Range(1.0, 86400.0));
  app.add_option("--scram-without-from", c.scram_without_from,
                 "offer SCRAM to streams whose header names no account (true|false)")
      ->envname(env_name("scram-without-from"))
      ->capture_default_str();
  opt(app, "fast-token-lifetime", c.fast_token_lifetime, "seconds a FAST token is valid")
      ->check(CLI::Range(60.0, 366.0 * 86400));
  opt(app, "anchor-resource", c.anchor_resource,
      "resource of the per-account anchor session upstream");
  opt(app, "idle-presence", c.idle_presence,
      "anchor presence while no device is available: xa | away | dnd | unavailable")
      ->check(CLI::IsMember({"xa", "away", "dnd", "unavailable"}));
  opt(app, "catchup-max", c.catchup_max,
      "most messages a legacy device is sent at login for what it missed")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1000000}));
  opt(app, "mam-default-page", c.mam_default_page, "MAM page size when a query sets no <max/>")
      ->check(CLI::Range(uint64_t{1}, uint64_t{10000}));
  opt(app, "mam-max-page", c.mam_max_page, "largest MAM page the proxy serves")
      ->check(CLI::Range(uint64_t{1}, uint64_t{10000}));
  opt(app, "push-body", c.push_body, "XEP-0357 notifications carry the message body (true|false)");
  opt(app, "push-coalesce", c.push_coalesce, "seconds in which one device gets one push")
      ->check(CLI::Range(0.0, 3600.0));
}

std::vector<std::string> args_with_env(const CLI::App& app, int argc, char** argv) {
  std::vector<std::string> given(argv + 1, argv + argc);
  std::vector<std::string> out;
  for (const CLI::Option* o : app.get_options()) {
    const std::string& env = o->get_envname();
    if (env.empty()) continue;
    const char* value = std::getenv(env.c_str());
    if (!value) continue;
    const std::string flag = "--" + o->get_single_name();
    bool on_cmdline = false;
    for (const auto& a : given)
      if (a == flag || a.rfind(flag + "=", 0) == 0) on_cmdline = true;
    if (on_cmdline) continue;
    if (o->get_expected_min() == 0) {
      out.push_back(flag + "=" + value);  // a flag: --upstream-insecure=true
    } else {
      out.push_back(flag);  // separate value, so an empty variable means "off"
      out.push_back(value);
    }
  }
  out.insert(out.end(), given.begin(), given.end());
  return out;
}

std::string validate_config(const Config& c) {
  std::string host;
  int port = 0;
  if (c.domain.empty()) return "--domain: required (the XMPP domain to serve)";
  if (c.domain.find_first_of("/@ ") != std::string::npos) return "--domain: not a domain name";
  if (c.upstream.empty()) return "--upstream: required (HOST:PORT of the legacy server)";
  if (!split_host_port(c.upstream, &host, &port)) return "--upstream: expected HOST:PORT";
  if (c.listen.empty() && c.listen_tls.empty())
    return "--listen: at least one of --listen and --listen-tls is needed";
  if (!c.listen.empty() && !split_host_port(c.listen, &host, &port))
    return "--listen: expected ADDR:PORT";
  if (!c.listen_tls.empty() && !split_host_port(c.listen_tls, &host, &port))
    return "--listen-tls: expected ADDR:PORT";
  if (!c.metrics.empty() && !split_host_port(c.metrics, &host, &port))
    return "--metrics: expected ADDR:PORT";
  if (c.tls_cert.empty() != c.tls_key.empty())
    return c.tls_cert.empty() ? "--tls-cert: required with --tls-key"
                              : "--tls-key: required with --tls-cert";
  if (c.data_dir.empty()) return "--data-dir: required";
  if (c.anchor_resource.empty() || c.anchor_resource.find_first_of("/@ ") != std::string::npos)
    return "--anchor-resource: a non-empty resource without '/', '@' or spaces";
  if (c.mam_max_page * 2 > c.sm_max_queue)
    return "--mam-max-page: must be at most half of --sm-max-queue (a page is queued for SM)";
  if (c.upstream_insecure && !c.upstream_ca.empty())
    return "--upstream-insecure: cannot be combined with --upstream-ca";
  return "";
}

}  // namespace s2
