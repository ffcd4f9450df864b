// See config.h. The table in specs() is the one list of flags: CLI11 options,
// the TOML keys, the S2PROXY_* variables and the documentation all come from
// it, so they cannot drift apart.
#include "proxy/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <optional>
#include <sstream>

#include "common/crypto/vault.h"
#include "common/net/connection.h"
#include "common/net/proxy_protocol.h"
#include "common/store/pg_store.h"
#include "proxy/config_file.h"

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

bool Config::proxy_protocol_on(bool direct_tls) const {
  const std::string want = direct_tls ? "listen-tls" : "listen";
  size_t start = 0;
  while (start <= proxy_protocol.size()) {
    size_t comma = proxy_protocol.find(',', start);
    if (comma == std::string::npos) comma = proxy_protocol.size();
    std::string item = proxy_protocol.substr(start, comma - start);
    std::erase(item, ' ');
    if (item == want) return true;
    start = comma + 1;
  }
  return false;
}

std::string env_name(const std::string& flag) {
  std::string e = "S2PROXY_";
  for (char c : flag) e += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return e;
}

namespace {
using AddFn = std::function<CLI::Option*(CLI::App&, Config&, const std::string& flag,
                                         const std::string& help)>;

struct Spec {
  FlagDoc doc;
  TomlKind kind;  // what the TOML file must hold for this key
  bool in_file;   // may appear in the TOML file
  AddFn add;
  std::optional<CLI::Validator> check;
};

template <typename T>
constexpr TomlKind kind_of() {
  if constexpr (std::is_same_v<T, std::string>) return TomlKind::String;
  if constexpr (std::is_same_v<T, bool>) return TomlKind::Boolean;
  if constexpr (std::is_floating_point_v<T>) return TomlKind::Float;
  return TomlKind::Integer;
}

template <typename T>
Spec flag(const char* name, T Config::*member, const char* value_name, const char* default_text,
          const char* meaning, std::optional<CLI::Validator> check = std::nullopt) {
  Spec s;
  s.doc = FlagDoc{name, value_name, default_text, meaning, {}};
  s.kind = kind_of<T>();
  s.in_file = true;
  s.check = std::move(check);
  s.add = [member](CLI::App& app, Config& c, const std::string& f, const std::string& help) {
    if constexpr (std::is_same_v<T, bool>) {
      if (member == &Config::upstream_insecure) return app.add_flag(f, c.*member, help);
    }
    return app.add_option(f, c.*member, help);
  };
  return s;
}

// CLI11's own range text prints doubles as "3.16224e+07"; defaults and
// bounds are shown in plain numbers.
template <typename T>
std::string plain_number(T v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}
template <typename T>
CLI::Validator range(T lo, T hi) {
  CLI::Validator v = CLI::Range(lo, hi);
  v.description(plain_number(lo) + ".." + plain_number(hi));
  return v;
}
CLI::Validator seconds(double lo, double hi) { return range(lo, hi); }

const std::vector<Spec>& specs() {
  static const std::vector<Spec> all = [] {
    std::vector<Spec> v = {
        flag("domain", &Config::domain, "DOMAIN", "— (required)",
             "XMPP domain served; the upstream's virtual host"),
        flag("upstream", &Config::upstream, "HOST:PORT", "— (required)",
             "upstream c2s `HOST:PORT`"),
        flag("upstream-tls", &Config::upstream_tls, "MODE", "`starttls`",
             "`starttls`, `direct` (XEP-0368) or `plain` (only to a loopback upstream: no TLS "
             "session per device link, ~15 KiB and a handshake less per device on each side; "
             "docs/architecture.md §25)",
             CLI::IsMember({"starttls", "direct", "plain"})),
        flag("upstream-ca", &Config::upstream_ca, "FILE", "system store",
             "CA file that signs the upstream certificate (verified for `--domain`)"),
        flag("upstream-insecure", &Config::upstream_insecure, "", "off",
             "do not verify the upstream certificate (testing only; excludes `--upstream-ca`, "
             "even when set to false)"),
        flag("listen", &Config::listen, "ADDR:PORT", "`127.0.0.1:5222`",
             "client listener with STARTTLS; empty turns it off"),
        flag("listen-tls", &Config::listen_tls, "ADDR:PORT", "`127.0.0.1:5223`",
             "client listener with direct TLS (XEP-0368); empty turns it off"),
        flag("data-dir", &Config::data_dir, "DIR", "`./s2proxy-data`",
             "state: `tls/` (self-signed cert), `mirror/` (LMDB), `vault.key`"),
        flag("tls-cert", &Config::tls_cert, "FILE", "self-signed",
             "PEM certificate and key for clients. Without them, `<data-dir>/tls/<domain>.crt` is "
             "created on first start (EC P-256, SAN domain and `*.domain`, key 0600) and reused; "
             "SIGHUP reloads it. The key must not be readable by others"),
        flag("tls-key", &Config::tls_key, "FILE", "self-signed", "PEM private key for --tls-cert"),
        flag("metrics", &Config::metrics, "ADDR:PORT", "off",
             "Prometheus text endpoint `ADDR:PORT` (`GET /metrics`)"),
        flag("log-level", &Config::log_level, "LEVEL", "`info`", "`debug`, `info`, `warn`, `error`",
             CLI::IsMember({"debug", "info", "warn", "error"})),
        flag("log-format", &Config::log_format, "FORMAT", "`text`",
             "`text` (key=value) or `json`; one line per event, never passwords, tokens or bodies",
             CLI::IsMember({"text", "json"})),
        flag("max-stanza-bytes", &Config::max_stanza_bytes, "BYTES", "262144",
             "largest stanza accepted from a client (1024 to 67108864)",
             range(uint64_t{1024}, uint64_t{64} << 20)),
        flag("max-depth", &Config::max_depth, "N", "64", "deepest XML nesting accepted (4 to 1024)",
             range(4, 1024)),
        flag("tls-handshake-timeout", &Config::tls_handshake_timeout, "SECONDS", "10",
             "seconds allowed to finish TLS", seconds(0.1, 3600)),
        flag("auth-timeout", &Config::auth_timeout, "SECONDS", "30",
             "seconds from connect to authenticated", seconds(0.1, 3600)),
        flag("upstream-timeout", &Config::upstream_timeout, "SECONDS", "15",
             "seconds for an upstream login (counted from its turn, see below)",
             seconds(0.1, 3600)),
        flag("upstream-ping-interval", &Config::upstream_ping_interval, "SECONDS", "60",
             "an upstream session that heard nothing for this long is probed (SM <r/> or an "
             "XEP-0199 ping); silent for another interval, it is treated as cut and reconnected "
             "(a network cut without FIN is otherwise noticed only when TCP gives up); 0: off",
             seconds(0, 3600)),
        flag("upstream-login-rate", &Config::upstream_login_rate, "PER_SECOND", "150",
             "upstream logins (device links and anchors) started per second, in arrival order, "
             "so that devices reconnecting together never stampede the upstream (Prosody 0.12 "
             "sustains ~300-450 stored-secret logins/s per core); 0: no pacing",
             range(0.0, 100000.0)),
        flag("upstream-logins-in-flight", &Config::upstream_logins_in_flight, "N", "64",
             "upstream logins authenticating at once; 0: no cap", range(0u, 100000u)),
        flag("max-buffered-bytes", &Config::max_buffered_bytes, "BYTES", "4194304",
             "unsent bytes buffered per connection (slow readers are disconnected)",
             range(uint64_t{16384}, uint64_t{1} << 32)),
        flag("client-read-rate", &Config::client_read_rate, "BYTES_PER_S", "1048576",
             "bytes read per second from one client connection (1 MiB/s); over it reading "
             "pauses until the allowance refills, the stream is not cut; 0: no limit",
             range(uint64_t{0}, uint64_t{1} << 40)),
        flag("client-read-burst", &Config::client_read_burst, "BYTES", "4194304",
             "bytes a client may send at once before --client-read-rate paces it (4 MiB)",
             range(uint64_t{65536}, uint64_t{1} << 40)),
        flag("client-stanza-rate", &Config::client_stanza_rate, "PER_SECOND", "1000",
             "stanzas per second from one client connection, averaged over "
             "--client-stanza-window; over it the stream ends with policy-violation; 0: no "
             "ceiling",
             range(0u, 1000000u)),
        flag("client-stanza-window", &Config::client_stanza_window, "SECONDS", "30",
             "seconds --client-stanza-rate is averaged over", range(1u, 3600u)),
        flag("sm-resume-timeout", &Config::sm_resume_timeout, "SECONDS", "300",
             "seconds a disconnected device stays resumable (XEP-0198)", seconds(1, 86400)),
        flag("sm-max-queue", &Config::sm_max_queue, "N", "500",
             "unacknowledged stanzas kept per device", range(uint64_t{1}, uint64_t{100000})),
        flag("csi-max-queue", &Config::csi_max_queue, "N", "256",
             "stanzas held per CSI-inactive device (XEP-0352); a full queue is flushed, never "
             "dropped; 0 holds nothing",
             range(uint64_t{0}, uint64_t{100000})),
        flag("push-body", &Config::push_body, "BOOL", "`false`",
             "XEP-0357 notifications carry the message body (`last-message-body`) for accounts "
             "without their own setting (`s2proxy accounts push-body JID on|off|default`); never "
             "for an encrypted message"),
        flag("push-coalesce", &Config::push_coalesce, "SECONDS", "2",
             "one XEP-0357 notification per device per this many seconds (0: one per urgent "
             "message)",
             seconds(0, 3600)),
        flag("vault-key-file", &Config::vault_key_file, "FILE", "`<data-dir>/vault.key`",
             "32-byte key sealing stored credentials and deriving FAST tokens; created 0600 when "
             "absent; refused when readable by group or others"),
        flag("min-free-disk", &Config::min_free_disk, "BYTES", "134217728",
             "free space kept on the data dir's filesystem (128 MiB): below it new persistent "
             "messages from devices are refused with resource-constraint (type wait) until space "
             "returns, while what enters from the upstream may still use the reserve; 0: none",
             range(uint64_t{0}, uint64_t{1} << 50)),
        flag("mirror-max-size", &Config::mirror_max_size, "BYTES", "68719476736",
             "largest size of the mirror (its LMDB map, 64 GiB); when it is reached new persistent "
             "messages from devices are refused as on a full disk",
             range(uint64_t{1} << 20, uint64_t{1} << 46)),
        flag("store", &Config::store, "URL", "`lmdb`",
             "where the mirror and its records live: `lmdb` (embedded, `<data-dir>/mirror`) or "
             "a PostgreSQL URL `postgresql://USER@HOST[:PORT]/DB` (tables `s2_*`, created on "
             "first start; libpq syntax, so `?sslmode=require` and the PG* environment work). "
             "Keep the password out of the URL: use `~/.pgpass` or `PGPASSWORD`. The URL is "
             "never logged with its password",
             CLI::Validator(
                 [](std::string& v) -> std::string {
                   if (v == "lmdb" || s2::store::is_postgresql_url(v)) return "";
                   return "expected `lmdb` or a postgresql:// URL";
                 },
                 "lmdb|postgresql://…")),
        flag("advertise", &Config::advertise, "HOST:PORT", "—",
             "with a PostgreSQL store: where devices reach this node. Several nodes may share "
             "one database; each account is served by one of them (a lease in the database), "
             "and a device that logs in on another node is sent here with the "
             "`see-other-host` stream error naming this address. Without it, such a device is "
             "refused with `undefined-condition` and a text naming the owner"),
        flag("archive-max-age", &Config::archive_max_age, "SECONDS", "0",
             "history kept per account in the mirror, by age; older messages are pruned by a "
             "periodic sweep in small batches (0: keep all)",
             seconds(0, 100.0 * 366 * 86400)),
        flag("archive-max-messages", &Config::archive_max_messages, "N", "0",
             "messages kept per account in the mirror; the oldest beyond it are pruned by the "
             "sweep (0: keep all)",
             range(uint64_t{0}, uint64_t{1} << 48)),
        flag("archive-sweep-interval", &Config::archive_sweep_interval, "SECONDS", "3600",
             "seconds between retention sweeps (the first runs 5 s after start)",
             seconds(1, 7 * 86400)),
        flag("fast-token-lifetime", &Config::fast_token_lifetime, "SECONDS", "1209600",
             "seconds a FAST token is valid (14 days)", seconds(60, 366.0 * 86400)),
        flag("login-free-failures", &Config::login_free_failures, "N", "5",
             "failed logins per source address (IPv6: per /64) and per account before the "
             "backoff starts",
             range(0u, 1000u)),
        flag("login-backoff-max", &Config::login_backoff_max, "SECONDS", "300",
             "seconds, cap of the doubling login lockout (1 s, 2 s, 4 s, …)", seconds(1, 86400)),
        flag("scram-without-from", &Config::scram_without_from, "BOOL", "`true`",
             "also offer SCRAM to streams whose header names no account (see "
             "docs/architecture.md)"),
        flag("anchor-resource", &Config::anchor_resource, "RESOURCE", "`s2proxy`",
             "resource of the per-account anchor session upstream (two proxies must never share "
             "accounts with the same anchor resource: the upstream would make their anchors "
             "replace each other)"),
        flag("anchor-on-device-link", &Config::anchor_on_device_link, "BOOL", "`true`",
             "while an account's only device is attached and its anchor has no session yet, the "
             "device's upstream link also serves as the anchor: one upstream session per "
             "single-device account instead of two (docs/architecture.md §22); `false`: every "
             "account keeps an anchor session of its own"),
        flag("anchor-move-after", &Config::anchor_move_after, "SECONDS", "60",
             "seconds an account's only device stays attached before an anchor that has a "
             "session of its own moves onto the device's link and ends that session (after a "
             "restart, or when the device came back): one upstream session again; shorter visits "
             "keep both, which spares the upstream a login per visit. Needs "
             "`anchor-on-device-link`",
             seconds(0, 86400)),
        flag("anchor-keeps-device-link", &Config::anchor_keeps_device_link, "BOOL", "`true`",
             "when the device whose link the anchor rides ends, the anchor keeps that upstream "
             "session as its own (same resource, idle presence, no new login), and the device "
             "takes it back when it binds that resource again: a phone that comes and goes costs "
             "the upstream no login at all (docs/architecture.md §26); `false`: the anchor logs "
             "in a session of its own under `anchor-resource` when the device ends"),
        flag("idle-presence", &Config::idle_presence, "SHOW", "`xa`",
             "the anchor's presence while no device is available: `xa`, `away`, `dnd`, or "
             "`unavailable` (then the upstream keeps bare-JID messages in offline storage until "
             "a device is back; the anchor collects them)",
             CLI::IsMember({"xa", "away", "dnd", "unavailable"})),
        flag("catchup-max", &Config::catchup_max, "N", "10000",
             "most messages a legacy device is sent at login for what it missed (older ones "
             "stay in MAM)",
             range(uint64_t{0}, uint64_t{1000000})),
        flag("mam-default-page", &Config::mam_default_page, "N", "50",
             "MAM page size when a query has no `<max/>`", range(uint64_t{1}, uint64_t{10000})),
        flag("mam-max-page", &Config::mam_max_page, "N", "250",
             "largest MAM page served (at most half of `--sm-max-queue`: a page is queued for SM)",
             range(uint64_t{1}, uint64_t{10000})),
        flag("login-concurrency-per-address", &Config::login_concurrency_per_address, "N", "8",
             "logins verified at once per source address (IPv6: per /64); further logins from "
             "the address wait for a free slot in arrival order (devices behind one NAT address "
             "are paced, not refused)",
             range(1u, 10000u)),
        flag("login-queue-per-address", &Config::login_queue_per_address, "N", "500",
             "logins waiting for a slot per source address; a login beyond a full queue gets "
             "`temporary-auth-failure`. Waiting counts against `--auth-timeout`",
             range(0u, 1000000u)),
        flag("max-clients", &Config::max_clients, "N", "0 (from the descriptor limit)",
             "client connections in all; more are refused at accept. Each device needs about 3 "
             "file descriptors (client, upstream session, its share of the anchors): at start the "
             "soft `RLIMIT_NOFILE` is raised towards the hard one, and a value the limit cannot "
             "hold stops the start with exit status 2 (raise `LimitNOFILE=` or `ulimit -n`). 0: "
             "as many as the limit holds, with a warning when that is under 10000",
             range(uint64_t{0}, uint64_t{10000000})),
        flag("max-unauthenticated", &Config::max_unauthenticated, "N", "5000",
             "connections not yet authenticated, in all; more are refused at accept (0: no cap)",
             range(0u, 10000000u)),
        flag("max-unauthenticated-per-address", &Config::max_unauthenticated_per_address, "N",
             "500",
             "connections not yet authenticated per source address (IPv6: per /64); more from "
             "that address are refused at accept (0: no cap)",
             range(0u, 10000000u)),
        flag("proxy-protocol", &Config::proxy_protocol, "LISTENERS", "off",
             "listeners behind a load balancer that sends the PROXY protocol header (v1 or v2) "
             "first: `listen`, `listen-tls`, or both comma-separated. Limits, throttling and logs "
             "then use the client address the header names; a connection without a valid header "
             "is closed. Such a listener must be reachable only from the balancer (or set "
             "`--proxy-protocol-from`): anyone who can connect to it can claim any address"),
        flag("proxy-protocol-from", &Config::proxy_protocol_from, "NETWORKS", "any",
             "comma-separated addresses or networks (`10.0.0.0/8`, `2001:db8::/32`) allowed to "
             "send the PROXY header; connections from elsewhere to a `--proxy-protocol` listener "
             "are closed at accept"),
        flag("config", &Config::config_file, "FILE", "—", "TOML config file"),
    };
    v.back().in_file = false;
    for (auto& s : v)
      if (s.doc.name == "tls-cert") s.doc.aliases = {"tls-key"};
    return v;
  }();
  return all;
}

const Spec* find_spec(std::string_view name) {
  for (const auto& s : specs())
    if (s.doc.name == name) return &s;
  return nullptr;
}

// Markdown-ish text for a terminal: no backticks.
std::string plain(std::string s) {
  std::erase(s, '`');
  return s;
}

const char* kind_name(TomlKind k) {
  switch (k) {
    case TomlKind::String:
      return "a string";
    case TomlKind::Integer:
      return "an integer";
    case TomlKind::Float:
      return "a number";
    case TomlKind::Boolean:
      return "a boolean (true or false)";
    case TomlKind::Other:
      break;
  }
  return "a table, array or date";
}

// CLI11 says "--max-depth: Value 2000 not in range 4 to 1024"; the caller
// names the key itself, so keep only what is wrong.
std::string reason(const CLI::ParseError& e, const std::string& flag) {
  std::string r = e.what();
  if (r.rfind(flag + ": ", 0) == 0) r = r.substr(flag.size() + 2);
  if (r.rfind("Could not convert: ", 0) == 0) r = "not a valid value: " + r.substr(19);
  if (!r.empty() && r[0] >= 'A' && r[0] <= 'Z' && r.rfind("INI", 0) != 0) r[0] = r[0] - 'A' + 'a';
  return r;
}

// Sets an option the command line left unset; `where` says where the value
// came from (an environment variable, a file and line).
std::string apply(CLI::Option* opt, const std::string& value, const std::string& where) {
  const std::string flag = "--" + opt->get_single_name();
  try {
    if (opt->get_expected_min() == 0)
      opt->add_result(opt->get_flag_value(opt->get_single_name(), value));
    else
      opt->add_result(value);
    opt->run_callback();
  } catch (const CLI::ParseError& e) {
    return flag + " (" + where + "): " + reason(e, flag);
  }
  return "";
}

bool readable_file(const std::string& path, std::string* why, struct stat* st) {
  if (stat(path.c_str(), st) != 0) {
    *why = std::string(std::strerror(errno));
    return false;
  }
  if (!S_ISREG(st->st_mode)) {
    *why = "not a regular file";
    return false;
  }
  if (access(path.c_str(), R_OK) != 0) {
    *why = "not readable: " + std::string(std::strerror(errno));
    return false;
  }
  return true;
}
}  // namespace

