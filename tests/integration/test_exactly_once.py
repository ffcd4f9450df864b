"""Sent messages exactly once, whatever the client does (issue 9).

alice sends through the proxy (`target`; S2_TARGET=direct: the upstream itself, the baseline); bob
listens DIRECTLY on the upstream and counts every body. Every body starts with a tag unique to the
test run and the message ("x9-<run>-<case>-<n>"), so each can be counted at bob: exactly once is
"every tag seen, none twice", after a quiet period that would show late duplicates.

  1. one slixmpp session sends 20 messages all with id='1' (no origin-id); a new session of the same
     device sends 20 more with ids '1'..'20': bob gets all 40 once, alice's MAM lists them once
  2. 20 send-and-close runs of go-sendxmpp
  3. 20 raw clients: login, one message, close the TCP socket right after the last byte
  4. burst: 5,000 messages (1,000 on ejabberd: see burst_size) of ~2 KB from one SM-enabled raw
     session; carol's round trips through the proxy during the burst (ping to the server, message to
     an echo account directly upstream) stay under 50 ms; bob live and bob's upstream MAM have each
     once; no stream error for the sender, every message acked, no `anchor.down` in the proxy's log
  5. kill -9 of the proxy during an SM-enabled burst of 1,000 (own proxy instance; skipped with
     S2_TARGET=direct): the client resends what the proxy did not acknowledge (same id and body, new
     session after a failed resume); bob ends with each once, none of the acknowledged missing
  6. a message routed upstream whose ack was lost is held across a kill -9; its archive search after
     the restart gets no answer (network cut) while the device is back: searched again, not resent

bob, alice's burst sender and carol are raw socket clients (rawxmpp.py): counting 5,000 2 KB
stanzas in slixmpp would measure Python, not the proxy. carol's round trips are timed in a separate
process (this file run as a script) so that bob's parsing does not delay them.
"""
import collections
import json
import os
import select
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rawxmpp import NS_STREAM, RawXMPP, XMPPClosed, XMPPTimeout, local, q  # noqa: E402

NS_CLIENT = "jabber:client"
NS_SM = "urn:xmpp:sm:3"
NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_FORWARD = "urn:xmpp:forward:0"
NS_PING = "urn:xmpp:ping"
PASSWORDS = {"alice": "alicepw", "bob": "bobpw", "carol": "carolpw"}
GO_SENDXMPP = shutil.which("go-sendxmpp")
QUIET = 5.0  # seconds of waiting after the last expected message, for late duplicates


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def tag_of(body):
    """The unique tag a test put at the start of a body (go-sendxmpp may add a newline)."""
    return (body or "").strip().split(" ", 1)[0]


def msg(to, body, mid):
    return "<message to=%s type='chat' id=%s><body>%s</body></message>" % (quoteattr(to), quoteattr(mid),
                                                                          escape(body))


