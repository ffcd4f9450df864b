"""Process management for the integration suite: upstream (test bed scripts) and s2proxy instances."""
import atexit
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from xmppclient import PASSWORDS, Target  # noqa: E402

REPO = HERE.parent.parent
TESTBED = Path(os.environ.get("S2_TESTBED", REPO.parent / "shared" / "testbed")).resolve()
HOST = "127.0.0.1"


def _slot():
    """Which port set this run uses: 0, or 1 when CTest runs two integration files side by side
    (the sanitizer pass: `--resource-spec-file tests/integration/slots.json`; CTest names the slot
    it gave the test in CTEST_RESOURCE_GROUP_0_SLOT="id:N,slots:1"). S2IT_SLOT overrides."""
    if os.environ.get("S2IT_SLOT"):
        return int(os.environ["S2IT_SLOT"])
    for part in os.environ.get("CTEST_RESOURCE_GROUP_0_SLOT", "").split(","):
        if part.startswith("id:"):
            return int(part[3:])
    return 0


SLOT = _slot()
# Slot 1 moves every fixed port by 2000 and every state dir, so two runs share nothing: slot 0
# uses 35222-3 (Prosody), 36222-3 (proxy), 36300-36799 (extra proxies), 45222-3 + 45370
# (ejabberd); slot 1 the same + 2000 (tests/run.sh reserves both sets).
_OFF = 2000 * SLOT
_SUFFIX = "" if SLOT == 0 else "-s%d" % SLOT

PROXY_PORT = 36222 + _OFF
PROXY_TLS_PORT = 36223 + _OFF
EXTRA_PORT_BASE = 36300 + _OFF  # extra proxy instances: 36300/36301, 36302/36303, ...

UPSTREAMS = {
    "prosody": dict(domain="legacy.test", c2s=35222 + _OFF, c2s_tls=35223 + _OFF, dir="/tmp/s2it-prosody" + _SUFFIX,
                    up="prosody-up.sh", down="prosody-down.sh", log="prosody.log",
                    env=lambda u: {"TB_PROSODY_DIR": u.dir, "TB_PROSODY_C2S": str(u.c2s),
                                   "TB_PROSODY_C2S_TLS": str(u.c2s_tls)},
                    fresh="TB_PROSODY_FRESH",
                    # c2s_stanza_size_limit default (Prosody 0.12); used by the direct baseline
                    limits={"max_stanza_bytes": 256 * 1024}),
    "ejabberd": dict(domain="legacy2.test", c2s=45222 + _OFF, c2s_tls=45223 + _OFF, dir="/tmp/s2it-ejabberd" + _SUFFIX,
                     up="ejabberd-up.sh", down="ejabberd-down.sh", log="log/ejabberd.log",
                     env=lambda u: {"TB_EJABBERD_DIR": u.dir, "TB_EJABBERD_C2S": str(u.c2s),
                                    "TB_EJABBERD_C2S_TLS": str(u.c2s_tls), "TB_EJABBERD_DIST": str(45370 + _OFF)},
                     fresh="TB_EJABBERD_FRESH",
                     limits={"max_stanza_bytes": 262144}),
}

SECRETS_PLAIN = list(PASSWORDS.values())


def secret_blobs(domain):
    """The base64 SASL PLAIN messages a client could send for the test accounts."""
    blobs = set()
    for user, pw in PASSWORDS.items():
        for authzid in ("", "%s@%s" % (user, domain)):
            for authcid in (user, "%s@%s" % (user, domain)):
                blobs.add(base64.b64encode(("%s\0%s\0%s" % (authzid, authcid, pw)).encode()).decode())
    return sorted(blobs)


def find_secrets(text, domain):
    extra = []
    if os.environ.get("S2_STORE") == "postgresql":
        import pgserver
        extra.append(pgserver.PASSWORD)
    return [s for s in SECRETS_PLAIN + secret_blobs(domain) + extra if s in text]