const std::vector<FlagDoc>& flag_docs() {
  static const std::vector<FlagDoc> docs = [] {
    std::vector<FlagDoc> d;
    for (const auto& s : specs())
      if (s.doc.name != "tls-key") d.push_back(s.doc);
    return d;
  }();
  return docs;
}

void add_config_options(CLI::App& app, Config& c) {
  for (const auto& s : specs()) {
    std::string help = plain(s.doc.meaning) + " [default: " + plain(s.doc.default_text) +
                       "] [env: " + env_name(s.doc.name) + "]";
    CLI::Option* o = s.add(app, c, "--" + s.doc.name, help);
    if (!s.doc.value_name.empty()) o->type_name(s.doc.value_name);
    if (s.check) o->check(*s.check);
  }
}

std::string apply_env_and_file(CLI::App& app, Config& cfg) {
  // --config first: the file to read may itself come from S2PROXY_CONFIG.
  std::vector<const Spec*> order = {find_spec("config")};
  for (const auto& s : specs())
    if (s.doc.name != "config") order.push_back(&s);
  for (const Spec* s : order) {
    CLI::Option* opt = app.get_option_no_throw("--" + s->doc.name);
    if (!opt || opt->count() > 0) continue;
    const std::string env = env_name(s->doc.name);
    if (const char* v = std::getenv(env.c_str())) {
      if (auto e = apply(opt, v, "from " + env); !e.empty()) return e;
    }
  }
  if (!cfg.config_file.empty()) {
    TomlFile file = read_toml_config(cfg.config_file);
    if (!file.error.empty()) return "--config: " + file.error;
    for (const auto& entry : file.entries) {
      const std::string where = cfg.config_file + ":" + std::to_string(entry.line);
      const Spec* s = find_spec(entry.key);
      if (!s || !s->in_file)
        return "--config: " + where + ": unknown key '" + entry.key +
               "' (keys are the flag names "
               "without --; see s2proxy run --help)";
      const bool number_ok = s->kind == TomlKind::Float && entry.kind == TomlKind::Integer;
      if (entry.kind != s->kind && !number_ok)
        return "--config: " + where + ": " + entry.key + " must be " + kind_name(s->kind) +
               ", not " + kind_name(entry.kind);
      CLI::Option* opt = app.get_option_no_throw("--" + s->doc.name);
      if (!opt || opt->count() > 0) continue;  // the command line or environment wins
      if (auto e = apply(opt, entry.value, "in " + where); !e.empty()) return e;
    }
  }
  if (CLI::Option* o = app.get_option_no_throw("--upstream-insecure"))
    cfg.upstream_insecure_given = o->count() > 0;
  return "";
}

