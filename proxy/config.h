// The daemon's configuration: one struct, and one table of flags (config.cpp)
// that is the single source of `--help`, the README's flag table and the man
// page (config_docs.cpp). Every flag can also come from the environment
// (S2PROXY_<FLAG>) and from a TOML file (--config, config_file.h).
//
// Precedence is flag > environment > file > default. CLI11 parses the command
// line only; apply_env_and_file() then fills what the command line left
// unset, from the environment first and the file second, so every error can
// name where the bad value came from. Every configuration error is one line
// naming the key, and the commands exit 2 on it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

// CLI11 is a large header-only library: declared here, included only where
// the command line is built (config.cpp, main.cpp, the config tests), so the
// proxy's other files do not each compile it.
namespace CLI {
class App;
class ParseError;
}  // namespace CLI

namespace s2 {

struct Config {
  std::string domain;
  std::string upstream;                       // host:port of the legacy server's c2s
  std::string upstream_tls = "starttls";      // starttls | direct | plain
  std::string upstream_ca;                    // CA file to verify upstream (default: system store)
  bool upstream_insecure = false;             // skip upstream certificate verification
  bool upstream_insecure_given = false;       // the key was set at all (even to false)
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
  double upstream_ping_interval = 60;             // silent upstream: probe, then give up (0: off)
  double upstream_login_rate = 150;               // upstream logins started per second (0: any)
  uint32_t upstream_logins_in_flight = 64;        // upstream logins running at once (0: any)
  uint64_t max_buffered_bytes = 4 * 1024 * 1024;  // per connection, unsent bytes
  uint64_t client_read_rate = 1 << 20;            // bytes/s read per client connection (0: any)
  uint64_t client_read_burst = 4 << 20;           // bytes read at once before pacing starts
  uint32_t client_stanza_rate = 1000;             // stanzas/s sustained ⇒ policy-violation
  uint32_t client_stanza_window = 30;             // seconds the stanza rate is averaged over
  double sm_resume_timeout = 300;                 // seconds a device waits for SM resumption
  uint64_t sm_max_queue = 500;                    // unacknowledged stanzas kept per device
  uint64_t csi_max_queue = 256;                   // stanzas held per CSI-inactive device
  std::string vault_key_file;                     // 32-byte key; default <data-dir>/vault.key
  uint64_t min_free_disk = uint64_t{128} << 20;   // reserve on the data dir's filesystem
  uint64_t mirror_max_size = uint64_t{64} << 30;  // the LMDB map's ceiling
  std::string store = "lmdb";               // "lmdb" (<data-dir>/mirror) or a postgresql:// URL
  std::string advertise;                    // HOST:PORT other nodes send this node's devices to
  double archive_max_age = 0;               // seconds of history kept per account (0: all)
  uint64_t archive_max_messages = 0;        // messages kept per account (0: all)
  double archive_sweep_interval = 3600;     // seconds between retention sweeps
  uint32_t login_free_failures = 5;         // failed logins per IP / account before backoff
  double login_backoff_max = 300;           // seconds, cap of the doubling lockout
  bool scram_without_from = true;           // offer SCRAM to streams without 'from'
  double fast_token_lifetime = 14 * 86400;  // seconds a FAST token stays valid
  std::string anchor_resource = "s2proxy";  // the anchor session's resource upstream
  std::string idle_presence = "xa";         // anchor presence with no device available
  bool anchor_on_device_link = true;        // an only device's link also serves as the anchor
  bool anchor_keeps_device_link = true;     // ...and stays the anchor's when that device ends
  double anchor_move_after = 60;            // seconds a lone device is attached before the
                                            // anchor leaves its own session for the link
  uint64_t anchor_move_after_ms() const { return static_cast<uint64_t>(anchor_move_after * 1000); }
  uint64_t catchup_max = 10000;    // legacy catch-up cap per login
  uint64_t mam_default_page = 50;  // MAM page without <max/>
  uint64_t mam_max_page = 250;     // MAM page cap
  std::string config_file;         // --config: the TOML file read
  bool push_body = false;          // XEP-0357 notifications may carry the body
  double push_coalesce = 2;        // seconds: one push per device per burst
  // Per source address and connection limits (issue 12; docs/architecture.md "Limits at 10k").
  uint32_t login_concurrency_per_address = 8;      // logins verified at once per address
  uint32_t login_queue_per_address = 500;          // logins waiting for a slot per address
  uint64_t max_clients = 0;                        // client connections in all (0: fd limit)
  uint32_t max_unauthenticated = 5000;             // unauthenticated connections in all (0: no cap)
  uint32_t max_unauthenticated_per_address = 500;  // … per address (IPv6: /64) (0: no cap)
  std::string proxy_protocol;                      // listeners expecting a PROXY header
  std::string proxy_protocol_from;                 // networks allowed to send it ("" = any)
  bool proxy_protocol_on(bool direct_tls) const;

