"""Drive real xmpp.js clients (@xmpp/client 0.14.0, tests/integration/xmppjs/) from pytest.

`xmppjs/driver.mjs` is one node process that runs any number of named xmpp.js clients and takes
JSON commands on stdin (one a line), answering each with one JSON line on stdout. Every call here
is bounded (the driver bounds its own waits too, this side adds a margin and kills the process
when it stops answering).

    drv = XmppJs(cafile=proxy.cert)                     # NODE_EXTRA_CA_CERTS: verify the proxy
    st = drv.start("a", target, "alice", resource="phone", user_agent=str(uuid.uuid4()))
    tr = drv.trace("a")                                 # Trace: every element in/out + status changes
    drv.close()

`ensure_node_modules()` runs `npm ci` in xmppjs/ when node_modules is missing (once per session).
"""
import json
import os
import queue
import shutil
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
JS_DIR = HERE / "xmppjs"
DRIVER = JS_DIR / "driver.mjs"

NS_STREAM = "http://etherx.jabber.org/streams"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_SASL2 = "urn:xmpp:sasl:2"
NS_BIND2 = "urn:xmpp:bind:0"
NS_FAST = "urn:xmpp:fast:0"
NS_SM = "urn:xmpp:sm:3"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"


def q(ns, tag):
    return "{%s}%s" % (ns, tag)


class DriverError(AssertionError):
    def __init__(self, op, error, result=None, stderr=""):
        self.op = op
        self.error = error
        self.result = result
        super().__init__("xmpp.js %s failed: %s%s%s" % (
            op, error, "\nresult: %s" % json.dumps(result)[:3000] if result else "",
            "\ndriver stderr: %s" % stderr[-2000:] if stderr else ""))


def node_binary():
    return shutil.which("node")


