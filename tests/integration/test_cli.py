"""The command line: version, check-config, and where settings come from (flag > env > config file)."""
import json
import os
import re
import subprocess
import uuid

import pytest

from harness import EXTRA_PORT_BASE, REPO, free_closed_port
from rawxmpp import RawXMPP


@pytest.fixture(scope="module")
def binary(mode, request):
    if mode == "direct":
        pytest.skip("tests the s2proxy command line (nothing to do with S2_TARGET=direct)")
    return request.getfixturevalue("proxy_bin")


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("S2PROXY_")}
    env.update(extra or {})
    return env


def run(binary, *args, env=None, timeout=10):
    return subprocess.run([binary] + list(args), capture_output=True, text=True, timeout=timeout, env=clean_env(env))


def valid_flags(upstream, tmp_path, port=EXTRA_PORT_BASE + 99):
    return ["--domain", upstream.domain, "--upstream", "127.0.0.1:%d" % upstream.c2s, "--upstream-tls", "starttls",
            "--upstream-ca", upstream.cert, "--listen", "127.0.0.1:%d" % port,
            "--listen-tls", "127.0.0.1:%d" % (port + 1), "--data-dir", str(tmp_path)]


def drop(flags, name):
    i = flags.index(name)
    return flags[:i] + flags[i + 2:]


def replace(flags, name, value):
    i = flags.index(name)
    return flags[:i + 1] + [value] + flags[i + 2:]


def test_version(binary):
    m = re.search(r"project\(s2proxy\s+VERSION\s+([0-9.]+)", (REPO / "CMakeLists.txt").read_text())
    r = run(binary, "version")
    assert r.returncode == 0, r.stderr
    assert m and m.group(1) in r.stdout, "version output %r lacks the project version %s" % (
        r.stdout, m and m.group(1))


def test_check_config_valid(binary, upstream, tmp_path):
    r = run(binary, "check-config", *valid_flags(upstream, tmp_path))
    assert r.returncode == 0, "valid flags refused: %s%s" % (r.stdout, r.stderr)


def test_check_config_valid_config_file(binary, upstream, tmp_path):
    cfg = tmp_path / "s2proxy.toml"
    f = valid_flags(upstream, tmp_path)
    cfg.write_text("".join('%s = "%s"\n' % (f[i][2:], f[i + 1]) for i in range(0, len(f), 2)))
    r = run(binary, "check-config", "--config", str(cfg))
    assert r.returncode == 0, "valid config file refused: %s%s\n%s" % (r.stdout, r.stderr, cfg.read_text())


BAD = [
    ("upstream-tls-bogus", lambda f: replace(f, "--upstream-tls", "bogus"), {}, ["upstream-tls"]),
    ("missing-domain", lambda f: drop(f, "--domain"), {}, ["domain"]),
    ("upstream-not-host-port", lambda f: replace(f, "--upstream", "no-port-here"), {}, ["upstream"]),
    ("log-level-bogus", lambda f: f + ["--log-level", "loud"], {}, ["log-level"]),
    ("max-depth-not-a-number", lambda f: f + ["--max-depth", "deep"], {}, ["max-depth"]),
    ("unknown-flag", lambda f: f + ["--no-such-flag", "1"], {}, ["no-such-flag"]),
    ("env-upstream-tls-bogus", lambda f: drop(f, "--upstream-tls"), {"S2PROXY_UPSTREAM_TLS": "bogus"},
     ["upstream-tls", "UPSTREAM_TLS", "upstream_tls"]),
]


@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_check_config_names_the_bad_key(binary, upstream, tmp_path, case):
    _, mutate, env, keys = case
    r = run(binary, "check-config", *mutate(valid_flags(upstream, tmp_path)), env=env)
    out = r.stdout + r.stderr
    assert r.returncode != 0, "check-config accepted it: %s" % out
    assert any(k in out for k in keys), "message does not name %s: %r" % (" / ".join(keys), out)


