// s2proxy command line: `run`, `check-config`, `version`.
//
// The configuration flags live on the top-level app and the subcommands fall
// through to it, so `s2proxy run --domain …` works and a config file is flat
// TOML (`domain = "…"`) with no per-subcommand sections.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "common/util/log.h"
#include "proxy/accounts_cli.h"
#include "proxy/config.h"
#include "proxy/server.h"
#include "proxy/version.h"

int main(int argc, char** argv) {
  s2::Config cfg;
  CLI::App app{"s2proxy — session2 (SASL2, Bind2, FAST, SM) in front of a legacy XMPP server"};
  app.require_subcommand(1);
  s2::add_config_options(app, cfg);
  auto* run = app.add_subcommand("run", "run the proxy")->fallthrough();
  auto* check =
      app.add_subcommand("check-config", "validate the configuration and exit")->fallthrough();
  auto* version = app.add_subcommand("version", "print the version");
  auto* accounts =
      app.add_subcommand("accounts", "inspect or forget stored accounts")->fallthrough();
  accounts->require_subcommand(1);
  std::string account_jid;
  auto* acc_list =
      accounts->add_subcommand("list", "list accounts known to the proxy")->fallthrough();
  auto* acc_show = accounts->add_subcommand("show", "show one account")->fallthrough();
  acc_show->add_option("jid", account_jid, "bare JID")->required();
  auto* acc_forget =
      accounts->add_subcommand("forget", "remove an account's mirror, credentials and tokens")
          ->fallthrough();
  acc_forget->add_option("jid", account_jid, "bare JID")->required();

  try {
    auto args = s2::args_with_env(app, argc, argv);
    std::reverse(args.begin(), args.end());  // CLI11 takes them last-first
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (version->parsed()) {
    std::cout << "s2proxy " << S2PROXY_VERSION << "\n";
    return 0;
  }
  if (accounts->parsed()) {
    // Only the data dir matters here; everything else may be unset.
    if (acc_list->parsed()) return s2::accounts_list(cfg);
    if (acc_show->parsed()) return s2::accounts_show(cfg, account_jid);
    if (acc_forget->parsed()) return s2::accounts_forget(cfg, account_jid);
  }
  const std::string problem = s2::validate_config(cfg);
  if (!problem.empty()) {
    std::cerr << "configuration error: " << problem << "\n";
    return 2;
  }
  if (check->parsed()) {
    std::cout << "configuration ok\n";
    return 0;
  }
  if (run->parsed()) {
    s2::LogLevel level = s2::LogLevel::Info;
    s2::parse_log_level(cfg.log_level, &level);
    s2::log_configure(level, cfg.log_format == "json" ? s2::LogFormat::Json : s2::LogFormat::Text);
    s2::Server server(cfg);
    std::string error;
    if (!server.start(&error)) {
      s2::log_event(s2::LogLevel::Error, "server.start_failed", {{"error", error}});
      std::cerr << "s2proxy: " << error << "\n";
      return 1;
    }
    return server.run();
  }
  return 0;
}