def pad(tag, size):
    return tag + " " + ("0123456789abcdef" * (size // 16 + 1))[:max(0, size - len(tag) - 1)]


# ---- raw client that keeps memory flat, reads without blocking and speaks XEP-0198 --------------
class Raw(RawXMPP):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.log = collections.deque(maxlen=300)  # transcript tail only: a burst is 10 MB
        self.h_in = 0  # stanzas received since <enabled/> (XEP-0198 inbound counter)
        self.acked = 0  # highest <a h/> from the server
        self.sm = False
        self.stream_errors = []  # <stream:error/> elements seen while processing
        self.received = []  # other top-level elements seen while processing

    def _new_parser(self):
        super()._new_parser()
        self._root = None

    def _feed(self, data):
        # rawxmpp's _feed, but complete children are taken off the stream root (no 10 MB tree)
        if not self.got_header and self.depth == 0:
            stripped = data.lstrip()
            if stripped.startswith(b"<stream:error") or stripped.startswith(b"</stream:stream"):
                self.parser.feed(b"<stream:stream xmlns:stream='%s' xmlns='jabber:client' s2it-synthetic='1'>"
                                 % NS_STREAM.encode())
        self.parser.feed(data)
        for ev, el in self.parser.read_events():
            if ev == "start":
                self.depth += 1
                if self.depth == 1:
                    if el.get("s2it-synthetic") is None:
                        self.got_header = True
                    self.stream_attrs = dict(el.attrib)
                    self._root = el
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.pending.append(el)
                    try:
                        self._root.remove(el)
                    except (ValueError, AttributeError):
                        pass
                elif self.depth == 0:
                    self.close_tag = True

    def recv_nowait(self):
        """Feed whatever is readable now, without blocking. False once the peer has closed."""
        while not self.closed:
            if not (self.tls and self.sock.pending()) and not select.select([self.sock], [], [], 0)[0]:
                return True
            self._recv_some(time.monotonic() + 0.2)
        return False

    def process(self, on_other=None):
        """Handle queued elements: acks, ack requests, stream errors, iqs from the server."""
        while self.pending:
            el = self.pending.pop(0)
            if el.tag == q(NS_SM, "a"):
                self.acked = max(self.acked, int(el.get("h")))
            elif el.tag == q(NS_SM, "r"):
                self.send("<a xmlns='%s' h='%d'/>" % (NS_SM, self.h_in))
            elif el.tag == q(NS_STREAM, "error"):
                self.stream_errors.append(ET.tostring(el).decode())
            else:
                if local(el.tag) in ("message", "presence", "iq"):
                    self.h_in += 1
                    if local(el.tag) == "iq" and el.get("type") in ("get", "set"):
                        self.send("<iq type='result' id=%s to=%s/>" % (quoteattr(el.get("id") or ""),
                                                                     quoteattr(el.get("from") or self.domain)))
                if on_other:
                    on_other(el)

    def sendall_slow(self, data, timeout=120.0):
        """sendall that may wait for the peer's backpressure (rawxmpp's reads set short timeouts)."""
        self.sock.settimeout(timeout)
        self.send(data)

    def enable_sm(self, resume=True):
        self.send("<enable xmlns='%s'%s/>" % (NS_SM, " resume='true'" if resume else ""))
        el = self.wait_for(lambda e: e.tag in (q(NS_SM, "enabled"), q(NS_SM, "failed")), 15, "<enabled/>")
        assert el.tag == q(NS_SM, "enabled"), "SM refused: %s" % ET.tostring(el).decode()
        self.sm = True
        self.h_in = 0
        self.acked = 0
        return el.get("id")

    def wait_acked(self, n, timeout):
        """Ask for acks until the server has acknowledged n stanzas (or the deadline passes)."""
        end = time.monotonic() + timeout
        last_r = 0.0
        while self.acked < n and time.monotonic() < end and not self.closed and not self.stream_errors:
            if time.monotonic() - last_r > 1.0:
                self.send("<r xmlns='%s'/>" % NS_SM)
                last_r = time.monotonic()
            try:
                self._recv_some(min(end, time.monotonic() + 0.2))
            except XMPPTimeout:
                break
            self.process()
        return self.acked


def login(target, user, resource, timeout=15.0):
    c = Raw.connect(target.host, target.starttls_port, target.domain, timeout=timeout)
    c.login(user, PASSWORDS[user], resource)
    return c


def mam_tags(c, prefix, with_jid=None, start=None, page=250, timeout=60.0):
    """Pages the archive of the logged-in account (raw); returns the tags (with `prefix`) of every
    archived message, in archive order."""
    tags, after = [], None
    end = time.monotonic() + timeout
    for _ in range(1000):
        qid = "q" + uuid.uuid4().hex[:8]
        iid = "mam-" + uuid.uuid4().hex[:8]
        fields = ""
        if with_jid:
            fields += "<field var='with'><value>%s</value></field>" % with_jid
        if start:
            fields += "<field var='start'><value>%s</value></field>" % start
        rsm = "<max>%d</max>%s" % (page, "<after>%s</after>" % escape(after) if after else "")
        c.send("<iq type='set' id='%s'><query xmlns='%s' queryid='%s'><x xmlns='jabber:x:data' type='submit'>"
               "<field var='FORM_TYPE' type='hidden'><value>%s</value></field>%s</x><set xmlns='%s'>%s</set>"
               "</query></iq>" % (iid, NS_MAM, qid, NS_MAM, fields, NS_RSM, rsm))
        n_page = 0
        while True:
            el = c.next_element(timeout=max(0.1, end - time.monotonic()))
            if local(el.tag) == "message":
                r = el.find(q(NS_MAM, "result"))
                if r is not None and r.get("queryid") == qid:
                    m = r.find("%s/%s" % (q(NS_FORWARD, "forwarded"), q(NS_CLIENT, "message")))
                    b = m.findtext(q(NS_CLIENT, "body")) if m is not None else None
                    n_page += 1
                    if b and tag_of(b).startswith(prefix):
                        tags.append(tag_of(b))
            elif local(el.tag) == "iq" and el.get("id") == iid:
                break
        assert el.get("type") == "result", "MAM query failed: %s" % ET.tostring(el).decode()[:500]
        fin = el.find(q(NS_MAM, "fin"))
        assert fin is not None, ET.tostring(el).decode()[:500]
        last = fin.find("%s/%s" % (q(NS_RSM, "set"), q(NS_RSM, "last")))
        if fin.get("complete") in ("true", "1") or n_page == 0 or last is None:
            return tags
        after = last.text
    raise AssertionError("MAM paging did not end")


# ---- bob: a direct upstream session counting tags ------------------------------------------------
class Receiver(threading.Thread):
    """bob (or anyone) logged in DIRECTLY to the upstream, available, counting message tags."""

    def __init__(self, target, user, prefix):
        super().__init__(daemon=True)
        self.target, self.user, self.prefix = target, user, prefix
        self.resource = "x9-" + uuid.uuid4().hex[:6]
        self.bare = target.jid(user)
        self.counts = collections.Counter()
        self.first_seen = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.stop_ev = threading.Event()
        self.error = None
        self.other_types = collections.Counter()  # e.g. error bounces with our tags

    def __enter__(self):
        self.start()
        if not self.ready.wait(30) or self.error:
            self.stop()
            raise AssertionError("%s could not log in directly upstream: %s" % (self.user, self.error))
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stop_ev.set()
        self.join(10)

    def run(self):
        c = None
        try:
            c = login(self.target, self.user, self.resource)
            c.send("<presence/>")
            c.send("<iq type='get' id='ready' to='%s'><ping xmlns='%s'/></iq>" % (self.target.domain, NS_PING))
            c.wait_for(lambda e: local(e.tag) == "iq" and e.get("id") == "ready", 15, "ping result")
            self.ready.set()
            while not self.stop_ev.is_set():
                try:
                    c._recv_some(time.monotonic() + 0.3)
                except XMPPTimeout:
                    pass
                c.process(self._on)
                if c.closed or c.stream_errors:
                    raise XMPPClosed("%s's stream ended: %s" % (self.user, c.stream_errors or "closed"))
        except Exception as e:  # reported by the test
            self.error = "%s: %s" % (type(e).__name__, e)
            self.ready.set()
        finally:
            if c is not None:
                try:
                    c.send("</stream:stream>")
                except OSError:
                    pass
                c.close()

    def _on(self, el):
        if local(el.tag) != "message":
            return
        t = tag_of(el.findtext(q(NS_CLIENT, "body")))
        if not t.startswith(self.prefix):
            return
        with self.lock:
            if el.get("type") == "error":
                self.other_types[t] += 1
                return
            self.counts[t] += 1
            self.first_seen.setdefault(t, time.monotonic())

    def snapshot(self):
        with self.lock:
            return collections.Counter(self.counts)

    def wait_all(self, want, timeout, give_up=None):
        """Until every tag in `want` was seen (or the deadline, or give_up() says no progress can come)."""
        want = set(want)
        end = time.monotonic() + timeout
        last_n, last_change = -1, time.monotonic()
        while time.monotonic() < end:
            got = self.snapshot()
            n = len(want & set(got))
            if n == len(want):
                return True
            if n != last_n:
                last_n, last_change = n, time.monotonic()
            if give_up is not None and give_up(time.monotonic() - last_change):
                return False
            if self.error:
                return False
            time.sleep(0.1)
        return False


def verdict(counts, want, extra_ok=()):
    """(missing, duplicated, strangers) for a Counter of tags against the wanted list."""
    want = list(want)
    missing = [t for t in want if counts.get(t, 0) == 0]
    dup = {t: c for t, c in counts.items() if c > 1}
    strangers = sorted(t for t in counts if t not in set(want) and t not in set(extra_ok))
    return missing, dup, strangers


def exactly_once_problem(counts, want, what, extra=""):
    """None if every wanted tag was counted once and nothing else was; else a description."""
    missing, dup, strangers = verdict(counts, want)
    total = sum(counts.values())
    summary = ("%s: want %d distinct, each once; got %d message(s), %d distinct, %d missing, %d duplicated "
               "(%d extra copies), %d unexpected" % (what, len(want), total, len(counts), len(missing), len(dup),
                                                    sum(c - 1 for c in dup.values()), len(strangers)))
    print(summary)
    if not missing and not dup and not strangers:
        return None
    return "%s\n  missing (first 10): %s\n  duplicated (first 10): %s\n  unexpected (first 10): %s%s" % (
        summary, missing[:10], sorted(dup.items())[:10], strangers[:10], extra)


def assert_exactly_once(counts, want, what, extra=""):
    problem = exactly_once_problem(counts, want, what, extra)
    assert problem is None, problem


def log_events(text, keys=("anchor.down", "client.stream_error", "upstream.stream_error", "hub.outbox_given_up",
                           "hub.send_not_archived", "hub.outbox_resend", "sm_queue_full", "drain")):
    """{event: (count, first line)} for the proxy log lines of note (warn/error, or a key above)."""
    out = {}
    for ln in text.splitlines():
        parts = ln.split(" ", 3)
        if len(parts) < 3:
            continue
        if parts[1] in ("warn", "error") or any(k in parts[2] for k in keys):
            n, first = out.get(parts[2], (0, ln))
            out[parts[2]] = (n + 1, first)
    return out


def describe_events(ev):
    return "".join("\n    %dx %s" % (n, first[:300]) for _, (n, first) in sorted(ev.items())) or " none"


# =================================================================================================
def test_same_stanza_id_every_message_and_after_reconnect(target, upstream_target):
    """1. 20 messages all with id='1' (no origin-id) from one slixmpp session, then a new session of
    the same device with ids '1'..'20' again: bob gets all 40, each once; alice's MAM lists each once."""
    from xmppclient import run_async

    run = uuid.uuid4().hex[:6]
    prefix = "x9-%s-id" % run
    first = ["%s-a%02d" % (prefix, i) for i in range(20)]
    second = ["%s-b%02d" % (prefix, i) for i in range(20)]
    t_start = time.time()
    resource = "same-id-" + run

    with Receiver(upstream_target, "bob", prefix) as bob:
        async def body(pool):
            alice = await pool.connect(target, "alice", resource)
            for tag in first:
                alice.send_xml("<message xmlns='jabber:client' to='%s' type='chat' id='1'><body>%s</body></message>"
                               % (bob.bare, tag))
            await alice.disconnect()
            alice2 = await pool.connect(target, "alice", resource)
            for i, tag in enumerate(second):
                alice2.send_xml("<message xmlns='jabber:client' to='%s' type='chat' id='%d'><body>%s</body>"
                                "</message>" % (bob.bare, i + 1, tag))
            await alice2.disconnect()

        run_async(body, 60)
        bob.wait_all(first + second, 20)
        time.sleep(QUIET)
        counts = bob.snapshot()
    assert not bob.error, bob.error
    m1, d1, _ = verdict(counts, first)
    m2, d2, _ = verdict(counts, second)
    detail = "\n  first session (all id='1'): %d/20 arrived, %d duplicated; second session (ids 1..20): " \
             "%d/20 arrived, %d duplicated" % (20 - len(m1), len(d1), 20 - len(m2), len(d2))
    problems = [exactly_once_problem(counts, first + second, "bob (direct)", detail)]
    with login(target, "alice", "mam-" + run) as c:
        tags = mam_tags(c, prefix, with_jid=upstream_target.jid("bob"), start=iso(t_start - 5), page=100)
    problems.append(exactly_once_problem(collections.Counter(tags), first + second,
                                         "alice's MAM via %s" % target.name))
    problems = [x for x in problems if x]
    assert not problems, "\n".join(problems)


# -------------------------------------------------------------------------------------------------
def test_go_sendxmpp_send_and_close_20_times(target, upstream_target):
    """2. go-sendxmpp (login, one message, close) 20 times: bob gets 20 distinct bodies, each once."""
    import pytest
    if GO_SENDXMPP is None:
        pytest.skip("go-sendxmpp not installed (apt-get install go-sendxmpp)")
    run = uuid.uuid4().hex[:6]
    prefix = "x9-%s-go" % run
    want = ["%s-%02d" % (prefix, i) for i in range(20)]
    with Receiver(upstream_target, "bob", prefix) as bob:
        for tag in want:
            argv = [GO_SENDXMPP, "-u", target.jid("alice"), "-p", PASSWORDS["alice"],
                    "-j", "%s:%d" % (target.host, target.starttls_port), "-n", "--timeout", "10", bob.bare]
            r = subprocess.run(argv, input=tag + " from go-sendxmpp\n", capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, "go-sendxmpp failed for %s (rc=%d):\nstdout: %s\nstderr: %s" % (
                tag, r.returncode, r.stdout, r.stderr)
        bob.wait_all(want, 20)
        time.sleep(QUIET)
        counts = bob.snapshot()
    assert not bob.error, bob.error
    assert_exactly_once(counts, want, "bob (direct) after 20 go-sendxmpp runs")


# -------------------------------------------------------------------------------------------------
def test_raw_send_and_close_20_times(target, upstream_target):
    """3. A raw client logs in, sends one message and closes TCP right after its last byte (no TLS
    close_notify, no waiting; every other run with </stream:stream> in the same write), 20 times:
    bob gets each once."""
    run = uuid.uuid4().hex[:6]
    prefix = "x9-%s-raw" % run
    want = ["%s-%02d" % (prefix, i) for i in range(20)]
    with Receiver(upstream_target, "bob", prefix) as bob:
        for i, tag in enumerate(want):
            c = login(target, "alice", "raw-%s-%02d" % (run, i))
            # odd runs end the stream in the same write, even runs just vanish
            c.send(msg(bob.bare, tag + " send and close", "raw-%s-%02d" % (run, i)) +
                   ("</stream:stream>" if i % 2 else ""))
            c.sock.close()  # no unwrap: the TCP FIN right after the last TLS record
        bob.wait_all(want, 20)
        time.sleep(QUIET)
        counts = bob.snapshot()
    assert not bob.error, bob.error
    assert_exactly_once(counts, want, "bob (direct) after 20 raw send-and-close runs")


# -------------------------------------------------------------------------------------------------
PROBE_GAP = 0.02


ECHO_USER, ECHO_PW = "x9echo", "x9echopw"


def echo_bot(host, port, domain, ready, stop):
    """An echo account of its own (in-band registered on the upstream, which the test beds allow from
    loopback), directly upstream: answers every 'echo-N' message at once. Not bob: the burst makes
    bob's archive big, and ejabberd's mnesia MAM slows down with the size of the recipient's archive."""
    c = Raw.connect(host, port, domain, timeout=15)
    c.secure_stream()
    c.send("<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>%s</username>"
           "<password>%s</password></query></iq>" % (ECHO_USER, ECHO_PW))
    c.wait_for(lambda e: local(e.tag) == "iq" and e.get("id") == "reg", 15, "registration result")  # or conflict
    res, cond, text, _ = c.auth_plain(ECHO_USER, ECHO_PW)
    if res != "success":
        raise AssertionError("echo account login failed: %s %r" % (cond, text))
    c.open_stream()
    c.read_features()
    ready.append(c.bind("echo-" + uuid.uuid4().hex[:6]))

    def answer(el):
        b = el.findtext(q(NS_CLIENT, "body")) or ""
        if local(el.tag) == "message" and b.startswith("echo-") and el.get("type") != "error":
            c.send(msg(el.get("from"), b + " back", (el.get("id") or "") + "-back"))

    while not stop:
        try:
            c._recv_some(time.monotonic() + 0.3)
        except XMPPTimeout:
            pass
        c.process(answer)
        if c.closed:
            break
    c.close()


def probe_main(argv):
    """Run as a script: carol (through `host:port`) measures round trips until `stopfile` exists:
    ping = an iq ping to the server; echo = a chat message to an echo account that sits
    directly on the upstream (`up_host:up_port`) and answers at once. Prints 'ready', then one JSON
    line {"samples": [[t_send, kind, rtt or null], ...], "error": ...}."""
    host, port, domain, up_host, up_port, stopfile, max_s = (argv[0], int(argv[1]), argv[2], argv[3], int(argv[4]),
                                                             argv[5], float(argv[6]))
    bot_ready, bot_stop = [], []
    bot = threading.Thread(target=echo_bot, args=(up_host, up_port, domain, bot_ready, bot_stop), daemon=True)
    bot.start()
    c = Raw.connect(host, port, domain, timeout=15)
    c.login("carol", PASSWORDS["carol"], "probe-" + uuid.uuid4().hex[:6])
    c.send("<presence/>")
    c.send("<iq type='get' id='warm' to='%s'><ping xmlns='%s'/></iq>" % (domain, NS_PING))
    c.wait_for(lambda e: e.get("id") == "warm", 15, "first ping")
    end = time.monotonic() + 15
    while not bot_ready and time.monotonic() < end:
        time.sleep(0.05)
    bot_jid = bot_ready[0]
    # one echo before starting: both sessions are up and the path works
    c.send(msg(bot_jid, "echo-0 probe", "echo-0"))
    c.wait_for(lambda e: local(e.tag) == "message" and e.findtext(q(NS_CLIENT, "body")) == "echo-0 probe back",
               15, "the first echo")
    print("ready", flush=True)
    out = []
    end = time.monotonic() + max_s
    seq = 0
    error = None
    while not os.path.exists(stopfile) and time.monotonic() < end:
        seq += 1
        kind = "ping" if seq % 2 else "echo"
        if kind == "ping":
            rid = "ping-%d" % seq
            data = "<iq type='get' id='%s' to='%s'><ping xmlns='%s'/></iq>" % (rid, domain, NS_PING)
            pred = lambda e, rid=rid: local(e.tag) == "iq" and e.get("id") == rid  # noqa: E731
        else:
            text = "echo-%d probe" % seq
            data = msg(bot_jid, text, "echo-%d" % seq)
            pred = lambda e, text=text: (local(e.tag) == "message" and  # noqa: E731
                                         e.findtext(q(NS_CLIENT, "body")) == text + " back")
        t0 = time.monotonic()
        try:
            c.send(data)
            c.wait_for(pred, 5.0, kind)
            out.append((t0, kind, time.monotonic() - t0))
        except XMPPTimeout:
            out.append((t0, kind, None))
        except Exception as e:
            error = "%s: %s" % (type(e).__name__, e)
            break
        time.sleep(PROBE_GAP)
    bot_stop.append(True)
    print(json.dumps({"samples": out, "error": error}), flush=True)
    c.close()
    bot.join(2)


class Probe:
    def __init__(self, target, upstream, max_s=300):
        self.stopfile = os.path.join(tempfile.mkdtemp(prefix="s2it-x9-"), "stop")
        self.p = subprocess.Popen([sys.executable, __file__, "probe", target.host, str(target.starttls_port),
                                   target.domain, upstream.host, str(upstream.starttls_port), self.stopfile,
                                   str(max_s)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = select.select([self.p.stdout], [], [], 40)[0]
        line = self.p.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.p.kill()
            raise AssertionError("carol's probe did not start: %r %s" % (line, self.p.stderr.read()[-2000:]))

    def finish(self):
        Path(self.stopfile).touch()
        try:
            out, err = self.p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
        shutil.rmtree(os.path.dirname(self.stopfile), ignore_errors=True)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        assert lines, "carol's probe printed nothing: %s" % err[-2000:]
        return json.loads(lines[-1])


def burst_size(kind):
    """5,000 (the issue's number) on Prosody. ejabberd 23 with the test bed's mnesia MAM backend keeps
    each user's archive under one dets bag key, so every insert gets slower as the archive grows: the
    upstream alone (S2_TARGET=direct) takes ~250 msg/s at first and ~25 msg/s after 3,000 (3,849 of
    5,000 within 180 s); there the burst is 1,000. S2_X9_BURST overrides."""
    if os.environ.get("S2_X9_BURST"):
        return int(os.environ["S2_X9_BURST"])
    return 1000 if kind == "ejabberd" else 5000


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def test_burst_5000_exactly_once_and_responsive(target, upstream_target):
    """4. 5,000 messages (ejabberd: 1,000) of ~2 KB written as fast as the socket takes them, from one
    SM-enabled session; bob online directly. Each reaches bob once, and once in bob's upstream archive;
    the sender's stream is never ended and every message is acknowledged; carol's round trips through
    the proxy (ping to the server; chat message to an echo account, not asserted on ejabberd) have
    median and p95 < 50 ms meanwhile; the proxy's anchor never goes down."""
    n, size = burst_size(upstream_target.kind), 2048
    run = uuid.uuid4().hex[:6]
    prefix = "x9-%s-burst" % run
    want = ["%s-%04d" % (prefix, i) for i in range(n)]
    t_wall = time.time()
    proc = getattr(target, "proc", None)
    deadline = time.monotonic() + 180
    with Receiver(upstream_target, "bob", prefix) as bob:
        stanzas = [msg(bob.bare, pad(tag, size), "b-%s-%04d" % (run, i)) for i, tag in enumerate(want)]
        alice = login(target, "alice", "burst-" + run)
        alice.enable_sm(resume=False)
        probe = Probe(target, upstream_target)
        mark = proc.log_size() if proc is not None else 0
        sender = {"sent": 0, "error": None, "t_sent": None, "acked_at": None}

        def send_burst():
            try:
                batch = 16
                for i in range(0, n, batch):
                    alice.sendall_slow("".join(stanzas[i:i + batch]))
                    sender["sent"] = min(n, i + batch)
                    alice.recv_nowait()
                    alice.process()
                    if alice.stream_errors or alice.closed:
                        break
                sender["t_sent"] = time.monotonic()
                alice.wait_acked(n, max(1.0, deadline - time.monotonic()))
                if alice.acked >= n:
                    sender["acked_at"] = time.monotonic()
            except Exception as e:
                sender["error"] = "%s: %s" % (type(e).__name__, e)

        t0 = time.monotonic()
        th = threading.Thread(target=send_burst, daemon=True)
        th.start()
        dead = lambda: bool(sender["error"] or alice.stream_errors or alice.closed)  # noqa: E731
        complete = bob.wait_all(want, max(1.0, deadline - time.monotonic()),
                                give_up=lambda idle: dead() and idle > 20)
        t_done = time.monotonic()
        probe_res = probe.finish()
        th.join(max(1.0, deadline - time.monotonic()))
        time.sleep(QUIET)
        counts = bob.snapshot()
        # the sender's session: still up, no stream error, nothing bounced
        alice.recv_nowait()
        alice.process()
        alice_state = dict(sent=sender["sent"], acked=alice.acked, error=sender["error"],
                           stream_errors=alice.stream_errors, closed=alice.closed, eof=alice.eof,
                           reset=alice.reset, bounced=sum(bob.other_types.values()))
        try:
            alice.send("</stream:stream>")
        except OSError:
            pass
        alice.close()
        log = proc.log_since(mark, max_lines=10 ** 7) if proc is not None else ""

    elapsed = t_done - t0
    print("burst: %d x %d B, bob complete=%s after %.1fs (sent all at %s, acked all at %s); sender %s" % (
        n, size, complete, elapsed,
        "%.1fs" % (sender["t_sent"] - t0) if sender["t_sent"] else "never",
        "%.1fs" % (sender["acked_at"] - t0) if sender["acked_at"] else "never", alice_state))
    # round trips while the burst was in flight
    samples = [s for s in probe_res["samples"] if t0 <= s[0] <= t_done]
    rtt = {}
    for kind in ("ping", "echo"):
        xs = [(s[2] if s[2] is not None else 5.0) * 1000 for s in samples if s[1] == kind]
        if xs:
            rtt[kind] = dict(n=len(xs), median=round(statistics.median(xs), 1), p95=round(pct(xs, 95), 1),
                             max=round(max(xs), 1), lost=sum(1 for s in samples if s[1] == kind and s[2] is None))
    print("carol's round trips during the burst (ms): %s; probe error: %s" % (rtt, probe_res["error"]))
    events = log_events(log)
    print("proxy log events during the burst:%s" % describe_events(events))

    assert not bob.error, bob.error
    problems = [exactly_once_problem(counts, want, "bob (direct, live) after the burst",
                                     "\n  sender: %s" % alice_state)]
    if alice_state["stream_errors"] or alice_state["closed"] or alice_state["error"]:
        problems.append("the sender's stream was ended: %s" % alice_state)
    if alice_state["acked"] < n:
        problems.append("the sender got acks for %d of %d" % (alice_state["acked"], n))
    if "anchor.down" in events:
        problems.append("anchor.down during the burst (%d times): %s" % events["anchor.down"])
    with login(upstream_target, "bob", "mam-" + run) as c:
        tags = mam_tags(c, prefix, with_jid=target.jid("alice"), start=iso(t_wall - 5), page=250, timeout=120)
    problems.append(exactly_once_problem(collections.Counter(tags), want, "bob's upstream MAM archive"))
    if probe_res["error"] is not None:
        problems.append("carol's probe failed: %s" % probe_res["error"])
    for kind in ("ping", "echo"):
        if kind not in rtt or rtt[kind]["n"] < 5:
            problems.append("too few %s round trips measured: %s" % (kind, rtt))
        elif os.environ.get("S2_SANITIZED") == "1":
            # ASan + UBSan build: several times slower per stanza by design; the latency goal is the
            # release build's (CTest sets S2_SANITIZED). Exactly-once above is asserted in both.
            print("sanitizer build: %s round trips reported, not asserted" % kind)
        elif kind == "echo" and upstream_target.kind == "ejabberd":
            # an archived message's round trip on ejabberd is its own mnesia MAM's: the upstream alone
            # (S2_TARGET=direct) measures median ~90 ms, p95 ~200 ms during the 1,000 burst. Reported only.
            print("ejabberd: echo round trips not asserted (upstream-bound)")
        elif rtt[kind]["median"] >= 50 or rtt[kind]["p95"] >= 50:
            problems.append("carol's %s round trips through %s during the burst: %s (want median and p95 < 50 ms)"
                            % (kind, target.name, rtt[kind]))
    problems = [x for x in problems if x]
    assert not problems, "\n".join(problems) + "\n  proxy log events during the burst:" + describe_events(events)


# -------------------------------------------------------------------------------------------------
def test_kill9_during_sm_burst_resend_unacked(proxy_factory, upstream_target):
    """5. kill -9 of the proxy while alice (raw, XEP-0198) writes 1,000 messages of 2 KB; after the
    restart the client tries to resume, else binds a new session and resends, with the same id and
    body, every message the proxy had not acknowledged. bob ends with each exactly once and none of
    the acknowledged ones missing."""
    p = proxy_factory.start()
    t = p.target()
    n, size = 1000, 2048
    run = uuid.uuid4().hex[:6]
    prefix = "x9-%s-kill" % run
    want = ["%s-%04d" % (prefix, i) for i in range(n)]
    resource = "kill-" + run

    # alice's vault entry and anchor first (one PLAIN login)
    with login(t, "alice", "warm-" + run) as c:
        c.send("<presence/>")
        poll_until(lambda: "anchor.ready" in p.log_text(), 15)
    assert "anchor.ready" in p.log_text(), "alice's anchor did not come up"

    with Receiver(upstream_target, "bob", prefix) as bob:
        stanzas = [msg(bob.bare, pad(tag, size), "k-%s-%04d" % (run, i)) for i, tag in enumerate(want)]
        c = login(t, "alice", resource)
        previd = c.enable_sm(resume=True)
        written = 0
        killed_at = None

        def write(i):
            c.sendall_slow(stanzas[i], timeout=30)
            if (i + 1) % 25 == 0:
                c.send("<r xmlns='%s'/>" % NS_SM)
            c.recv_nowait()
            c.process()

        try:
            # 300 written and some acknowledged; then 100 more, and the kill comes the moment the
            # proxy acknowledges one of those: it has just committed them and sent them upstream, the
            # upstream has not acknowledged them yet, and the rest is unread or uncommitted
            for i in range(300):
                write(i)
            c.wait_acked(100, 30)
            for i in range(300, 400):
                write(i)
            end = time.monotonic() + 30
            while c.acked <= 300 and time.monotonic() < end and not c.closed and not c.stream_errors:
                c.send("<r xmlns='%s'/>" % NS_SM)
                try:
                    c._recv_some(time.monotonic() + 0.02)
                except XMPPTimeout:
                    pass
                c.process()
            written = 400
            killed_at = (written, c.acked)
            p.kill9()
        except (OSError, ssl.SSLError, XMPPClosed) as e:
            raise AssertionError("the proxy's stream broke before the kill: %s" % e)
        assert killed_at[1] > 0, "the proxy acknowledged none of 400 messages within 60 s: %s" % (
            c.stream_errors or c.transcript(2000))
        # what the dead proxy had acknowledged and the kernel still holds for us
        end = time.monotonic() + 2
        while not c.closed and time.monotonic() < end:
            try:
                c._recv_some(min(end, time.monotonic() + 0.2))
            except XMPPTimeout:
                break
            except ET.ParseError:
                break
            c.process()
        acked = c.acked
        h_in = c.h_in
        c.close()
        time.sleep(0.3)
        p.restart()

        # reconnect: try to resume; the proxy's resumption state died with it, so expect <failed/>
        c2 = Raw.connect(t.host, t.starttls_port, t.domain, timeout=15)
        c2.secure_stream()
        res, cond, text, _ = c2.auth_plain("alice", PASSWORDS["alice"])
        assert res == "success", "login after the restart: %s %r" % (cond, text)
        c2.open_stream()
        c2.read_features()
        how = "no previd"
        if previd:
            c2.send("<resume xmlns='%s' previd=%s h='%d'/>" % (NS_SM, quoteattr(previd), h_in))
            try:
                el = c2.wait_for(lambda e: e.tag in (q(NS_SM, "resumed"), q(NS_SM, "failed")), 15,
                                 "<resumed/>|<failed/>")
            except (XMPPClosed, XMPPTimeout) as e:
                raise AssertionError("resume attempt after the restart: %s\n%s" % (e, c2.transcript()))
            how = local(el.tag)
            if el.get("h") is not None:
                acked = max(acked, int(el.get("h")))
        base = acked
        if how == "resumed":
            base_h = acked  # XEP-0198: the resumed session's counter goes on from h
            c2.sm, c2.h_in, c2.acked = True, h_in, acked
        else:
            c2.bind(resource)
            c2.enable_sm(resume=False)
            base_h = 0
        resend = list(range(acked, n))
        for j, i in enumerate(resend):
            c2.sendall_slow(stanzas[i], timeout=60)
            if j % 50 == 49:
                c2.send("<r xmlns='%s'/>" % NS_SM)
            c2.recv_nowait()
            c2.process()
        c2.wait_acked(base_h + len(resend), 90)
        resent_acked = c2.acked - base_h
        state = dict(written_before_kill=killed_at and killed_at[0], acked_before_kill=killed_at and killed_at[1],
                     acked_total_before_restart=base, resume=how, resent=len(resend), resent_acked=resent_acked,
                     stream_errors=c2.stream_errors, closed=c2.closed)
        bob.wait_all(want, 60, give_up=lambda idle: idle > 30)
        counts = quiet_counts_then_close(bob, c2)
    print("kill -9 burst: %s" % state)
    assert not bob.error, bob.error
    lost_acked = [want[i] for i in range(base) if counts.get(want[i], 0) == 0]
    assert not lost_acked, "%d messages the proxy had acknowledged never reached bob (first: %s); %s" % (
        len(lost_acked), lost_acked[:10], state)
    assert resent_acked >= len(resend), "the restarted proxy acknowledged %d of the %d resent: %s" % (
        resent_acked, len(resend), state)
    dup = [i for i, tag in enumerate(want) if counts.get(tag, 0) > 1]
    where = "\n  duplicated: %d among the %d acknowledged before the kill (indexes %s), %d among the %d the " \
            "client (re)sent after it (indexes %s)" % (
                sum(1 for i in dup if i < base), base, span([i for i in dup if i < base]),
                sum(1 for i in dup if i >= base), n - base, span([i for i in dup if i >= base]))
    assert_exactly_once(counts, want, "bob (direct) after kill -9 + resend of the unacknowledged",
                        "\n  client: %s%s" % (state, where))


def test_held_message_is_searched_again_when_the_search_gets_no_answer(proxy_factory, upstream,
                                                                         upstream_target):
    """6. A message the upstream routed but never acknowledged (its <a/> lost on the way back) is
    held in the outbox when the proxy is killed. After the restart the network to the upstream is
    cut the moment the anchor is ready: the anchor's archive search for the held message gets no
    answer, and the sending device comes back meanwhile (a carrier). A search without an answer is
    no evidence that the upstream lacks the message: the outbox searches again when the anchor is
    back instead of resending, so bob gets it once (CI's chaos run found the duplicate)."""
    from cutrelay import CutRelay
    relay = CutRelay(upstream.c2s).start()
    p = proxy_factory.start(opts={"upstream": "127.0.0.1:%d" % relay.port, "upstream-ping-interval": 5})
    t = p.target()
    run = uuid.uuid4().hex[:6]
    tag = "x9-%s-held" % run
    resource = "held-" + run
    try:
        with Receiver(upstream_target, "bob", "x9-" + run) as bob:
            c = login(t, "alice", resource)
            c.enable_sm(resume=False)
            c.send("<presence/>")
            assert poll_until(lambda: "anchor.ready" in p.log_text(), 15), "alice's anchor did not come up"
            # the upstream gets what the proxy sends; nothing it answers comes back
            relay.mute_replies = True
            c.send("<message to=%s type='chat' id='held-1'><body>%s</body>"
                   "<origin-id xmlns='urn:xmpp:sid:0' id='o-%s'/></message>" % (
                       quoteattr(bob.bare), escape(tag), run))
            c.send("<r xmlns='%s'/>" % NS_SM)
            c.wait_acked(1, 15)
            poll_until(lambda: bob.snapshot().get(tag, 0) > 0, 15)
            assert bob.snapshot().get(tag, 0) == 1, "the upstream never routed the message to bob"
            p.kill9()
            c.close()
            relay.mute_replies = False
            relay.reply_delay = 0.3  # the anchor's login takes seconds: time to cut after its ready
            mark = p.log_size()
            p.restart()
            assert poll_until(lambda: "anchor.ready" in p.log_since(mark, 100000), 30, step=0.02), \
                "the anchor did not come up after the restart"
            relay.cut()  # the anchor's connection goes silent: its catch-up and search get no answer
            relay.reply_delay = 0.0
            time.sleep(0.3)
            relay.heal()  # new connections work: the device's own link comes up
            c2 = login(t, "alice", resource)
            c2.send("<presence/>")
            # the anchor notices its silence (ping 5 s), comes back, and the held message is settled
            def back_and_caught_up():
                text = p.log_since(mark, 100000)
                return text.count("anchor.ready") >= 2 and "hub.catchup_finished" in text.split("anchor.down", 1)[-1]

            poll_until(back_and_caught_up, 60, step=0.2)
            text = p.log_since(mark, 100000)
            assert text.count("anchor.ready") >= 2, "the anchor never came back after the cut:\n%s" % text[-3000:]
            counts = quiet_counts_then_close(bob, c2)
        text = p.log_since(mark, 100000)
        assert "outbox.search_failed" in text, (
            "the held message's search was never cut off, so this test proved nothing:\n%s" % text[-4000:])
        assert counts.get(tag, 0) == 1, "bob got the held message %d times (once expected):\n%s" % (
            counts.get(tag, 0), "\n".join(ln for ln in text.splitlines() if "outbox." in ln or "anchor." in ln))
    finally:
        relay.stop()


def poll_until(pred, timeout, step=0.1):
    """pred() once it holds or `timeout` seconds passed: its last value either way."""
    end = time.monotonic() + timeout
    while not pred() and time.monotonic() < end:
        time.sleep(step)
    return pred()


def quiet_counts_then_close(bob, c):
    """bob's counts after QUIET seconds (a late duplicate would show by then); then `c` ends its
    stream."""
    time.sleep(QUIET)
    counts = bob.snapshot()
    try:
        c.send("</stream:stream>")
    except OSError:
        pass
    c.close()
    return counts


def span(xs):
    return "%d..%d" % (min(xs), max(xs)) if xs else "-"


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "probe":
    probe_main(sys.argv[2:])