def test_check_config_bad_value_in_config_file(binary, upstream, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('upstream-tls = "bogus"\n')
    r = run(binary, "check-config", *drop(valid_flags(upstream, tmp_path), "--upstream-tls"), "--config", str(cfg))
    out = r.stdout + r.stderr
    assert r.returncode != 0, "check-config accepted upstream-tls = bogus from the file: %s" % out
    assert "upstream-tls" in out or "upstream_tls" in out, out


def test_check_config_unknown_key_in_config_file(binary, upstream, tmp_path):
    """A misspelt key in the file is reported, not silently ignored."""
    cfg = tmp_path / "typo.toml"
    cfg.write_text('upstream-tsl = "direct"\n')
    r = run(binary, "check-config", *valid_flags(upstream, tmp_path), "--config", str(cfg))
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "upstream-tsl" in out, \
        "unknown config key 'upstream-tsl' not reported (rc=%d): %r" % (r.returncode, out)


# ---- precedence, observed by behaviour: a login works only when the right upstream is used ------
def login_result(target):
    with RawXMPP.connect(target.host, target.starttls_port, target.domain, timeout=15) as c:
        c.secure_stream()
        result, cond, text, _ = c.auth_plain("alice", "alicepw")
        return result if result == "success" else cond


def write_config(tmp_path, **kv):
    cfg = tmp_path / ("s2proxy-%s.toml" % uuid.uuid4().hex[:6])
    cfg.write_text("".join('%s = "%s"\n' % (k.replace("_", "-"), v) for k, v in kv.items()))
    return str(cfg)


@pytest.fixture
def good_bad(upstream):
    return "127.0.0.1:%d" % upstream.c2s, "127.0.0.1:%d" % free_closed_port()


def test_env_upstream_is_honoured(proxy_factory, good_bad):
    good, _ = good_bad
    p = proxy_factory.start({"upstream": None}, env={"S2PROXY_UPSTREAM": good})
    assert login_result(p.target()) == "success"


def test_config_file_is_honoured(proxy_factory, good_bad, tmp_path):
    good, _ = good_bad
    p = proxy_factory.start({"upstream": None}, extra_args=["--config", write_config(tmp_path, upstream=good)])
    assert login_result(p.target()) == "success"


def test_flag_beats_env(proxy_factory, good_bad):
    good, bad = good_bad
    p = proxy_factory.start({"upstream": good}, env={"S2PROXY_UPSTREAM": bad})
    assert login_result(p.target()) == "success", "env S2PROXY_UPSTREAM overrode --upstream"


def test_flag_beats_config_file(proxy_factory, good_bad, tmp_path):
    good, bad = good_bad
    p = proxy_factory.start({"upstream": good}, extra_args=["--config", write_config(tmp_path, upstream=bad)])
    assert login_result(p.target()) == "success", "config file overrode --upstream"


@pytest.mark.parametrize("env_good", [True, False], ids=["env-good-file-bad", "env-bad-file-good"])
def test_env_beats_config_file(proxy_factory, good_bad, tmp_path, env_good):
    good, bad = good_bad
    env_v, file_v = (good, bad) if env_good else (bad, good)
    p = proxy_factory.start({"upstream": None}, env={"S2PROXY_UPSTREAM": env_v},
                            extra_args=["--config", write_config(tmp_path, upstream=file_v)])
    want = "success" if env_good else "temporary-auth-failure"
    assert login_result(p.target()) == want, "env S2PROXY_UPSTREAM=%s, file upstream=%s" % (env_v, file_v)


def test_json_log_format(proxy_factory):
    p = proxy_factory.start({"log-format": "json"})
    assert login_result(p.target()) == "success"
    rc, _, _ = p.stop()
    assert rc == 0
    lines = [ln for ln in p.log_text().splitlines() if ln.strip() and not ln.startswith("# ")]
    assert lines, "no log output at --log-level debug"
    bad = []
    for ln in lines:
        try:
            json.loads(ln)
        except ValueError:
            bad.append(ln)
    assert not bad, "%d of %d log lines are not JSON, e.g. %r" % (len(bad), len(lines), bad[:3])


# ---- issue 11: every configuration error is one line naming the key, and exit 2 ----------------
def bad_config_cases(upstream, tmp_path):
    """(id, args after the command, env, keys the one line must name)."""
    base = valid_flags(upstream, tmp_path)
    key = tmp_path / "key.pem"
    key.write_text("k")
    key.chmod(0o600)
    open_vault = tmp_path / "open-vault.key"
    open_vault.write_bytes(b"k" * 32)
    open_vault.chmod(0o644)

    def toml(name, text):
        f = tmp_path / name
        f.write_text(text)
        return str(f)

    return [
        ("unknown-key", drop(base, "--upstream-tls") + ["--config", toml("u.toml", 'upstream-tsl = "direct"\n')],
         {}, ["upstream-tsl"]),
        ("bad-value-flag", base + ["--max-depth", "5000"], {}, ["--max-depth"]),
        ("bad-value-file", base + ["--config", toml("v.toml", "mam-max-page = 0\n")], {}, ["mam-max-page"]),
        ("wrong-toml-type", base + ["--config", toml("t.toml", 'max-depth = "64"\n')], {}, ["max-depth"]),
        ("bad-value-env", base, {"S2PROXY_LOG_LEVEL": "loud"}, ["S2PROXY_LOG_LEVEL"]),
        ("missing-config-file", base + ["--config", str(tmp_path / "absent.toml")], {}, ["--config"]),
        ("missing-cert", base + ["--tls-cert", str(tmp_path / "absent.crt"), "--tls-key", str(key)], {},
         ["--tls-cert"]),
        ("missing-key", base + ["--tls-cert", upstream.cert, "--tls-key", str(tmp_path / "absent.key")], {},
         ["--tls-key"]),
        ("missing-ca", replace(base, "--upstream-ca", str(tmp_path / "absent-ca.pem")), {}, ["--upstream-ca"]),
        ("ca-and-insecure", base + ["--upstream-insecure"], {}, ["--upstream-insecure"]),
        ("ca-and-insecure-false-in-file", base + ["--config", toml("i.toml", "upstream-insecure = false\n")], {},
         ["upstream-insecure"]),
        ("vault-key-too-open", base + ["--vault-key-file", str(open_vault)], {}, ["--vault-key-file"]),
        ("bad-listen-address", replace(base, "--listen", "127.0.0.1"), {}, ["--listen"]),
        ("bad-upstream-address", replace(base, "--upstream", "no-port-here"), {}, ["--upstream"]),
        ("bad-toml-syntax", base + ["--config", toml("s.toml", "domain = example.org\n")], {}, ["TOML", "s.toml:1"]),
        ("unknown-flag", base + ["--no-such-flag", "1"], {}, ["--no-such-flag"]),
    ]


BAD_IDS = ["unknown-key", "bad-value-flag", "bad-value-file", "wrong-toml-type", "bad-value-env",
           "missing-config-file", "missing-cert", "missing-key", "missing-ca", "ca-and-insecure",
           "ca-and-insecure-false-in-file", "vault-key-too-open", "bad-listen-address", "bad-upstream-address",
           "bad-toml-syntax", "unknown-flag"]


@pytest.mark.parametrize("command", ["check-config", "run"])
@pytest.mark.parametrize("case_id", BAD_IDS)
def test_config_error_exits_2_with_one_line_naming_the_key(binary, upstream, tmp_path, command, case_id):
    cases = {c[0]: c for c in bad_config_cases(upstream, tmp_path)}
    _, args, env, keys = cases[case_id]
    r = run(binary, command, *args, env=env)
    assert r.returncode == 2, "%s exited %d (want 2): %r" % (command, r.returncode, r.stdout + r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, "want one line, got %r" % r.stderr
    assert all(k in lines[0] for k in keys), "%r does not name %s" % (lines[0], keys)
    assert "INI" not in lines[0]
    assert not list(tmp_path.glob("mirror")), "a refused configuration created state"


def test_help_lists_every_flag_with_plain_defaults(binary):
    r = run(binary, "run", "--help")
    assert r.returncode == 0, r.stderr
    documented = re.findall(r"^\| `--([a-z0-9-]+)`(?: / `--([a-z0-9-]+)`)?", (REPO / "README.md").read_text(), re.M)
    flags = {f for pair in documented for f in pair if f}
    assert len(flags) > 25, "README flag table not found"
    for f in sorted(flags):
        line = next((ln for ln in r.stdout.splitlines() if ln.strip().startswith("--%s " % f)
                     or ln.strip() == "--" + f or ln.strip().startswith("--%s:" % f)), None)
        assert line is not None, "--%s missing from `run --help`:\n%s" % (f, r.stdout)
    assert "[default: 1209600]" in r.stdout
    assert not re.search(r"\d\.\d+e[+-]\d", r.stdout), "a default in scientific notation:\n" + r.stdout
    assert "BOOLEAN" not in r.stdout and "=1 " not in r.stdout


def test_version_flag(binary):
    r = run(binary, "--version")
    v = run(binary, "version")
    assert r.returncode == 0 and v.returncode == 0, r.stderr + v.stderr
    assert r.stdout.strip() == v.stdout.strip() and r.stdout.startswith("s2proxy ")


def test_readme_table_and_man_page_match_the_binary(binary):
    md = run(binary, "docs", "--format", "markdown")
    man = run(binary, "docs", "--format", "man")
    assert md.returncode == 0 and man.returncode == 0
    readme = (REPO / "README.md").read_text()
    assert md.stdout in readme, "README.md's flag table differs from `s2proxy docs` (regenerate it)"
    assert (REPO / "deploy/s2proxy.8").read_text() == man.stdout, \
        "deploy/s2proxy.8 differs from `s2proxy docs --format man` (regenerate it)"
    assert "s2proxy.8" in (REPO / "Dockerfile").read_text(), "the Dockerfile does not install the man page"


def documented_metrics():
    section = (REPO / "README.md").read_text().split("## Metrics (`--metrics`)", 1)[1].split("\n## ", 1)[0]
    names = []
    for ln in section.splitlines():
        if ln.startswith("| `"):
            names += re.findall(r"`([a-z0-9_]+)`", ln.split("|")[1])
    return names


def test_metrics_lists_every_documented_series_at_start(proxy_factory):
    import urllib.request
    mport = free_closed_port()
    p = proxy_factory.start({"metrics": "127.0.0.1:%d" % mport})
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5).read().decode()
    names = documented_metrics()
    assert len(names) >= 22, names
    samples = {re.split(r"[{ ]", ln, 1)[0] for ln in body.splitlines() if ln and not ln.startswith("#")}
    missing = [n for n in names if n not in samples and n + "_count" not in samples]
    assert not missing, "documented but not scraped right after start: %s" % missing
    assert 's2proxy_build_info{version="' in body
    assert 's2proxy_login_duration_seconds_bucket{mechanism="PLAIN",le="+Inf"} 0' in body
    p.stop()


def test_failed_login_is_logged_with_the_peer_address(proxy_factory):
    p = proxy_factory.start({})
    with RawXMPP.connect(p.target().host, p.target().starttls_port, p.domain, timeout=15) as c:
        c.secure_stream()
        result, cond, _, _ = c.auth_plain("alice", "wrong-" + uuid.uuid4().hex[:6])
    assert cond == "not-authorized", (result, cond)
    p.stop()
    lines = [ln for ln in p.log_text().splitlines() if " client.auth_failed " in ln and " peer=" in ln]
    assert lines, "no client.auth_failed line with peer=:\n" + p.log_text()[-3000:]
    assert re.search(r"peer=127\.0\.0\.1:\d+ .*condition=not-authorized", lines[-1]), lines[-1]
    check_fail2ban_filter(p.logfile, p.log_text())


def check_fail2ban_filter(logfile, text):
    """The filter deploy/README.md documents finds the failed login in the real log."""
    import shutil
    import tempfile
    if not shutil.which("fail2ban-regex"):
        return
    regex = re.search(r"^    failregex = (.*)$", (REPO / "deploy/README.md").read_text(), re.M).group(1)
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write("[Definition]\nfailregex = %s\nignoreregex =\n" % regex)
        f.flush()
        r = subprocess.run(["fail2ban-regex", str(logfile), f.name], capture_output=True, text=True, timeout=60)
    want = len([ln for ln in text.splitlines() if "client.auth_failed" in ln and "peer" in ln])
    m = re.search(r"^Lines: .* (\d+) matched", r.stdout, re.M)
    assert m and int(m.group(1)) == want, "fail2ban filter matched %s of %d lines:\n%s" % (
        m and m.group(1), want, r.stdout[-2000:])


def test_json_log_has_numbers_and_peer(proxy_factory):
    p = proxy_factory.start({"log-format": "json"})
    with RawXMPP.connect(p.target().host, p.target().starttls_port, p.domain, timeout=15) as c:
        c.secure_stream()
        c.auth_plain("alice", "wrong-" + uuid.uuid4().hex[:6])
    p.stop()
    events = [json.loads(ln) for ln in p.log_text().splitlines() if ln.startswith("{")]
    failed = [e for e in events if e["event"] == "client.auth_failed" and "peer" in e]
    assert failed and failed[-1]["peer"].startswith("127.0.0.1:"), events[-10:]
    check_fail2ban_filter(p.logfile, p.log_text())
    stopping = [e for e in events if isinstance(e.get("sessions"), int)]
    assert stopping, "no integer field in the JSON log (server.stopping sessions=…): %s" % events[-5:]


def test_scram_before_plain_for_a_new_account_is_logged_and_not_throttled(proxy_factory):
    """A client tries SCRAM first; for an account the vault does not know yet that fails before any
    proof is checked and it falls back to PLAIN. Those attempts must not lock the account out."""
    from test_session2 import raw_secure, scram_sasl1
    p = proxy_factory.start({"login-free-failures": "1", "login-backoff-max": "60"})
    t = p.target()
    for i in range(4):
        with raw_secure(t) as c:  # no `from`: SCRAM offered (--scram-without-from true)
            assert "SCRAM-SHA-1" in c.mechanisms(), c.transcript()
            result, cond, _ = scram_sasl1(c, "sha1", "SCRAM-SHA-1", "carol", "carolpw")
            assert (result, cond) == ("failure", "not-authorized"), c.transcript()
    with RawXMPP.connect(t.host, t.starttls_port, t.domain, timeout=15) as c:
        c.secure_stream()
        result, cond, text, _ = c.auth_plain("carol", "carolpw")
    assert result == "success", "PLAIN after SCRAM attempts for an unknown account: %s %s" % (cond, text)
    p.stop()
    lines = [ln for ln in p.log_text().splitlines() if " client.scram_unknown_account " in ln]
    assert len(lines) == 4 and all("peer=127.0.0.1:" in ln for ln in lines), p.log_text()[-3000:]


def test_accounts_read_only_commands_create_nothing(binary, tmp_path):
    data = tmp_path / "never-created"
    r = run(binary, "accounts", "list", "--data-dir", str(data))
    assert r.returncode == 0, r.stderr
    s = run(binary, "accounts", "show", "alice@example.org", "--data-dir", str(data))
    assert s.returncode == 1 and "unknown account" in s.stderr, s.stderr
    assert not data.exists(), "a read-only accounts command created %s" % data


# ---- check-config --probe (issue 13 item 7) ---------------------------------------------------
def test_check_config_probe_reports_tls_certificate_and_mechanisms(binary, upstream, tmp_path):
    r = run(binary, "check-config", "--probe", *valid_flags(upstream, tmp_path), timeout=20)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "configuration ok" in r.stdout
    assert re.search(r"TLS: TLSv1\.[23] \S+", r.stdout), out
    assert "certificate: valid for %s" % upstream.domain in r.stdout, out
    m = re.search(r"SASL mechanisms offered: (.*)", r.stdout)
    assert m and ("SCRAM-SHA-1" in m.group(1) or "SCRAM-SHA-256" in m.group(1)), out
    assert re.search(r"s2proxy will log users in with SCRAM-SHA-(1|256)", r.stdout), out
    assert r.stdout.rstrip().endswith("upstream ok"), out
    assert "pw" not in out  # no credentials anywhere


def test_check_config_probe_refuses_a_certificate_the_ca_does_not_sign(binary, upstream, tmp_path):
    key, crt = tmp_path / "other.key", tmp_path / "other.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(crt), "-subj", "/CN=other.test", "-days", "1"],
                   check=True, capture_output=True)
    flags = replace(valid_flags(upstream, tmp_path), "--upstream-ca", str(crt))
    r = run(binary, "check-config", "--probe", *flags, timeout=20)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "configuration ok" in r.stdout
    assert "check-config --probe: TLS:" in r.stderr and "certif" in r.stderr.lower(), r.stderr


def test_check_config_probe_says_when_nothing_answers(binary, upstream, tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # a port nobody listens on
    flags = replace(valid_flags(upstream, tmp_path), "--upstream", "127.0.0.1:%d" % port)
    r = run(binary, "check-config", "--probe", *flags, timeout=20)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "cannot connect to 127.0.0.1:%d" % port in r.stderr, r.stderr