  // Derived paths.
  std::string cert_file() const;
  std::string key_file() const;
  std::string vault_key_path() const;
};

// One configuration flag as documented: the README's table, the man page and
// `--help` are all rendered from the list flag_docs() returns.
struct FlagDoc {
  std::string name;                  // without "--"
  std::string value_name;            // HOST:PORT, SECONDS, FILE, …
  std::string default_text;          // in plain units: "300", "`starttls`", "off"
  std::string meaning;               // one paragraph
  std::vector<std::string> aliases;  // other flag names documented in the same row
};
const std::vector<FlagDoc>& flag_docs();

// "--upstream-tls" ⇒ "S2PROXY_UPSTREAM_TLS".
std::string env_name(const std::string& flag);

// Adds every configuration flag to `app` (run, check-config, accounts),
// bound to `cfg`, with its default in plain units.
void add_config_options(CLI::App& app, Config& cfg);

// After app.parse(): fills each option the command line left unset from its
// S2PROXY_* variable, then from the TOML file (--config or S2PROXY_CONFIG).
// Returns "" or one line naming the key, where it came from and what is wrong.
std::string apply_env_and_file(CLI::App& app, Config& cfg);

// Checks values that CLI11 validators cannot (presence, formats, ranges,
// combinations). Pure. Returns "" when valid, else a message that starts with
// the key's flag name.
std::string validate_config(const Config& cfg);

// Checks the files the configuration names: --upstream-ca, --tls-cert and
// --tls-key must be readable regular files (the key not readable by others),
// an existing vault key must be a private 32-byte file. Touches nothing.
// Returns "" or a message that starts with the key's flag name.
std::string check_config_files(const Config& cfg);

// File descriptors for --max-clients (docs/architecture.md "Limits at
// 10k"): each device needs about kFdsPerClient (its client connection, its
// upstream session, its share of the per-account anchors), plus kFdReserve
// for listeners, the mirror, logs and resolvers. Pure: the caller passes the
// RLIMIT_NOFILE soft and hard limits (RLIM_INFINITY as a large number) and
// applies soft_target with setrlimit.
constexpr uint64_t kFdsPerClient = 3;
constexpr uint64_t kFdReserve = 64;
constexpr uint64_t kFdsFor10k = 10000 * kFdsPerClient + kFdReserve;
struct FdPlan {
  uint64_t soft_target = 0;  // raise the soft limit to this (≤ hard); 0 = leave it
  uint64_t max_clients = 0;  // the effective cap
  std::string error;         // the limit cannot hold an explicit --max-clients (exit 2)
  std::string warning;       // --max-clients 0 and the limit holds fewer than 10000
};
FdPlan plan_descriptors(uint64_t max_clients, uint64_t soft, uint64_t hard);

// A CLI11 parse error as one line naming the flag ("--max-depth: value 2000
// not in range 4 to 1024", "--no-such-flag: unknown flag").
std::string describe_parse_error(const CLI::ParseError& e);

}  // namespace s2
