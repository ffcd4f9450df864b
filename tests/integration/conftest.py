"""Fixtures for the s2proxy integration suite: a private upstream (Prosody or ejabberd, started by
the shared test bed scripts on the suite's own ports) and s2proxy in front of it.

Env:
  S2_UPSTREAM   prosody (default) | ejabberd
  S2_TARGET     proxy (default) | direct  -- direct: clients talk to the upstream itself (baseline)
                (same as the pytest option --target)
  S2PROXY_BIN   daemon binary (default <repo>/build/s2proxy)
  S2_TESTBED    test bed directory (default <repo>/../shared/testbed)
  S2_VERIFY     1 = slixmpp clients verify the server certificate (default: no verification; the
                certificate itself is checked by test_relay.py::test_proxy_certificate_verifies)
  S2IT_LOG_DIR  where daemon logs are kept (default /tmp/s2it-logs/run-<time>-<pid>)
"""
import atexit
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (EXTRA_PORT_BASE, LIVE_PROCS, PROXY_PORT, PROXY_TLS_PORT, REPO, UPSTREAMS, ProxyProc,  # noqa: E402
                     Upstream, port_free)


def pytest_addoption(parser):
    parser.addoption("--target", choices=["proxy", "direct"], default=None,
                     help="proxy: clients go through s2proxy (default); direct: clients talk to the "
                          "upstream itself (baseline; env S2_TARGET)")


def target_mode(config):
    return config.getoption("--target") or os.environ.get("S2_TARGET", "proxy")


# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def mode(pytestconfig):
    return target_mode(pytestconfig)


@pytest.fixture(scope="session")
def upstream():
    kind = os.environ.get("S2_UPSTREAM", "prosody")
    if kind not in UPSTREAMS:
        pytest.exit("S2_UPSTREAM must be prosody or ejabberd, not %r" % kind, returncode=3)
    spec = UPSTREAMS[kind]
    u = Upstream(kind=kind, domain=spec["domain"], c2s=spec["c2s"], c2s_tls=spec["c2s_tls"], dir=spec["dir"],
                 spec=spec)
    atexit.register(u.stop)
    try:
        u.start()
    except Exception as e:
        u.stop()
        pytest.exit("cannot start upstream %s: %s" % (kind, e), returncode=3)
    yield u
    u.stop()


@pytest.fixture(scope="session")
def upstream_target(upstream):
    """The upstream itself (bob's way in, and the baseline)."""
    return upstream.as_target()


@pytest.fixture(scope="session")
def proxy_bin():
    b = os.environ.get("S2PROXY_BIN") or str(REPO / "build" / "s2proxy")
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        pytest.fail("s2proxy binary not found at %s (set S2PROXY_BIN, or run with --target=direct / "
                    "S2_TARGET=direct for the upstream baseline)" % b, pytrace=False)
    return b


_proxy_state = {}


@pytest.fixture(scope="session")
def target(mode, upstream, request):
    """What alice connects to: s2proxy on 36222/36223 (default) or, with S2_TARGET=direct, the upstream."""
    if mode == "direct":
        yield upstream.as_target(name="direct")
        return
    binary = request.getfixturevalue("proxy_bin")
    p = ProxyProc(binary, "main", upstream, PROXY_PORT, PROXY_TLS_PORT)
    try:
        p.start()
    except Exception as e:
        p.stop()
        p.cleanup()
        pytest.fail(str(e), pytrace=False)
    _proxy_state["main"] = p
    yield p.target("proxy")
    _proxy_state.pop("main", None)
    problems = p.check_shutdown_and_secrets()
    p.cleanup()
    assert not problems, "\n".join(problems) + "\nlog: %s" % p.logfile


class ProxyFactory:
    def __init__(self, binary, upstream, request):
        self.binary = binary
        self.upstream = upstream
        self.request = request
        self.procs = []

    def start(self, opts=None, extra_args=(), env=None, name=None, wait=True, args=None, prepare=None):
        """Start an extra s2proxy instance. opts: {"max-stanza-bytes": 4096, ...} (None drops a
        default flag); prepare(proc) runs before the process starts (e.g. to fill its data dir);
        returns the ProxyProc (use .target() to connect)."""
        global _next_port
        while not (port_free(_next_port) and port_free(_next_port + 1)):
            _next_port += 2
        port = _next_port
        _next_port += 2
        tname = self.request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
        # Each proxy is the one owner of its accounts in production. Here several share one upstream
        # account: their anchors need distinct resources, or the upstream's resource conflict rule
        # makes them kick each other forever.
        opts = dict(opts or {})
        opts.setdefault("anchor-resource", "s2proxy-%d" % port)
        p = ProxyProc(self.binary, name or "%s-%d" % (tname, port), self.upstream, port, port + 1, opts=opts,
                      extra_args=extra_args, env=env, args=args)
        self.procs.append(p)
        if prepare is not None:
            prepare(p)
        p.start(wait=wait)
        return p


_next_port = EXTRA_PORT_BASE


@pytest.fixture
def proxy_factory(mode, upstream, request):
    """Start extra proxy instances with custom flags on other ports (proxy mode only)."""
    if mode == "direct":
        pytest.skip("needs s2proxy instances with custom flags (not available with S2_TARGET=direct)")
    f = ProxyFactory(request.getfixturevalue("proxy_bin"), upstream, request)
    yield f
    problems = []
    for p in f.procs:
        if p.proc is not None:  # stops it unless the test did; always checks the log for secrets
            problems += p.check_shutdown_and_secrets()
        p.cleanup()
    assert not problems, "\n".join(problems)


# ---- post-mortem: attach the daemon's log lines of a failed test to its report ------------------
@pytest.fixture(autouse=True)
def _log_marks(request, upstream):
    marks = {}
    for p in list(LIVE_PROCS):
        marks[p] = p.log_size()
    try:
        marks["upstream"] = os.path.getsize(upstream.logfile)
    except OSError:
        marks["upstream"] = 0
    request.node._s2it_marks = marks
    request.node._s2it_upstream = upstream
    yield
    main = _proxy_state.get("main")
    if main is not None and not main.alive():
        pytest.fail("the main s2proxy died during this test (rc=%s):\n%s" % (main.proc.returncode, main.log_tail()),
                    pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and hasattr(item, "_s2it_marks"):
        marks = item._s2it_marks
        procs = set(p for p in marks if isinstance(p, ProxyProc)) | set(LIVE_PROCS)
        factory = getattr(item, "funcargs", {}).get("proxy_factory")
        if isinstance(factory, ProxyFactory):
            procs.update(factory.procs)
        for p in procs:
            rep.sections.append(("s2proxy %s log (%s) during this test" % (p.name, p.logfile),
                                 p.log_since(marks.get(p, 0))))
        up = item._s2it_upstream
        try:
            with open(up.logfile, "rb") as f:
                f.seek(marks.get("upstream", 0))
                lines = f.read().decode(errors="replace").splitlines()[-40:]
            rep.sections.append(("upstream %s log (%s), last lines" % (up.kind, up.logfile), "\n".join(lines)))
        except OSError:
            pass