std::string describe_parse_error(const CLI::ParseError& e) {
  std::string what = e.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
    // "The following arguments were not expected: 1 --foo": name the flag.
    const auto colon = what.find(": ");
    std::string flags;
    std::istringstream words(colon == std::string::npos ? what : what.substr(colon + 2));
    for (std::string w; words >> w;)
      if (w.rfind('-', 0) == 0) flags += (flags.empty() ? "" : ", ") + w;
    if (!flags.empty()) return flags + ": unknown flag (see --help)";
  }
  if (what == "A subcommand is required")
    return "a command is required: run, check-config, accounts or version (see --help)";
  return what;
}

std::string validate_config(const Config& c) {
  std::string host;
  int port = 0;
  if (c.domain.empty()) return "--domain: required (the XMPP domain to serve)";
  if (c.domain.find_first_of("/@ ") != std::string::npos) return "--domain: not a domain name";
  if (c.upstream.empty()) return "--upstream: required (HOST:PORT of the legacy server)";
  if (!split_host_port(c.upstream, &host, &port))
    return "--upstream: expected HOST:PORT, got '" + c.upstream + "'";
  // Plaintext carries the users' SCRAM exchanges and every message: only where no network sees
  // it (docs/architecture.md §25).
  if (c.upstream_tls == "plain" && !is_loopback_host(host))
    return "--upstream-tls: `plain` needs a loopback upstream (127.0.0.0/8, ::1 or localhost), "
           "got '" +
           host + "': use `starttls` or `direct` across a network";
  if (c.listen.empty() && c.listen_tls.empty())
    return "--listen: at least one of --listen and --listen-tls is needed";
  if (!c.advertise.empty() && !split_host_port(c.advertise, &host, &port))
    return "--advertise: expected HOST:PORT, got '" + c.advertise + "'";
  if (!c.listen.empty() && !split_host_port(c.listen, &host, &port))
    return "--listen: expected ADDR:PORT, got '" + c.listen + "'";
  if (!c.listen_tls.empty() && !split_host_port(c.listen_tls, &host, &port))
    return "--listen-tls: expected ADDR:PORT, got '" + c.listen_tls + "'";
  if (!c.metrics.empty() && !split_host_port(c.metrics, &host, &port))
    return "--metrics: expected ADDR:PORT, got '" + c.metrics + "'";
  if (c.tls_cert.empty() != c.tls_key.empty())
    return c.tls_cert.empty() ? "--tls-cert: required with --tls-key"
                              : "--tls-key: required with --tls-cert";
  if (c.data_dir.empty()) return "--data-dir: required";
  if (c.anchor_resource.empty() || c.anchor_resource.find_first_of("/@ ") != std::string::npos)
    return "--anchor-resource: a non-empty resource without '/', '@' or spaces";
  if (c.mam_max_page * 2 > c.sm_max_queue)
    return "--mam-max-page: must be at most half of --sm-max-queue (a page is queued for SM)";
  {
    size_t start = 0;
    const std::string& pp = c.proxy_protocol;
    while (!pp.empty() && start <= pp.size()) {
      size_t comma = pp.find(',', start);
      if (comma == std::string::npos) comma = pp.size();
      std::string item = pp.substr(start, comma - start);
      std::erase(item, ' ');
      if (item != "listen" && item != "listen-tls")
        return "--proxy-protocol: '" + item + "' is not a listener (listen, listen-tls)";
      if ((item == "listen" ? c.listen : c.listen_tls).empty())
        return "--proxy-protocol: the " + item + " listener is off (--" + item + " is empty)";
      start = comma + 1;
    }
  }
  if (std::string why; !proxyproto::parse_networks(c.proxy_protocol_from, &why))
    return "--proxy-protocol-from: " + why;
  if (!c.proxy_protocol_from.empty() && c.proxy_protocol.empty())
    return "--proxy-protocol-from: needs --proxy-protocol (which listeners expect the header)";
  if ((c.upstream_insecure || c.upstream_insecure_given) && !c.upstream_ca.empty())
    return "--upstream-insecure: cannot be combined with --upstream-ca (remove one of them)";
  return "";
}

