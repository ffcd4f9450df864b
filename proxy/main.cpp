// s2proxy command line: `run`, `check-config`, `accounts`, `health`, `version`.
//
// The configuration flags hang on each subcommand that uses them, so
// `s2proxy run --help` lists them all; a config file is flat TOML
// (`domain = "…"`) with no per-subcommand sections. Every configuration
// error, from a flag, the environment or the file, is one line on stderr and
// exit status 2 (the systemd unit's RestartPreventExitStatus).
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <limits>

#include "common/util/log.h"
#include "proxy/accounts_cli.h"
#include "proxy/backup_cli.h"
#include "proxy/config.h"
#include "proxy/config_docs.h"
#include "proxy/health_cli.h"
#include "proxy/server.h"
#include "proxy/store_open.h"
#include "proxy/upstream_probe.h"
#include "proxy/version.h"

namespace {
constexpr int kConfigError = 2;

int config_error(const std::string& what) {
  std::cerr << "s2proxy: configuration error: " << what << "\n";
  return kConfigError;
}
}  // namespace

int main(int argc, char** argv) {
  s2::Config cfg;
  CLI::App app{"s2proxy — session2 (SASL2, Bind2, FAST, SM) in front of a legacy XMPP server"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("s2proxy ") + S2PROXY_VERSION);
  app.get_formatter()->column_width(34);
  auto* run = app.add_subcommand("run", "run the proxy");
  s2::add_config_options(*run, cfg);
  auto* check = app.add_subcommand(
      "check-config", "validate the configuration; exit 0 when valid, else 2 naming the bad key");
  s2::add_config_options(*check, cfg);
  bool check_probe = false;
  check->add_flag("--probe", check_probe,
                  "also connect to the upstream: TLS as configured, its certificate against "
                  "--domain, the SASL mechanisms it offers (no login, no credentials sent); exit "
                  "1 with the reason when s2proxy could not log users in there");
  auto* version = app.add_subcommand("version", "print the version");
  auto* health = app.add_subcommand(
      "health",
      "exit 0 when the running daemon answers GET /metrics, else 1 saying why (container and "
      "monitor checks; reads <data-dir>/metrics.addr, which the daemon writes)");
  s2::add_config_options(*health, cfg);
  double health_timeout = 4;
  health->add_option("--timeout", health_timeout, "seconds to wait for the answer")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 60.0));
  auto* accounts = app.add_subcommand("accounts", "inspect or forget stored accounts");
  s2::add_config_options(*accounts, cfg);
  accounts->require_subcommand(1);
  std::string account_jid;
  auto* acc_list =
      accounts->add_subcommand("list", "list accounts known to the proxy")->fallthrough();
  auto* acc_show = accounts->add_subcommand("show", "show one account")->fallthrough();
  acc_show->add_option("jid", account_jid, "bare JID")->required();
  auto* acc_export =
      accounts
          ->add_subcommand("export",
                           "write one account's archive as JSON lines (archive_id, time, "
                           "direction, peer, stanza) to stdout")
          ->fallthrough();
  acc_export->add_option("jid", account_jid, "bare JID")->required();
  auto* acc_forget =
      accounts->add_subcommand("forget", "remove an account's mirror, credentials and tokens")
          ->fallthrough();
  acc_forget->add_option("jid", account_jid, "bare JID")->required();
  std::string push_body_choice;
  auto* acc_push_body =
      accounts
          ->add_subcommand("push-body",
                           "whether XEP-0357 pushes for this account may carry the message body: "
                           "on, off, or default (--push-body)")
          ->fallthrough();
  acc_push_body->add_option("jid", account_jid, "bare JID")->required();
  acc_push_body->add_option("setting", push_body_choice, "on | off | default")
      ->required()
      ->check(CLI::IsMember({"on", "off", "default"}));
  auto* backup = app.add_subcommand(
      "backup",
      "copy the data dir's mirror (compacted, consistent, while the daemon runs) into DIR, which "
      "must not exist or be empty; restore: deploy/README.md");
  s2::add_config_options(*backup, cfg);
  std::string backup_dir;
  bool backup_vault_key = false;
  backup->add_option("dir", backup_dir, "where to write the backup")->required();
  backup->add_flag("--with-vault-key", backup_vault_key,
                   "also copy the vault key (a secret: whoever has it and the backup can unseal "
                   "the stored credentials)");
  // Hidden: the flag table for README.md and the man page (deploy/s2proxy.8).
  std::string docs_format = "markdown";
  auto* docs = app.add_subcommand("docs", "")->group("");
  docs->add_option("--format", docs_format)->check(CLI::IsMember({"markdown", "man"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    return config_error(s2::describe_parse_error(e));
  }

  if (version->parsed()) {
    std::cout << "s2proxy " << S2PROXY_VERSION << "\n";
    return 0;
  }
  if (docs->parsed()) {
    std::cout << (docs_format == "man" ? s2::man_page() : s2::flags_markdown_table());
    return 0;
  }
  CLI::App* used = run->parsed()      ? run
                   : check->parsed()  ? check
                   : health->parsed() ? health
                   : backup->parsed() ? backup
                                      : accounts;
  if (auto problem = s2::apply_env_and_file(*used, cfg); !problem.empty())
    return config_error(problem);
  if (accounts->parsed()) {
    // Only the data dir matters here; everything else may be unset.
    if (acc_list->parsed()) return s2::accounts_list(cfg);
    if (acc_show->parsed()) return s2::accounts_show(cfg, account_jid);
    if (acc_export->parsed()) return s2::accounts_export(cfg, account_jid);
    if (acc_forget->parsed()) return s2::accounts_forget(cfg, account_jid);
    if (acc_push_body->parsed()) return s2::accounts_push_body(cfg, account_jid, push_body_choice);
  }
  if (health->parsed()) return s2::health_check(cfg, health_timeout);
  if (backup->parsed()) return s2::run_backup(cfg, backup_dir, backup_vault_key);
  std::string problem = s2::validate_config(cfg);
  if (problem.empty()) problem = s2::check_config_files(cfg);
  if (problem.empty()) problem = s2::check_store_config(cfg);
  if (!problem.empty()) return config_error(problem);
  // File descriptors for --max-clients: an explicit value the hard limit
  // cannot hold is a configuration error; 0 takes what the limit holds.
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  const auto fds = [](rlim_t v) {
    return v == RLIM_INFINITY ? std::numeric_limits<uint64_t>::max() : static_cast<uint64_t>(v);
  };
  s2::FdPlan fd_plan = s2::plan_descriptors(cfg.max_clients, fds(rl.rlim_cur), fds(rl.rlim_max));
  if (!fd_plan.error.empty()) return config_error(fd_plan.error);
  if (check->parsed()) {
    std::cout << "configuration ok\n";
    if (!check_probe) return 0;
    const int upstream_rc = s2::probe_upstream(cfg, 10.0);
    const int store_rc = s2::probe_store(cfg);
    return upstream_rc != 0 ? upstream_rc : store_rc;
  }
  if (fd_plan.soft_target != 0) {
    rlimit want = rl;
    want.rlim_cur = static_cast<rlim_t>(fd_plan.soft_target);
    if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
      // Keep the soft limit as it is and plan with it.
      fd_plan = s2::plan_descriptors(cfg.max_clients, fds(rl.rlim_cur), fds(rl.rlim_cur));
      if (!fd_plan.error.empty()) return config_error(fd_plan.error);
    }
  }
  cfg.max_clients = fd_plan.max_clients;
  s2::LogLevel level = s2::LogLevel::Info;
  s2::parse_log_level(cfg.log_level, &level);
  s2::log_configure(level, cfg.log_format == "json" ? s2::LogFormat::Json : s2::LogFormat::Text);
  if (!fd_plan.warning.empty())
    s2::log_event(s2::LogLevel::Warn, "server.fd_limit_low",
                  {{"max_clients", fd_plan.max_clients}, {"problem", fd_plan.warning}});
  s2::Server server(cfg);
  std::string error;
  if (!server.start(&error)) {
    s2::log_event(s2::LogLevel::Error, "server.start_failed", {{"error", error}});
    std::cerr << "s2proxy: " << error << "\n";
    return 1;
  }
  return server.run();
}
