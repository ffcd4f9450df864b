"""The command line: version, check-config, and where settings come from (flag > env > config file)."""
import json
import os
import re
import subprocess
import uuid

import pytest

from harness import REPO, free_closed_port
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


def valid_flags(upstream, tmp_path, port=36399):
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