FdPlan plan_descriptors(uint64_t max_clients, uint64_t soft, uint64_t hard) {
  // The kernel refuses more than fs.nr_open (1048576 by default) whatever
  // the hard limit says; an "unlimited" hard limit is taken as that.
  constexpr uint64_t kNrOpen = 1u << 20;
  hard = std::min(hard, kNrOpen);
  soft = std::min(soft, hard);
  FdPlan p;
  const auto raise_to = [&](uint64_t want) { return want > soft ? std::min(want, hard) : 0; };
  if (max_clients != 0) {
    const uint64_t need = max_clients * kFdsPerClient + kFdReserve;
    p.max_clients = max_clients;
    p.soft_target = raise_to(need);
    if (hard < need)
      p.error = "--max-clients: " + std::to_string(max_clients) + " clients need " +
                std::to_string(need) + " file descriptors (" + std::to_string(kFdsPerClient) +
                " per device + " + std::to_string(kFdReserve) + "), but the limit is " +
                std::to_string(hard) +
                " (RLIMIT_NOFILE hard): raise LimitNOFILE= in the systemd unit or `ulimit -n` in "
                "the shell that starts s2proxy, or lower --max-clients";
    return p;
  }
  p.soft_target = raise_to(hard);
  const uint64_t limit = std::max(soft, hard);
  p.max_clients = limit > kFdReserve ? (limit - kFdReserve) / kFdsPerClient : 0;
  if (p.max_clients == 0) {
    p.error = "--max-clients: the file descriptor limit (" + std::to_string(limit) +
              ") cannot hold a single client (" + std::to_string(kFdReserve + kFdsPerClient) +
              " needed): raise LimitNOFILE= in the systemd unit or `ulimit -n`";
  } else if (p.max_clients < 10000) {
    p.warning = "the file descriptor limit (" + std::to_string(limit) + ") holds " +
                std::to_string(p.max_clients) + " clients at " + std::to_string(kFdsPerClient) +
                " each; 10000 need " + std::to_string(kFdsFor10k) +
                ": raise LimitNOFILE= in the systemd unit or `ulimit -n`";
  }
  return p;
}

std::string check_config_files(const Config& c) {
  struct stat st {};
  std::string why;
  if (!c.upstream_ca.empty() && !readable_file(c.upstream_ca, &why, &st))
    return "--upstream-ca: " + c.upstream_ca + ": " + why;
  if (!c.tls_cert.empty() && !readable_file(c.tls_cert, &why, &st))
    return "--tls-cert: " + c.tls_cert + ": " + why;
  if (!c.tls_key.empty()) {
    if (!readable_file(c.tls_key, &why, &st)) return "--tls-key: " + c.tls_key + ": " + why;
    if ((st.st_mode & S_IRWXO) != 0)
      return "--tls-key: " + c.tls_key + " is accessible by others (chmod o-rwx)";
  }
  const std::string key = c.vault_key_path();
  if (!crypto::check_key_file(key, &why)) return "--vault-key-file: " + why;
  return "";
}

}  // namespace s2