# ------------------------------------------------------------------------------------------------
def port_open(port, host=HOST, timeout=0.3):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(port):
    """Nothing listens on the port. SO_REUSEADDR as servers use it: connections of a previous
    instance lingering in TIME_WAIT do not count."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


LOG_DIR = Path(os.environ.get("S2IT_LOG_DIR") or
               "/tmp/s2it-logs/run-%s-%d" % (time.strftime("%Y%m%d-%H%M%S"), os.getpid()))


# ------------------------------------------------------------------------------------------------
@dataclass
class Upstream:
    kind: str
    domain: str
    c2s: int
    c2s_tls: int
    dir: str
    spec: dict

    @property
    def cert(self):
        return "%s/certs/%s.crt" % (self.dir, self.domain)

    @property
    def logfile(self):
        return "%s/%s" % (self.dir, self.spec["log"])

    def env(self, fresh=False):
        e = dict(os.environ)
        e.update(self.spec["env"](self))
        if fresh:
            e[self.spec["fresh"]] = "1"
        return e

    def start(self):
        # FRESH=1: a leftover instance of this suite (same state dir) is restarted with wiped data;
        # anything else on our ports makes the script fail with a clear message
        script = TESTBED / self.spec["up"]
        if not script.exists():
            pytest.exit("test bed script %s not found (set S2_TESTBED)" % script, returncode=3)
        if self.kind == "ejabberd" and ejabberd_sql_archive():
            shutil.rmtree(self.dir + "/sql", ignore_errors=True)
        r = subprocess.run([str(script)], env=self.env(fresh=True), capture_output=True, text=True,
                           timeout=180)
        if r.returncode != 0 or not port_open(self.c2s):
            raise RuntimeError("%s failed (rc=%d):\n%s\n%s" % (script, r.returncode, r.stdout, r.stderr))
        self._with_sql_archive()

    def restart(self):
        """Stop and start again, keeping the data (accounts, archives, offline storage)."""
        self.stop()
        script = TESTBED / self.spec["up"]
        r = subprocess.run([str(script)], env=self.env(fresh=False), capture_output=True, text=True,
                           timeout=180)
        if r.returncode != 0 or not port_open(self.c2s):
            raise RuntimeError("%s failed (rc=%d):\n%s\n%s" % (script, r.returncode, r.stdout, r.stderr))
        self._with_sql_archive()

    def _with_sql_archive(self):
        """S2_EJABBERD_ARCHIVE=sql: ejabberd's MAM in SQLite (`mod_mam: db_type: sql`), as an operator
        with a big archive runs it; its default mnesia archive rewrites a user's whole archive per
        message and stops archiving at the 2 GB dets limit (docs/architecture.md §21). The test bed
        script writes its config on every start, so it is started by the script, stopped, and
        started again here, the same way, with the SQL lines added (the accounts stay in mnesia)."""
        if self.kind != "ejabberd" or not ejabberd_sql_archive():
            return
        cfg = Path(self.dir, "etc", "ejabberd.yml")
        text = cfg.read_text()
        anchor = "  mod_mam:\n"
        if anchor not in text:
            raise RuntimeError("cannot find %r in %s" % (anchor, cfg))
        subprocess.run([str(TESTBED / self.spec["down"])], env=self.env(), capture_output=True, text=True,
                       timeout=60)
        sql_dir = Path(self.dir, "sql")
        sql_dir.mkdir(exist_ok=True)
        shutil.chown(sql_dir, user="ejabberd", group="ejabberd")
        text = text.replace(anchor, anchor + "    db_type: sql\n", 1)
        text += '\nsql_type: sqlite\nsql_database: "%s/ejabberd.db"\n' % sql_dir
        cfg.write_text(text)
        shutil.chown(cfg, user="ejabberd", group="ejabberd")
        ctl = ["ejabberdctl", "--ctl-config", self.dir + "/ejabberdctl.cfg", "--config-dir", self.dir + "/etc",
               "--logs", self.dir + "/log", "--spool", self.dir + "/spool"]
        pidfile = Path(self.dir, "ejabberd.pid")
        pidfile.unlink(missing_ok=True)
        with open(self.dir + "/log/stdout.log", "ab") as out:
            subprocess.Popen(ctl + ["foreground"], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if pidfile.exists() and pidfile.read_text().strip() and port_open(self.c2s):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("ejabberd with the SQL archive did not come up:\n%s" % Path(
                self.dir, "log", "ejabberd.log").read_text()[-3000:])
        subprocess.run(ctl + ["started"], capture_output=True, timeout=60)

    def stop(self):
        script = TESTBED / self.spec["down"]
        try:
            subprocess.run([str(script)], env=self.env(), capture_output=True, text=True, timeout=60)
        except Exception as e:  # pragma: no cover
            print("stopping upstream failed: %s" % e, file=sys.stderr)

    def as_target(self, name="upstream"):
        return Target(name=name, domain=self.domain, host=HOST, starttls_port=self.c2s, tls_port=self.c2s_tls,
                      cafile=self.cert, direct=True, limits=dict(self.spec["limits"]), kind=self.kind)


def ejabberd_sql_archive():
    return os.environ.get("S2_EJABBERD_ARCHIVE", "mnesia") == "sql"


# ------------------------------------------------------------------------------------------------
LIVE_PROCS = []


class ProxyProc:
    """One s2proxy process: started, waited for, stopped with SIGTERM (KILL as a last resort)."""

    def __init__(self, binary, name, upstream: Upstream, port, tls_port, opts=None, extra_args=(),
                 env=None, args=None):
        self.binary = binary
        self.name = name
        self.upstream = upstream
        self.domain = upstream.domain
        self.port = port
        self.tls_port = tls_port
        self.data_dir = tempfile.mkdtemp(prefix="s2it-%s-" % name, dir="/tmp")
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.logfile = LOG_DIR / ("%s.log" % name)
        o = {
            "domain": upstream.domain,
            "upstream": "%s:%d" % (HOST, upstream.c2s),
            "upstream-tls": "starttls",
            "upstream-ca": upstream.cert,
            "listen": "%s:%d" % (HOST, port),
            "listen-tls": "%s:%d" % (HOST, tls_port),
            "data-dir": self.data_dir,
            "log-level": "debug",
        }
        o.update(opts or {})
        self.opts = o
        if args is not None:
            self.argv = [binary] + list(args)
        else:
            self.argv = [binary, "run"]
            for k, v in o.items():
                if v is None:
                    continue
                self.argv += ["--" + k] if v is True else ["--" + k, str(v)]
            self.argv += list(extra_args)
        # the suite decides every S2PROXY_* setting: drop any from the caller's environment
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("S2PROXY_")}
        # S2_STORE=postgresql: this proxy keeps its mirror in its own schema of a throwaway
        # PostgreSQL (pgserver.py). The URL, password included, goes through the environment, so
        # that the log (which starts with argv) holds it only if the proxy wrote it there.
        if os.environ.get("S2_STORE") == "postgresql" and "store" not in o:
            import pgserver
            self.env["S2PROXY_STORE"] = pgserver.store_url_for(self.data_dir)
        self.env.update(env or {})
        self.proc = None
        self.rc = None
        self.stop_elapsed = None
        self.killed = False

    @property
    def cert(self):
        return "%s/tls/%s.crt" % (self.data_dir, self.domain)

    def start(self, wait=True, timeout=15.0):
        for p in (self.port, self.tls_port):
            if not port_free(p):
                raise RuntimeError("port %d is already in use (a stale s2proxy?); `ss -ltnp | grep %d`" % (p, p))
        self.logf = open(self.logfile, "ab")
        self.logf.write(("# %s\n# %s\n" % (time.strftime("%F %T"), " ".join(self.argv))).encode())
        self.logf.flush()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        LIVE_PROCS.append(self)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("s2proxy %s exited with %s before listening:\n%s" % (
                    self.name, self.proc.returncode, self.log_tail()))
            if port_open(self.port) and port_open(self.tls_port):
                return
            time.sleep(0.05)
        raise RuntimeError("s2proxy %s did not listen on %d/%d within %.0fs:\n%s" % (
            self.name, self.port, self.tls_port, timeout, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        """SIGKILL, as a crash: no drain, no flush."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self in LIVE_PROCS:
            LIVE_PROCS.remove(self)
        try:
            self.logf.close()
        except Exception:
            pass

    def restart(self, timeout=15.0):
        """Start again on the same ports and data dir (after stop() or kill9())."""
        self.rc = None
        self.killed = False
        self.stop_elapsed = None
        return self.start(timeout=timeout)

    def stop(self, timeout=5.0):
        """SIGTERM; wait `timeout` s; KILL if still alive. Returns (rc, elapsed, killed)."""
        if self.proc is None:
            return None, 0.0, False
        if self.rc is not None:
            return self.rc, self.stop_elapsed, self.killed
        t0 = time.monotonic()
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait(10)
        self.rc = self.proc.returncode
        self.stop_elapsed = time.monotonic() - t0
        try:
            self.logf.close()
        except Exception:
            pass
        if self in LIVE_PROCS:
            LIVE_PROCS.remove(self)
        return self.rc, self.stop_elapsed, self.killed

    def cleanup(self):
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_text(self):
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    def log_size(self):
        try:
            return self.logfile.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset, max_lines=120):
        try:
            with open(self.logfile, "rb") as f:
                f.seek(offset)
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        if len(lines) > max_lines:
            lines = ["... (%d earlier lines)" % (len(lines) - max_lines)] + lines[-max_lines:]
        return "\n".join(lines)

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def target(self, name=None):
        return Target(name=name or self.name, domain=self.domain, host=HOST, starttls_port=self.port,
                      tls_port=self.tls_port, cafile=self.cert, direct=False, proc=self, kind=self.upstream.kind,
                      limits={"max_stanza_bytes": int(self.opts.get("max-stanza-bytes") or 256 * 1024),
                              "max_depth": int(self.opts.get("max-depth") or 64)})

    def check_shutdown_and_secrets(self):
        """The end-of-life checks every proxy instance must pass; returns a list of problems. The exit
        status is checked only when this call stops the process (a test that stopped it checked it)."""
        problems = []
        stopped_here = self.rc is None
        rc, elapsed, killed = self.stop()
        if not stopped_here:
            pass
        elif killed:
            problems.append("s2proxy %s did not exit within 5 s of SIGTERM (killed)" % self.name)
        elif rc != 0:
            problems.append("s2proxy %s exited with %s after SIGTERM (want 0), %.2fs" % (self.name, rc, elapsed))
        leaked = find_secrets(self.log_text(), self.domain)
        if leaked:
            lines = [ln for ln in self.log_text().splitlines() if any(s in ln for s in leaked)][:5]
            problems.append("s2proxy %s log %s contains secrets %s, e.g.:\n%s" % (
                self.name, self.logfile, leaked, "\n".join(lines)))
        return problems


