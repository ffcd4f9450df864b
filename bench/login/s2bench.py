"""Shared pieces of the Python benches (bench/login, bench/relay).

* the environment: a private Prosody 0.12 started by the shared test bed script and one s2proxy in
  front of it, both through tests/integration/harness.py (imported, not copied);
* RSS of a process, percentiles, markdown tables, a hard deadline for the whole run.

Ports (127.0.0.1 only): Prosody 55222 (STARTTLS) / 55223 (direct TLS), state /tmp/s2bench-prosody;
s2proxy 56222 / 56223; delay relays on kernel-chosen free ports.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
# daemon logs of the bench go to their own directory (harness reads this at import)
os.environ.setdefault("S2IT_LOG_DIR", "/tmp/s2bench-logs/run-%s-%d" % (time.strftime("%Y%m%d-%H%M%S"), os.getpid()))

import harness  # noqa: E402  (tests/integration/harness.py)

HOST = "127.0.0.1"
DOMAIN = "legacy.test"
PROSODY_DIR = "/tmp/s2bench-prosody"
PROSODY_C2S = 55222
PROSODY_C2S_TLS = 55223
PROXY_PORT = 56222
PROXY_TLS_PORT = 56223
DEFAULT_BINARY = REPO / "build" / "s2proxy"  # what the README builds (cmake --preset default)

PASSWORDS = {"alice": "alicepw", "bob": "bobpw", "carol": "carolpw"}


class BenchEnv:
    """Private Prosody (test bed script, wiped data) + one s2proxy. stop() undoes start()."""

    def __init__(self, binary=DEFAULT_BINARY, load_users=0, log_level="info", extra_ports=(),
                 prosody_nagle=True, proxy_opts=None, store="lmdb", nodes=1):
        # store="postgresql": the proxy's store is a throwaway PostgreSQL 15 (tests/integration/
        # pgserver.py, port 36432); nodes > 1 (PostgreSQL only): that many s2proxy nodes of one
        # cluster, node k on 56222 + 2k / 56223 + 2k, sharing the schema, vault key and certificate.
        if nodes > 1 and store != "postgresql":
            raise SystemExit("several nodes need --store postgresql")
        self.store = store
        self.nodes = nodes
        self.extra_nodes = []
        self.pg = None
        self.binary = str(binary)
        self.prosody_nagle = prosody_nagle
        self._nonagle_proc = None
        self.load_users = load_users
        self.proxy_opts = dict(proxy_opts or {})
        self.log_level = log_level
        self.extra_ports = tuple(extra_ports)
        self.upstream = None
        self.proxy = None

    def start(self):
        if not Path(self.binary).exists():
            raise SystemExit("s2proxy binary %s missing: cmake --preset default && cmake --build build --target s2proxy -j2" % self.binary)
        ports = tuple(PROXY_PORT + i for i in range(2 * self.nodes)) + self.extra_ports
        if not self._own_prosody_alive():  # a leftover of ours is restarted by the script (FRESH=1)
            ports = (PROSODY_C2S, PROSODY_C2S_TLS) + ports
        busy = [p for p in ports if not harness.port_free(p)]
        if busy:
            raise SystemExit("ports in use on 127.0.0.1: %s (a stale bench? `ss -ltnp | grep -E '%s'`)" % (
                busy, "|".join(str(p) for p in busy)))
        # Upstream.env() copies os.environ: the test bed script sees TB_PROSODY_LOAD_USERS
        if self.load_users:
            os.environ["TB_PROSODY_LOAD_USERS"] = str(self.load_users)
        else:
            os.environ.pop("TB_PROSODY_LOAD_USERS", None)
        self.upstream = harness.Upstream("prosody", DOMAIN, PROSODY_C2S, PROSODY_C2S_TLS, PROSODY_DIR,
                                         harness.UPSTREAMS["prosody"])
        self.upstream.start()
        if not self.prosody_nagle:
            self._restart_prosody_without_nagle()
        env = {}
        if self.store == "postgresql":
            import pgserver  # tests/integration: initdb + pg_ctl in a temp dir
            self.pg = pgserver.server()
            schema = pgserver.schema_for("s2bench-%d-%f" % (os.getpid(), time.time()))
            self.pg.psql("CREATE SCHEMA %s" % schema)
            env["S2PROXY_STORE"] = self.pg.url(schema)
            env["S2PROXY_ADVERTISE"] = "%s:%d" % (HOST, PROXY_PORT)
        self.proxy = harness.ProxyProc(self.binary, "bench", self.upstream, PROXY_PORT, PROXY_TLS_PORT,
                                       opts=dict({"log-level": self.log_level}, **self.proxy_opts), env=env)
        self.proxy.start()
        for k in range(1, self.nodes):
            port = PROXY_PORT + 2 * k
            node_env = dict(env, S2PROXY_ADVERTISE="%s:%d" % (HOST, port),
                            S2PROXY_VAULT_KEY_FILE=self.proxy.data_dir + "/vault.key",
                            S2PROXY_TLS_CERT=self.proxy.cert,
                            S2PROXY_TLS_KEY=self.proxy.cert[:-len(".crt")] + ".key")
            node = harness.ProxyProc(self.binary, "bench-node%d" % k, self.upstream, port, port + 1,
                                     opts=dict({"log-level": self.log_level, "anchor-resource": "s2proxy-n%d" % k},
                                               **self.proxy_opts), env=node_env)
            node.start()
            self.extra_nodes.append(node)
        return self

    @staticmethod
    def _own_prosody_alive():
        try:
            pid = int(Path(PROSODY_DIR, "prosody.pid").read_text().strip())
            os.kill(pid, 0)
            return True
        except (OSError, ValueError):
            return False

    def stop(self):
        for node in self.extra_nodes:
            try:
                node.stop()
            finally:
                node.cleanup()
        self.extra_nodes = []
        if self.proxy is not None:
            try:
                self.proxy.stop()
            finally:
                self.proxy.cleanup()
            self.proxy = None
        if self.upstream is not None:
            self.upstream.stop()
            self.upstream = None
        if self._nonagle_proc is not None:
            if self._nonagle_proc.poll() is None:
                self._nonagle_proc.terminate()
                try:
                    self._nonagle_proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._nonagle_proc.kill()
            self._nonagle_proc = None

    def _restart_prosody_without_nagle(self):
        """Diagnostic only: the same Prosody (config, data, pidfile from the test bed script) restarted
        with `network_settings = { nagle = false }` (Prosody 0.12's server_epoll leaves Nagle on)."""
        cfg = Path(PROSODY_DIR, "prosody.cfg.lua")
        text = cfg.read_text()
        anchor = 'network_backend = "epoll"'
        if anchor not in text:
            raise SystemExit("cannot find %r in %s" % (anchor, cfg))
        nn = Path(PROSODY_DIR, "prosody-nonagle.cfg.lua")
        nn.write_text(text.replace(anchor, anchor + "\nnetwork_settings = { nagle = false }  -- s2bench diagnostic", 1))
        self.upstream.stop()
        end = time.monotonic() + 10
        while time.monotonic() < end and not harness.port_free(PROSODY_C2S):
            time.sleep(0.05)
        log = open(Path(PROSODY_DIR, "stdout-nonagle.log"), "ab")
        self._nonagle_proc = subprocess.Popen(["prosody", "--config", str(nn), "-F"], stdin=subprocess.DEVNULL,
                                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if harness.port_open(PROSODY_C2S) and harness.port_open(PROSODY_C2S_TLS):
                return
            if self._nonagle_proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit("prosody (nagle off) did not come up; see %s" % log.name)

    @property
    def prosody_ca(self):
        return self.upstream.cert

    @property
    def proxy_ca(self):
        return self.proxy.cert

    def prosody_pid(self):
        try:
            return int(Path(PROSODY_DIR, "prosody.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def proxy_pid(self):
        return self.proxy.proc.pid if self.proxy and self.proxy.proc else None

    def node_ports(self):
        """The client (STARTTLS) port of each s2proxy node, node 0 first."""
        return [PROXY_PORT + 2 * k for k in range(self.nodes)]

    def node_pids(self):
        return [p for p in [self.proxy_pid()] + [n.proc.pid for n in self.extra_nodes if n.proc] if p]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def parse_proxy_opts(pairs):
    """--proxy-opt FLAG=VALUE (repeatable) as {flag: value} for BenchEnv's proxy_opts."""
    opts = {}
    for kv in pairs:
        key, sep, value = kv.partition("=")
        if not sep:
            raise SystemExit("--proxy-opt %r: want FLAG=VALUE" % kv)
        opts[key] = value
    return opts


def cpu_seconds(pid):
    """utime + stime of a process, seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, TypeError):
        return float("nan")


def rss_kib(pid):
    """VmRSS of a process in KiB (None if unreadable)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, TypeError):
        pass
    return None


def port_free(port):
    return harness.port_free(port)


def percentile(xs, p):
    """Linear interpolation between closest ranks (numpy's default); p in [0, 100]."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median(xs):
    return percentile(xs, 50)


def md_table(headers, rows, align=None):
    align = align or ["l"] + ["r"] * (len(headers) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


class Deadline(Exception):
    pass


def install_deadline(seconds):
    """SIGALRM after `seconds` raises Deadline in the main thread; SIGTERM/SIGINT raise too, so the
    caller's finally: blocks stop what the run started."""
    def on_alarm(signum, frame):
        raise Deadline("bench exceeded its %ds budget" % seconds)

    def on_term(signum, frame):
        raise Deadline("terminated by signal %d" % signum)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(int(seconds))


def cancel_deadline():
    signal.alarm(0)


def machine_info():
    info = {"cpus": os.cpu_count(), "kernel": os.uname().release}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["loadavg_start"] = open("/proc/loadavg").read().split()[:3]
    except OSError:
        pass
    return info


def binary_info(binary):
    """What was measured: the daemon's version, mtime and a hash prefix (a tree may be rebuilt under us), and
    the tree it came from (HEAD + whether proxy/ or common/ had uncommitted changes)."""
    import hashlib
    info = {"path": str(binary)}
    try:
        info["version"] = subprocess.run([str(binary), "version"], capture_output=True, text=True,
                                         timeout=5).stdout.strip()
        st = os.stat(binary)
        info["mtime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime))
        h = hashlib.sha256()
        with open(binary, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        info["sha256"] = h.hexdigest()[:16]
        git = ["git", "-C", str(REPO)]
        info["head"] = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                      timeout=5).stdout.strip()
        dirty = subprocess.run(git + ["status", "--porcelain", "--", "proxy", "common"], capture_output=True,
                               text=True, timeout=5).stdout.strip()
        info["tree_dirty"] = bool(dirty)
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def binary_line(info):
    return "%s, file time %s, sha256 %s…, repo HEAD at run time %s%s" % (
        info.get("version", "?"), info.get("mtime", "?"), info.get("sha256", "?"), info.get("head", "?"),
        " + uncommitted changes in proxy/ or common/" if info.get("tree_dirty") else "")


def set_nodelay(sock):
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass
