// Configuration: precedence flag > environment > file > default, and
// validation messages that name the bad key.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "proxy/config.h"

namespace {
struct Parsed {
  s2::Config cfg;
  std::string error;  // CLI11 parse error, if any
};

Parsed parse(std::vector<std::string> argv) {
  Parsed p;
  CLI::App app;
  s2::add_config_options(app, p.cfg);
  app.add_subcommand("run")->fallthrough();
  std::vector<char*> raw;
  argv.insert(argv.begin(), "s2proxy");
  for (auto& a : argv) raw.push_back(a.data());
  auto args = s2::args_with_env(app, static_cast<int>(raw.size()), raw.data());
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    p.error = e.what();
  }
  return p;
}

std::string write_toml(const std::string& body) {
  const std::string path = "/tmp/s2proxy-test-config-" + std::to_string(::getpid()) + ".toml";
  std::ofstream(path) << body;
  return path;
}
}  // namespace

TEST_CASE("config precedence: flag > env > file > default") {
  const std::string file = write_toml(
      "domain = \"file.test\"\nupstream = \"file:1\"\n"
      "upstream-tls = \"direct\"\nlog-level = \"warn\"\n");
  struct Row {
    const char* env_upstream;  // nullptr: unset
    bool flag;                 // pass --upstream flag:3
    const char* want_upstream;
  };
  const Row rows[] = {
      {nullptr, false, "file:1"},  // file beats default
      {"env:2", false, "env:2"},   // env beats file
      {"env:2", true, "flag:3"},   // flag beats env
      {nullptr, true, "flag:3"},   // flag beats file
  };
  for (const auto& r : rows) {
    CAPTURE(r.want_upstream);
    if (r.env_upstream)
      setenv("S2PROXY_UPSTREAM", r.env_upstream, 1);
    else
      unsetenv("S2PROXY_UPSTREAM");
    std::vector<std::string> args = {"run", "--config", file};
    if (r.flag) args.push_back("--upstream=flag:3");
    auto p = parse(args);
    CHECK(p.error == "");
    CHECK(p.cfg.upstream == r.want_upstream);
    CHECK(p.cfg.domain == "file.test");  // untouched keys still come from the file
    CHECK(p.cfg.upstream_tls == "direct");
    CHECK(p.cfg.listen == "127.0.0.1:5222");  // default
  }
  unsetenv("S2PROXY_UPSTREAM");
  std::remove(file.c_str());
}

TEST_CASE("config: bad values name their key") {
  struct Row {
    std::vector<std::string> args;
    const char* must_mention;
  };
  const Row rows[] = {
      {{"run", "--domain", "d", "--upstream", "h:1", "--upstream-tls", "bogus"}, "upstream-tls"},
      {{"run", "--domain", "d", "--upstream", "h:1", "--max-depth", "2"}, "max-depth"},
      {{"run", "--domain", "d", "--upstream", "h:1", "--log-level", "loud"}, "log-level"},
  };
  for (const auto& r : rows) {
    auto p = parse(r.args);
    CAPTURE(r.must_mention);
    CHECK(p.error.find(r.must_mention) != std::string::npos);
  }
  const std::string bad_key = write_toml("domain = \"x.test\"\nupstream-tsl = \"direct\"\n");
  auto p = parse({"run", "--config", bad_key});
  CHECK(p.error.find("upstream-tsl") != std::string::npos);
  std::remove(bad_key.c_str());
}

TEST_CASE("config: validate_config") {
  struct Row {
    std::string domain, upstream, listen, listen_tls, cert, key;
    const char* want_prefix;  // "" = valid
  };
  const Row rows[] = {
      {"d.test", "h:5222", "127.0.0.1:5222", "", "", "", ""},
      {"", "h:5222", "127.0.0.1:5222", "", "", "", "--domain"},
      {"a@b", "h:5222", "127.0.0.1:5222", "", "", "", "--domain"},
      {"d.test", "", "127.0.0.1:5222", "", "", "", "--upstream"},
      {"d.test", "h", "127.0.0.1:5222", "", "", "", "--upstream"},
      {"d.test", "h:70000", "127.0.0.1:5222", "", "", "", "--upstream"},
      {"d.test", "[::1]:5222", "[::1]:5222", "", "", "", ""},
      {"d.test", "h:5222", "", "", "", "", "--listen"},
      {"d.test", "h:5222", "", "bad", "", "", "--listen-tls"},
      {"d.test", "h:5222", "127.0.0.1:5222", "", "c.pem", "", "--tls-key"},
      {"d.test", "h:5222", "127.0.0.1:5222", "", "", "k.pem", "--tls-cert"},
  };
  for (const auto& r : rows) {
    s2::Config c;
    c.domain = r.domain;
    c.upstream = r.upstream;
    c.listen = r.listen;
    c.listen_tls = r.listen_tls;
    c.tls_cert = r.cert;
    c.tls_key = r.key;
    const std::string got = s2::validate_config(c);
    CAPTURE(r.domain);
    CAPTURE(r.upstream);
    CAPTURE(got);
    if (std::string(r.want_prefix).empty()) {
      CHECK(got.empty());
    } else {
      CHECK(got.rfind(r.want_prefix, 0) == 0);
    }
  }
}

TEST_CASE("config: an empty environment variable turns a listener off") {
  setenv("S2PROXY_LISTEN_TLS", "", 1);
  setenv("S2PROXY_UPSTREAM_INSECURE", "true", 1);
  auto p = parse({"run", "--domain", "d.test", "--upstream", "h:1"});
  unsetenv("S2PROXY_LISTEN_TLS");
  unsetenv("S2PROXY_UPSTREAM_INSECURE");
  CHECK(p.error == "");
  CHECK(p.cfg.listen_tls == "");
  CHECK(p.cfg.upstream_insecure);
  CHECK(s2::validate_config(p.cfg) == "");
}

TEST_CASE("config: upstream-insecure=false next to upstream-ca is fine, true is not") {
  const std::string f1 = write_toml(
      "domain = \"d.test\"\nupstream = \"h:1\"\n"
      "upstream-ca = \"/ca.pem\"\nupstream-insecure = false\n");
  auto p = parse({"run", "--config", f1});
  CHECK(p.error == "");
  CHECK(s2::validate_config(p.cfg) == "");
  std::remove(f1.c_str());
  const std::string f2 = write_toml(
      "domain = \"d.test\"\nupstream = \"h:1\"\n"
      "upstream-ca = \"/ca.pem\"\nupstream-insecure = true\n");
  p = parse({"run", "--config", f2});
  CHECK(s2::validate_config(p.cfg).rfind("--upstream-insecure", 0) == 0);
  std::remove(f2.c_str());
}