def _kill_leftovers():
    for p in list(LIVE_PROCS):
        try:
            p.proc.kill()
            p.proc.wait(5)
        except Exception:
            pass


atexit.register(_kill_leftovers)



def scrape_metrics(mport):
    """The proxy's /metrics on 127.0.0.1:mport as {series (name and labels): value}."""
    import urllib.request
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5).read().decode()
    out = {}
    for ln in body.splitlines():
        if ln and not ln.startswith("#"):
            name, value = ln.rsplit(" ", 1)
            out[name] = float(value)
    return out


def metric_total(metrics, name):
    """The sum of every series of `name` (all label values) in a scrape_metrics() result."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


def tcp_sent_to(port, pid=None, local_port=None):
    """{local address: (data_segs_out, bytes_sent)} over the established TCP connections to
    127.0.0.1:port owned by process `pid` or bound to `local_port` (ss -ti): the data segments (~ the
    receiver's reads) and bytes each has sent; None if ss cannot run."""
    import re
    try:
        res = subprocess.run(["ss", "-tinpH", "state", "established", "( dport = :%d )" % port],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    out, current = {}, None
    for line in res.splitlines():
        if line and not line[0].isspace():
            cols = line.split()
            mine = ((pid is not None and "pid=%d," % pid in line) or
                    (local_port is not None and len(cols) >= 3 and cols[2].endswith(":%d" % local_port)))
            current = cols[2] if mine and len(cols) >= 3 else None
        elif current:
            segs = re.search(r"data_segs_out:(\d+)", line)
            sent = re.search(r"bytes_sent:(\d+)", line)
            out[current] = (int(segs.group(1)) if segs else 0, int(sent.group(1)) if sent else 0)
    return out


def free_closed_port():
    """A loopback port nothing listens on (for 'upstream down')."""
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


