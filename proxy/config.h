// The daemon's configuration: one struct, bound to CLI11 flags that can also
// come from the environment (S2PROXY_<FLAG>) and from a TOML config file
// (--config). Precedence is flag > environment > file > default (CLI11's
// own order). Every key is documented in README.md.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace s2 {

struct Config {
  std::string domain;
  std::string upstream;                       // host:port of the legacy server's c2s
  std::string upstream_tls = "starttls";      // starttls | direct | plain
  std::string upstream_ca;                    // CA file to verify upstream (default: system store)
  bool upstream_insecure = false;             // skip upstream certificate verification
  std::string listen = "127.0.0.1:5222";      // STARTTLS client listener ("" = off)
  std::string listen_tls = "127.0.0.1:5223";  // direct TLS listener, XEP-0368 ("" = off)
  std::string data_dir = "./s2proxy-data";
  std::string tls_cert;  // PEM; default: self-signed in data dir
  std::string tls_key;
  std::string metrics;  // ADDR:PORT for Prometheus text ("" = off)
  std::string log_level = "info";
  std::string log_format = "text";
  uint64_t max_stanza_bytes = 256 * 1024;
  int max_depth = 64;
  double tls_handshake_timeout = 10;              // seconds from accept to finished TLS
  double auth_timeout = 30;                       // seconds from accept to authenticated
  double upstream_timeout = 15;                   // seconds for an upstream login
  uint64_t max_buffered_bytes = 4 * 1024 * 1024;  // per connection, unsent bytes
  double sm_resume_timeout = 300;                 // seconds a device waits for SM resumption
  uint64_t sm_max_queue = 500;                    // unacknowledged stanzas kept per device
  std::string vault_key_file;                     // 32-byte key; default <data-dir>/vault.key
  uint32_t login_free_failures = 5;               // failed logins per IP / account before backoff
  double login_backoff_max = 300;                 // seconds, cap of the doubling lockout
  bool scram_without_from = true;                 // offer SCRAM to streams without 'from'
  double fast_token_lifetime = 14 * 86400;        // seconds a FAST token stays valid
  std::string anchor_resource = "s2proxy";        // the anchor session's resource upstream
  std::string idle_presence = "xa";               // anchor presence with no device available
  uint64_t catchup_max = 10000;                   // legacy catch-up cap per login
  uint64_t mam_default_page = 50;                 // MAM page without <max/>
  uint64_t mam_max_page = 250;                    // MAM page cap
  bool push_body = false;                         // XEP-0357 notifications may carry the body
  double push_coalesce = 2;                       // seconds: one push per device per burst

  // Derived paths.
  std::string cert_file() const;
  std::string key_file() const;
  std::string vault_key_path() const;
};

// Adds every configuration flag to `app` (bound to `cfg`), with env names and
// config-file support.
void add_config_options(CLI::App& app, Config& cfg);

// CLI11 reads a config file before the environment, so the file would win
// over S2PROXY_* variables. The documented order is flag > env > file: this
// turns each set variable whose flag is absent from the command line into a
// flag (inserted right after argv[0]) before parsing.
std::vector<std::string> args_with_env(const CLI::App& app, int argc, char** argv);

// Checks values that CLI11 validators cannot (presence, formats, ranges).
// Returns "" when valid, else a message that starts with the key's flag name.
std::string validate_config(const Config& cfg);

}  // namespace s2
