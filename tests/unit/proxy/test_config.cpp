// Configuration: precedence flag > environment > file > default, and
// validation messages that name the bad key.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "proxy/config.h"
#include "proxy/config_file.h"

namespace {
struct Parsed {
  s2::Config cfg;
  std::string error;  // CLI11 parse error, if any
};

Parsed parse(std::vector<std::string> argv) {
  Parsed p;
  CLI::App app;
  CLI::App* run = app.add_subcommand("run");
  s2::add_config_options(*run, p.cfg);
  std::vector<char*> raw;
  argv.insert(argv.begin(), "s2proxy");
  for (auto& a : argv) raw.push_back(a.data());
  try {
    app.parse(static_cast<int>(raw.size()), raw.data());
    p.error = s2::apply_env_and_file(*run, p.cfg);
  } catch (const CLI::ParseError& e) {
    p.error = s2::describe_parse_error(e);
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

TEST_CASE("config: --upstream-tls plain only to a loopback upstream") {
  struct Row {
    const char* upstream;
    const char* tls;
    bool ok;
  };
  const Row rows[] = {
      {"127.0.0.1:5222", "plain", true},
      {"127.8.9.10:5222", "plain", true},
      {"[::1]:5222", "plain", true},
      {"localhost:5222", "plain", true},
      {"[::ffff:127.0.0.1]:5222", "plain", true},
      {"10.0.0.1:5222", "plain", false},
      {"128.0.0.1:5222", "plain", false},
      {"prosody:5222", "plain", false},
      {"[::2]:5222", "plain", false},
      {"[::ffff:10.0.0.1]:5222", "plain", false},
      {"localhost.example:5222", "plain", false},
      {"10.0.0.1:5222", "starttls", true},
      {"prosody:5223", "direct", true},
  };
  for (const auto& r : rows) {
    s2::Config c;
    c.domain = "d.test";
    c.upstream = r.upstream;
    c.upstream_tls = r.tls;
    const std::string got = s2::validate_config(c);
    CAPTURE(r.upstream);
    CAPTURE(got);
    if (r.ok) {
      CHECK(got.empty());
    } else {
      CHECK(got.rfind("--upstream-tls", 0) == 0);
    }
  }
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

TEST_CASE("config: upstream-insecure next to upstream-ca is refused, even = false") {
  const std::string f1 = write_toml(
      "domain = \"d.test\"\nupstream = \"h:1\"\n"
      "upstream-ca = \"/ca.pem\"\nupstream-insecure = false\n");
  auto p = parse({"run", "--config", f1});
  CHECK(p.error == "");
  CHECK(s2::validate_config(p.cfg).rfind("--upstream-insecure", 0) == 0);
  std::remove(f1.c_str());
  const std::string f2 = write_toml(
      "domain = \"d.test\"\nupstream = \"h:1\"\n"
      "upstream-ca = \"/ca.pem\"\nupstream-insecure = true\n");
  p = parse({"run", "--config", f2});
  CHECK(s2::validate_config(p.cfg).rfind("--upstream-insecure", 0) == 0);
  std::remove(f2.c_str());
}

TEST_CASE("config file: TOML values and TOML errors") {
  struct Row {
    const char* text;
    const char* want_value;  // value of the first entry ("" when an error is expected)
    s2::TomlKind want_kind;
    const char* want_error;  // substring of the error, "" = none
  };
  using K = s2::TomlKind;
  const Row rows[] = {
      {"domain = \"d.test\"\n", "d.test", K::String, ""},
      {"listen = ''\n", "", K::String, ""},
      {"max-depth = 64\n", "64", K::Integer, ""},
      {"auth-timeout = 0.5\n", "0.5", K::Float, ""},
      {"fast-token-lifetime = 1209600.0\n", "1209600", K::Float, ""},  // never 1.2096e+06
      {"upstream-insecure = true\n", "true", K::Boolean, ""},
      {"# comment\n\nlog-level = \"warn\" # trailing\n", "warn", K::String, ""},
      {"listen = [\"a:1\"]\n", "", K::Other, ""},
      {"[server]\nx = 1\n", "", K::Other, ""},
      {"domain = d.test\n", "", K::Other, "t.toml:1:"},
      {"domain = \"d.test\n", "", K::Other, "TOML syntax error"},
      {"domain = \"a\"\ndomain = \"b\"\n", "", K::Other, "t.toml:2:"},
      {"= 1\n", "", K::Other, "TOML"},
  };
  for (const auto& r : rows) {
    const std::string text = r.text;
    CAPTURE(text);
    auto f = s2::parse_toml_config(r.text, "t.toml");
    if (*r.want_error) {
      CHECK(f.error.find(r.want_error) != std::string::npos);
      CHECK(f.error.find("INI") == std::string::npos);
      continue;
    }
    REQUIRE(f.error == "");
    REQUIRE(f.entries.size() >= 1);
    CHECK(f.entries[0].kind == r.want_kind);
    if (r.want_kind != K::Other) CHECK(f.entries[0].value == r.want_value);
  }
  auto ordered = s2::parse_toml_config("b = 1\na = 2\n", "t.toml");
  REQUIRE(ordered.entries.size() == 2);
  CHECK(ordered.entries[0].key == "b");  // file order, not key order
  CHECK(ordered.entries[1].line == 2);
}

TEST_CASE("config file: every problem is one line naming the key") {
  struct Row {
    const char* text;
    const char* must_mention;
  };
  const Row rows[] = {
      {"upstream-tsl = \"direct\"\n", "unknown key 'upstream-tsl'"},
      {"max-depth = \"64\"\n", "max-depth must be an integer"},
      {"upstream-insecure = \"yes\"\n", "upstream-insecure must be a boolean"},
      {"listen = 5222\n", "listen must be a string"},
      {"max-depth = 5000\n", "--max-depth (in "},
      {"upstream-tls = \"tcp\"\n", "--upstream-tls (in "},
      {"config = \"other.toml\"\n", "unknown key 'config'"},
      {"[limits]\nmax-depth = 64\n", "unknown key 'limits'"},
      {"max-depth = [64]\n", "max-depth must be an integer, not a table"},
      {"domain = \"x\n", "TOML syntax error"},
  };
  for (const auto& r : rows) {
    const std::string text = r.text;
    CAPTURE(text);
    const std::string file = write_toml(r.text);
    auto p = parse({"run", "--config", file});
    CHECK(p.error.find(r.must_mention) != std::string::npos);
    CHECK(p.error.find('\n') == std::string::npos);
    std::remove(file.c_str());
  }
  auto p = parse({"run", "--config", "/nonexistent/s2proxy.toml"});
  CHECK(p.error.rfind("--config: cannot read /nonexistent/s2proxy.toml", 0) == 0);
}

TEST_CASE("config: numbers given as TOML integers or floats both work for seconds") {
  const std::string f = write_toml("auth-timeout = 5\nsm-resume-timeout = 0.5e3\n");
  auto p = parse({"run", "--config", f});
  CHECK(p.error == "");
  CHECK(p.cfg.auth_timeout == 5);
  CHECK(p.cfg.sm_resume_timeout == 500);
  std::remove(f.c_str());
}

TEST_CASE("config: environment errors name the variable") {
  setenv("S2PROXY_MAX_DEPTH", "deep", 1);
  auto p = parse({"run"});
  unsetenv("S2PROXY_MAX_DEPTH");
  CHECK(p.error.rfind("--max-depth (from S2PROXY_MAX_DEPTH): ", 0) == 0);
  auto q = parse({"run", "--no-such-flag", "1"});
  CHECK(q.error == "--no-such-flag: unknown flag (see --help)");
}

TEST_CASE("config: check_config_files") {
  const std::string dir = "/tmp/s2proxy-test-files-" + std::to_string(::getpid());
  mkdir(dir.c_str(), 0700);
  auto make = [&](const std::string& name, mode_t mode, size_t size) {
    const std::string path = dir + "/" + name;
    std::ofstream(path) << std::string(size, 'k');
    chmod(path.c_str(), mode);
    return path;
  };
  const std::string ca = make("ca.pem", 0644, 10), cert = make("c.pem", 0644, 10);
  const std::string key = make("k.pem", 0640, 10), open_key = make("ko.pem", 0644, 10);
  const std::string vault = make("vault.key", 0600, 32), open_vault = make("v2.key", 0640, 32);
  const std::string short_vault = make("v3.key", 0600, 31);
  struct Row {
    std::string ca, cert, key, vault;
    const char* want_prefix;  // "" = fine
  };
  const Row rows[] = {
      {"", "", "", "", ""},
      {ca, cert, key, vault, ""},
      {dir + "/missing.pem", "", "", "", "--upstream-ca"},
      {dir, "", "", "", "--upstream-ca"},  // a directory
      {"", dir + "/missing.pem", key, "", "--tls-cert"},
      {"", cert, dir + "/missing.pem", "", "--tls-key"},
      {"", cert, open_key, "", "--tls-key"},
      {"", "", "", dir + "/absent.key", ""},  // created on first start
      {"", "", "", open_vault, "--vault-key-file"},
      {"", "", "", short_vault, "--vault-key-file"},
  };
  for (const auto& r : rows) {
    s2::Config c;
    c.data_dir = dir;
    c.upstream_ca = r.ca;
    c.tls_cert = r.cert;
    c.tls_key = r.key;
    c.vault_key_file = r.vault;
    const std::string got = s2::check_config_files(c);
    CAPTURE(got);
    if (*r.want_prefix)
      CHECK(got.rfind(r.want_prefix, 0) == 0);
    else
      CHECK(got == "");
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("config: --proxy-protocol and --proxy-protocol-from") {
  struct Row {
    std::string listen_tls, pp, from;
    const char* want_prefix;  // "" = valid
  };
  const Row rows[] = {
      {"127.0.0.1:5223", "", "", ""},
      {"127.0.0.1:5223", "listen", "", ""},
      {"127.0.0.1:5223", "listen-tls", "", ""},
      {"127.0.0.1:5223", "listen, listen-tls", "10.0.0.0/8,::1", ""},
      {"127.0.0.1:5223", "listen,tls", "", "--proxy-protocol"},
      {"", "listen-tls", "", "--proxy-protocol"},  // that listener is off
      {"127.0.0.1:5223", "listen", "10.0.0.0/40", "--proxy-protocol-from"},
      {"127.0.0.1:5223", "", "10.0.0.0/8", "--proxy-protocol-from"},  // for no listener
  };
  for (const auto& r : rows) {
    s2::Config c;
    c.domain = "d.test";
    c.upstream = "h:5222";
    c.listen_tls = r.listen_tls;
    c.proxy_protocol = r.pp;
    c.proxy_protocol_from = r.from;
    const std::string got = s2::validate_config(c);
    CAPTURE(r.pp);
    CAPTURE(r.from);
    CAPTURE(got);
    if (std::string(r.want_prefix).empty()) {
      CHECK(got.empty());
    } else {
      CHECK(got.rfind(r.want_prefix, 0) == 0);
    }
  }
  s2::Config c;
  c.proxy_protocol = "listen-tls, listen";
  CHECK(c.proxy_protocol_on(false));
  CHECK(c.proxy_protocol_on(true));
  c.proxy_protocol = "listen-tls";
  CHECK(!c.proxy_protocol_on(false));
  CHECK(c.proxy_protocol_on(true));
}

TEST_CASE("config: file descriptors for --max-clients") {
  constexpr uint64_t kInf = ~uint64_t{0};
  struct Row {
    uint64_t max_clients, soft, hard;
    uint64_t want_target, want_max;
    bool error, warning;
  };
  const Row rows[] = {
      // explicit: raise the soft limit to what is needed, refuse what cannot fit
      {10000, 1024, 65536, 30064, 10000, false, false},
      {10000, 40000, 65536, 0, 10000, false, false},  // already enough
      {10000, 1024, 20000, 20000, 10000, true, false},
      {100, 1024, 1024, 0, 100, false, false},
      {320, 1024, 1024, 0, 320, false, false},    // 320*3+64 = 1024: just fits
      {321, 1024, 1024, 1024, 321, true, false},  // 1027 does not
      {10000, 1024, kInf, 30064, 10000, false, false},
      // 0 = auto: everything the hard limit allows
      {0, 1024, 65536, 65536, 21824, false, false},
      {0, 20000, 20000, 0, 6645, false, true},  // under 10000: a warning
      {0, 1024, kInf, 1u << 20, 349504, false, false},
      {0, 64, 64, 0, 0, true, false},  // not even one client
  };
  int i = 0;
  for (const auto& r : rows) {
    CAPTURE(i++);
    auto p = s2::plan_descriptors(r.max_clients, r.soft, r.hard);
    CHECK(p.soft_target == r.want_target);
    CHECK(p.max_clients == r.want_max);
    CHECK(p.error.empty() == !r.error);
    CHECK(p.warning.empty() == !r.warning);
    if (r.error) {
      CHECK(p.error.rfind("--max-clients", 0) == 0);
      CHECK(p.error.find("LimitNOFILE") != std::string::npos);
      CHECK(p.error.find("ulimit -n") != std::string::npos);
    }
    if (r.warning) CHECK(p.warning.find("LimitNOFILE") != std::string::npos);
  }
}