def ensure_node_modules(timeout=240):
    """npm ci (from the committed package-lock.json) unless @xmpp/client is already installed.
    Returns None when ready, or a message saying why not."""
    if node_binary() is None:
        return "node is not installed (apt-get install -y nodejs npm)"
    if (JS_DIR / "node_modules" / "@xmpp" / "client" / "package.json").exists():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed (apt-get install -y npm)"
    try:
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=str(JS_DIR),
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "npm ci in %s did not finish within %ds" % (JS_DIR, timeout)
    if r.returncode != 0 or not (JS_DIR / "node_modules" / "@xmpp" / "client").exists():
        return "npm ci in %s failed (rc=%d):\n%s\n%s" % (JS_DIR, r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return None


# ---- traces --------------------------------------------------------------------------------------
_WRAP = ("<s2it-wrap xmlns='jabber:client' xmlns:stream='%s'>" % NS_STREAM, "</s2it-wrap>")


def parse_el(x):
    """An element as xmpp.js serialised it (no stream prefix declaration, default ns jabber:client)."""
    return list(ET.fromstring(_WRAP[0] + x + _WRAP[1]))[0]


class Entry:
    def __init__(self, d):
        self.n = d["n"]
        self.t = d["t"]
        self.dir = d["dir"]
        self.x = d["x"]
        self._el = None

    @property
    def el(self):
        if self._el is None and self.dir in ("in", "out"):
            self._el = parse_el(self.x)
        return self._el

    def is_(self, ns, tag):
        return self.dir in ("in", "out") and self.el.tag == q(ns, tag)

    def __repr__(self):
        s = self.x if len(self.x) < 400 else self.x[:400] + "..."
        return "%s %s" % ({"in": "<<", "out": ">>", "status": "--", "raw": "<<raw"}[self.dir], s)


class Trace:
    def __init__(self, log=None, entries=None):
        self.entries = entries if entries is not None else [Entry(d) for d in log]

    def after(self, entry):
        return Trace(entries=[e for e in self.entries if e.n > entry.n])

    def before(self, entry):
        return Trace(entries=[e for e in self.entries if e.n < entry.n])

    def since(self, n):
        return Trace(entries=[e for e in self.entries if e.n >= n])

    def find(self, direction, ns, tag):
        return [e for e in self.entries if e.dir == direction and e.is_(ns, tag)]

    def first(self, direction, ns, tag):
        hits = self.find(direction, ns, tag)
        return hits[0] if hits else None

    def statuses(self):
        return [e.x for e in self.entries if e.dir == "status"]

    def stream_opens(self):
        """Stream headers the client sent ("opening") -- one per stream (re)start."""
        return [e for e in self.entries if e.dir == "status" and e.x == "opening"]

    def dump(self, limit=60, raw=False):
        es = [e for e in self.entries if raw or e.dir != "raw"][-limit:]
        return "\n".join(repr(e) for e in es)

    def __len__(self):
        return len(self.entries)


# ---- the driver ------------------------------------------------------------------------------------
class XmppJs:
    def __init__(self, cafile=None, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("NODE_")}
        if cafile:
            e["NODE_EXTRA_CA_CERTS"] = str(cafile)  # the proxy's self-signed certificate
        else:
            e["NODE_TLS_REJECT_UNAUTHORIZED"] = "0"
        e["NODE_NO_WARNINGS"] = "1"
        e.update(env or {})
        self.proc = subprocess.Popen([node_binary(), str(DRIVER)], cwd=str(JS_DIR), env=e, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                                     start_new_session=True)
        self._answers = queue.Queue()
        self._stderr = []
        self._next = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_out(self):
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                self._answers.put(json.loads(line))
            except ValueError:
                self._stderr.append("stdout noise: " + line)
        self._answers.put(None)

    def _read_err(self):
        for line in self.proc.stderr:
            self._stderr.append(line)

    def stderr(self):
        return "".join(self._stderr)

    def call(self, op, timeout=10.0, **args):
        """One command; returns its result, raises DriverError when it failed. `timeout` (s) is
        passed to the driver (ms) and bounds the wait here (+3 s)."""
        with self._lock:
            self._next += 1
            cid = self._next
            msg = dict(args, id=cid, op=op, timeout=int(timeout * 1000))
            if self.proc.poll() is not None:
                raise DriverError(op, "the node driver exited (rc=%s)" % self.proc.returncode, stderr=self.stderr())
            try:
                self.proc.stdin.write(json.dumps(msg) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError) as ex:
                raise DriverError(op, "cannot write to the node driver: %s" % ex, stderr=self.stderr())
            end = time.monotonic() + timeout + 3.0
            while True:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    self.kill()
                    raise DriverError(op, "the node driver did not answer within %.0fs" % (timeout + 3),
                                      stderr=self.stderr())
                try:
                    ans = self._answers.get(timeout=remaining)
                except queue.Empty:
                    continue
                if ans is None:
                    raise DriverError(op, "the node driver exited (rc=%s)" % self.proc.poll(), stderr=self.stderr())
                if ans.get("id") != cid:
                    continue  # a late answer to an earlier (timed out) command
                if not ans.get("ok"):
                    raise DriverError(op, ans.get("error"), ans.get("result"))
                return ans.get("result") or {}

    # ---- conveniences -----------------------------------------------------------------------------
    def start(self, name, target, user, password=None, resource=None, user_agent=None, token=None,
              sm_id=None, sm_inbound=0, direct_tls=False, csi=None, timeout=10.0):
        from xmppclient import PASSWORDS
        service = "%s://%s:%d" % ("xmpps" if direct_tls else "xmpp", target.host,
                                  target.tls_port if direct_tls else target.starttls_port)
        args = dict(name=name, service=service, domain=target.domain, username=user,
                    password=PASSWORDS[user] if password is None else password, resource=resource,
                    userAgentId=user_agent, token=token)
        if sm_id:
            args.update(smId=sm_id, smInbound=sm_inbound)
        if csi:
            args.update(csi=csi)  # "active" | "inactive", inline in Bind2
        return self.call("start", timeout=timeout, **args)

    def trace(self, name, since=0):
        return Trace(self.call("trace", name=name, since=since)["log"])

    def state(self, name):
        return self.call("state", name=name)

    def send(self, name, xml_text):
        return self.call("send", name=name, xml=xml_text)

    def messages(self, name):
        return [parse_el(x) for x in self.call("messages", name=name)["messages"]]

    def wait_message(self, name, body, timeout=5.0):
        r = self.call("wait_message", timeout=timeout, name=name, body=body)
        return parse_el(r["message"]), r["count"]

    def stop(self, name, timeout=3.0):
        return self.call("stop", timeout=timeout, name=name)

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("exit", timeout=4.0)
            except DriverError:
                pass
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
