#!/usr/bin/python3
"""Time to a usable session over a 50 ms RTT path: legacy RFC 6120 login vs session2 through s2proxy.

    /usr/bin/python3 bench/login/bench_login.py [-n 15] [--rtt-ms 50] [--json out.json]

Starts a private Prosody 0.12 (test bed script, 127.0.0.1:55222/55223, state /tmp/s2bench-prosody)
and s2proxy (127.0.0.1:56222/56223, log level info) through tests/integration/harness.py, and four
delay relays (delay_relay.py, RTT 50 ms, TCP handshake modelled) in front of Prosody's and the
proxy's STARTTLS and direct-TLS ports (relays listen on free ports the kernel picks). Clients are raw, blocking sockets (tests/integration/rawxmpp.py
subclassed), TLS 1.3, certificates verified. Scenarios, each over STARTTLS and direct TLS (XEP-0368):

  a   legacy, straight to Prosody: stream, STARTTLS, SASL1 SCRAM-SHA-1, restart, iq bind, (session
      iq only if not optional), SM <enable/> -- slixmpp's order, each step waiting for its answer
  b   SASL2 PLAIN through s2proxy + Bind2 + inline SM enable + FAST <request-token/>
  c   FAST HT-SHA-256-NONE (token from b, same <user-agent id>) + Bind2 + inline SM enable
  d   SASL2 inline SM resume: FAST + <resume previd h/> (+ <bind/>) after the previous connection of
      that device was cut without </stream:stream>
  c+, d+  the same, pipelined like a client that cached the server's features (XEP-0305 style):
      stream header + <starttls/> in one write, and after TLS stream header + <authenticate/> in
      one write, without waiting for <stream:features/>

"after setup" starts when the client sends its auth element (after stream open, STARTTLS, TLS and
the stream restart); "from TCP connect" starts before connect() (the relay adds the SYN/SYN-ACK
round trip). End: SASL2 <success/> (with <bound/> / <resumed/>), or <enabled/> for legacy. Every
session is then checked with an XMPP ping (not timed). Runs are interleaved round-robin over the
scenarios after one warm-up round, so machine noise hits all of them alike.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import ssl
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import s2bench  # noqa: E402  (puts tests/integration on sys.path)
from delay_relay import DelayRelay  # noqa: E402
from rawxmpp import RawXMPP, local, ns_of, q  # noqa: E402

NS_STREAM = "http://etherx.jabber.org/streams"
NS_CLIENT = "jabber:client"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_SASL2 = "urn:xmpp:sasl:2"
NS_BIND2 = "urn:xmpp:bind:0"
NS_FAST = "urn:xmpp:fast:0"
NS_SM = "urn:xmpp:sm:3"
NS_PING = "urn:xmpp:ping"
HT = "HT-SHA-256-NONE"

DOMAIN = s2bench.DOMAIN
HOST = s2bench.HOST
STREAM_HDR = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
              "xmlns:stream='http://etherx.jabber.org/streams' to='%s'%s version='1.0'>")
STARTTLS = "<starttls xmlns='%s'/>" % NS_TLS
STANZAS = {q(NS_CLIENT, "message"), q(NS_CLIENT, "presence"), q(NS_CLIENT, "iq")}


def header(frm=None):
    return STREAM_HDR % (DOMAIN, " from=%s" % quoteattr(frm) if frm else "")


def b64(b):
    return base64.b64encode(b).decode()


def now():
    return time.perf_counter()


class BenchError(AssertionError):
    pass


# =====================================================================================================
# raw client
# =====================================================================================================
class Conn(RawXMPP):
    """rawxmpp.RawXMPP with time marks, a cached TLS 1.3 context, XEP-0198 counting and <r/> answers."""
    _contexts = {}

    def __init__(self, sock, port, cafile, tls13, t0):
        super().__init__(sock, DOMAIN, HOST, port, cafile=cafile, timeout=10.0)
        self.tls13 = tls13
        self.t0 = t0
        self.marks = []
        self.sm = False
        self.h_in = 0

    @classmethod
    def context(cls, cafile, tls13=True):
        key = (cafile, tls13)
        ctx = cls._contexts.get(key)
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies: CERT_REQUIRED, check_hostname
            ctx.load_verify_locations(cafile)
            if tls13:
                ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            cls._contexts[key] = ctx
        return ctx

    def _ssl_context(self):  # RawXMPP hook: reuse one context (loading a trust store costs ~20 ms)
        return self.context(self.cafile, self.tls13)

    def mark(self, name):
        self.marks.append((name, now()))

    def steps(self):
        out, prev = [], self.t0
        for name, t in self.marks:
            out.append((name, (t - prev) * 1000.0))
            prev = t
        return out

    def expect(self, pred, what, timeout=10.0):
        """Next element matching pred; answers <r/>, counts stanzas for SM on the way."""
        deadline = now() + timeout
        while True:
            el = self.wait_for(lambda e: True, max(0.01, deadline - now()), what)
            if el.tag == q(NS_SM, "r"):
                self.send("<a xmlns='%s' h='%d'/>" % (NS_SM, self.h_in))
                continue
            if el.tag in STANZAS and self.sm:
                self.h_in = (self.h_in + 1) & 0xFFFFFFFF
            if pred(el):
                return el

    def ping(self):
        pid = "ping-" + uuid.uuid4().hex[:8]
        self.send("<iq type='get' id='%s' to='%s'><ping xmlns='%s'/></iq>" % (pid, DOMAIN, NS_PING))
        el = self.expect(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == pid, "ping result", 5.0)
        if el.get("type") != "result":
            raise BenchError("ping failed: %s" % ET.tostring(el).decode())

    def close_stream(self):
        try:
            self.send("</stream:stream>")
            self.read_stream_end(3.0)
        except OSError:
            pass
        self.close()

    def cut(self):
        """End the TCP connection without </stream:stream> (and without TLS close_notify)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close()


def open_conn(port, cafile, direct_tls, tls13=True):
    t0 = now()
    s = socket.create_connection((HOST, port), timeout=10.0)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = Conn(s, port, cafile, tls13, t0)
    c.mark("tcp")
    if direct_tls:
        c._wrap_tls()
        c.mark("tls")
    return c


def starttls(c, pipelined):
    if pipelined:
        c._new_parser()
        c.send(header() + STARTTLS)
    else:
        c.open_stream(header=header())
        f = c.read_features()
        c.mark("features")
        if f.find(q(NS_TLS, "starttls")) is None:
            raise BenchError("no STARTTLS offered")
        c.send(STARTTLS)
    el = c.expect(lambda e: ns_of(e.tag) == NS_TLS, "<proceed/>")
    if local(el.tag) != "proceed":
        raise BenchError("STARTTLS refused")
    c.mark("starttls")
    c._wrap_tls()
    c.mark("tls")


# ---- SCRAM-SHA-1 (RFC 5802) for the legacy client -------------------------------------------------
class Scram:
    def __init__(self, user, password, hashname="sha1"):
        self.h = hashname
        self.password = password.encode()
        self.cnonce = b64(os.urandom(18))
        self.first_bare = "n=%s,r=%s" % (user, self.cnonce)
        self.server_signature = None

    def client_first(self):
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first):
        sf = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        if not attrs["r"].startswith(self.cnonce):
            raise BenchError("SCRAM nonce mismatch")
        salted = hashlib.pbkdf2_hmac(self.h, self.password, base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", self.h).digest()
        stored_key = hashlib.new(self.h, client_key).digest()
        without_proof = "c=biws,r=%s" % attrs["r"]
        auth_msg = ("%s,%s,%s" % (self.first_bare, sf, without_proof)).encode()
        proof = bytes(a ^ b for a, b in zip(client_key, hmac.new(stored_key, auth_msg, self.h).digest()))
        server_key = hmac.new(salted, b"Server Key", self.h).digest()
        self.server_signature = hmac.new(server_key, auth_msg, self.h).digest()
        return ("%s,p=%s" % (without_proof, b64(proof))).encode()

    def verify(self, server_final):
        if server_final.decode() != "v=" + b64(self.server_signature):
            raise BenchError("bad SCRAM server signature")


# =====================================================================================================
# login flows; each returns (conn, result dict) with the connection still open
# =====================================================================================================
def legacy_login(port, cafile, direct_tls, user="alice", password="alicepw", resource="legacy"):
    """RFC 6120 + XEP-0198 the way slixmpp does it: every step waits for the previous answer."""
    c = open_conn(port, cafile, direct_tls)
    if not direct_tls:
        starttls(c, pipelined=False)
    c.open_stream(header=header())
    f = c.read_features()
    c.mark("features-tls")
    mechs = c.mechanisms()
    if "SCRAM-SHA-1" not in mechs:
        raise BenchError("no SCRAM-SHA-1 in %s" % mechs)
    t_auth = now()
    s = Scram(user, password)
    c.send("<auth xmlns='%s' mechanism='SCRAM-SHA-1'>%s</auth>" % (NS_SASL, b64(s.client_first())))
    el = c.expect(lambda e: ns_of(e.tag) == NS_SASL, "SCRAM challenge")
    if local(el.tag) != "challenge":
        raise BenchError("SCRAM: %s" % ET.tostring(el).decode())
    c.mark("sasl-challenge")
    c.send("<response xmlns='%s'>%s</response>" % (NS_SASL, b64(s.client_final(base64.b64decode(el.text or "")))))
    el = c.expect(lambda e: ns_of(e.tag) == NS_SASL, "SCRAM outcome")
    if local(el.tag) != "success":
        raise BenchError("SCRAM: %s" % ET.tostring(el).decode())
    s.verify(base64.b64decode(el.text or ""))
    c.mark("sasl-success")
    c.open_stream(header=header())
    f = c.read_features()
    c.mark("features-auth")
    bid = "bind-" + uuid.uuid4().hex[:6]
    c.send("<iq type='set' id='%s'><bind xmlns='%s'><resource>%s</resource></bind></iq>" % (bid, NS_BIND, resource))
    el = c.expect(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == bid, "bind result")
    if el.get("type") != "result":
        raise BenchError("bind: %s" % ET.tostring(el).decode())
    c.jid = el.find("%s/%s" % (q(NS_BIND, "bind"), q(NS_BIND, "jid"))).text
    c.mark("bind")
    sess = f.find(q(NS_SESSION, "session"))
    if sess is not None and sess.find(q(NS_SESSION, "optional")) is None:
        sid = "sess-" + uuid.uuid4().hex[:6]
        c.send("<iq type='set' id='%s'><session xmlns='%s'/></iq>" % (sid, NS_SESSION))
        c.expect(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == sid, "session result")
        c.mark("session")
    if f.find(q(NS_SM, "sm")) is None:
        raise BenchError("no SM offered after bind")
    c.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    el = c.expect(lambda e: ns_of(e.tag) == NS_SM and local(e.tag) in ("enabled", "failed"), "<enabled/>")
    if local(el.tag) != "enabled":
        raise BenchError("SM enable failed")
    c.sm = True
    c.mark("sm-enabled")
    t_end = now()
    return c, {"total_ms": (t_end - c.t0) * 1000, "after_setup_ms": (t_end - t_auth) * 1000,
               "tls": c.sock.version(), "jid": c.jid}


class Device:
    """One session2 client installation: stable <user-agent id>, FAST token, SM state."""

    def __init__(self, tag, user="alice", password="alicepw"):
        self.tag = tag
        self.user = user
        self.password = password
        self.ua = str(uuid.uuid4())
        self.token = None
        self.count = 0
        self.sm_id = None
        self.h_in = 0
        self.jid = None

    def ua_xml(self):
        return "<user-agent id=%s><software>s2bench</software><device>bench</device></user-agent>" % quoteattr(self.ua)

    def bind_xml(self):
        return "<bind xmlns='%s'><tag>%s</tag><enable xmlns='%s' resume='true'/></bind>" % (
            NS_BIND2, escape(self.tag), NS_SM)

    def plain_auth(self):
        ir = ("\0%s\0%s" % (self.user, self.password)).encode()
        return ("<authenticate xmlns='%s' mechanism='PLAIN'><initial-response>%s</initial-response>%s%s"
                "<request-token xmlns='%s' mechanism='%s'/></authenticate>") % (
            NS_SASL2, b64(ir), self.ua_xml(), self.bind_xml(), NS_FAST, HT)

    def fast_auth(self, resume=False):
        if not self.token:
            raise BenchError("no FAST token")
        self.count += 1
        ir = self.user.encode() + b"\0" + hmac.new(self.token.encode(), b"Initiator", hashlib.sha256).digest()
        res = ("<resume xmlns='%s' previd=%s h='%d'/>" % (NS_SM, quoteattr(self.sm_id), self.h_in)
               if resume else "")
        return ("<authenticate xmlns='%s' mechanism='%s'><initial-response>%s</initial-response>%s%s%s"
                "<fast xmlns='%s' count='%d'/></authenticate>") % (
            NS_SASL2, HT, b64(ir), self.ua_xml(), res, self.bind_xml(), NS_FAST, self.count)


def sasl2_login(dev, port, cafile, direct_tls, mode, pipelined=False):
    """mode: 'password' | 'fast' | 'resume'. Returns (conn, result)."""
    auth = dev.plain_auth() if mode == "password" else dev.fast_auth(resume=(mode == "resume"))
    token_used = dev.token
    c = open_conn(port, cafile, direct_tls)
    if not direct_tls:
        starttls(c, pipelined)
    hdr = header("%s@%s" % (dev.user, DOMAIN))
    if pipelined:
        c._new_parser()
        t_auth = now()
        c.send(hdr + auth)
    else:
        c.open_stream(header=hdr)
        f = c.read_features()
        c.mark("features-tls")
        a = f.find(q(NS_SASL2, "authentication"))
        if a is None:
            raise BenchError("no SASL2 offered")
        inline = a.find(q(NS_SASL2, "inline"))
        fast = inline.find(q(NS_FAST, "fast")) if inline is not None else None
        if mode != "password" and (fast is None or HT not in [m.text for m in fast]):
            raise BenchError("no FAST %s offered" % HT)
        t_auth = now()
        c.send(auth)
    el = c.expect(lambda e: ns_of(e.tag) == NS_SASL2, "SASL2 <success/>")
    t_end = now()
    c.mark("sasl2")
    if local(el.tag) != "success":
        raise BenchError("SASL2 %s: %s" % (mode, ET.tostring(el).decode()))
    # checks, after the clock stopped
    add = el.find(q(NS_SASL2, "additional-data"))
    if mode != "password":
        want = hmac.new(token_used.encode(), b"Responder", hashlib.sha256).digest()
        if add is None or base64.b64decode(add.text or "") != want:
            raise BenchError("FAST <success/> without the right Responder HMAC")
    tok = el.find(q(NS_FAST, "token"))
    if tok is not None:
        dev.token = tok.get("token")
    dev.jid = (el.findtext(q(NS_SASL2, "authorization-identifier")) or "").strip()
    resumed = el.find(q(NS_SM, "resumed"))
    bound = el.find(q(NS_BIND2, "bound"))
    out = {"total_ms": (t_end - c.t0) * 1000, "after_setup_ms": (t_end - t_auth) * 1000,
           "tls": c.sock.version(), "jid": dev.jid}
    if mode == "resume":
        if resumed is None:
            raise BenchError("resume failed: %s" % ET.tostring(el).decode())
        c.sm, c.h_in = True, dev.h_in
        out["resumed_h"] = resumed.get("h")
    else:
        enabled = bound.find(q(NS_SM, "enabled")) if bound is not None else None
        if enabled is None:
            raise BenchError("no inline SM <enabled/> in <bound/>: %s" % ET.tostring(el).decode())
        dev.sm_id = enabled.get("id")
        c.sm, c.h_in = True, 0
        c.read_features(5.0)  # no restart after SASL2: features follow <success/> at once
    if mode == "password" and tok is None:
        raise BenchError("no FAST token in <success/>")
    return c, out


def slixmpp_login(port, cafile, direct_tls):
    """Cross-check of (a): slixmpp 1.8.3 (Debian) with XEP-0198, from connect() to <enabled/>."""
    import logging
    import slixmpp
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)

    async def go():
        x = slixmpp.ClientXMPP("alice@%s/slix" % DOMAIN, "alicepw")
        x.register_plugin("xep_0198")
        x.ca_certs = cafile
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        marks = {}

        def out_filter(st):
            if st.xml.tag in (q(NS_SASL, "auth"),) and "auth" not in marks:
                marks["auth"] = now()
            return st

        def ok(_):
            if not done.done():
                done.set_result(now())

        def bad(ev):
            if not done.done():
                done.set_exception(BenchError("slixmpp login failed: %s" % ev))

        x.add_filter("out", out_filter)
        x.add_event_handler("sm_enabled", ok)
        x.add_event_handler("failed_all_auth", bad)
        x.add_event_handler("connection_failed", bad)
        t0 = now()
        x.connect(address=(HOST, port), use_ssl=direct_tls, force_starttls=not direct_tls,
                  disable_starttls=direct_tls)
        try:
            t_end = await asyncio.wait_for(done, 10.0)
            tls = x.socket.version() if hasattr(x.socket, "version") else None
        finally:
            try:
                await asyncio.wait_for(x.disconnect(wait=1.0), 3.0)
            except Exception:
                x.abort()
        return {"total_ms": (t_end - t0) * 1000, "after_setup_ms": (t_end - marks.get("auth", t0)) * 1000,
                "tls": tls}

    return asyncio.run(go())


def finish(c, dev=None, cut=False):
    """Prove the session usable (ping), then close it cleanly or cut it."""
    c.ping()
    if dev is not None:
        dev.h_in = c.h_in
    if cut:
        c.cut()
    else:
        c.close_stream()


# =====================================================================================================
# the bench
# =====================================================================================================
SCENARIOS = [
    # key, label, transport, ideal RTT (from connect, after setup)
    ("a", "legacy SCRAM-SHA-1 + bind + SM enable, direct to Prosody", (10, 5), (8, 5)),
    ("a/slix", "same as a, by slixmpp 1.8.3 (cross-check)", (10, 5), (8, 5)),
    ("b", "SASL2 PLAIN + Bind2 + SM + request-token, via s2proxy", (6, 1), (4, 1)),
    ("c", "FAST + Bind2 + SM, via s2proxy", (6, 1), (4, 1)),
    ("c+", "FAST + Bind2 + SM, pipelined, via s2proxy", (4, 1), (3, 1)),
    ("d", "SASL2 SM resume (FAST + <resume/>), via s2proxy", (6, 1), (4, 1)),
    ("d+", "SASL2 SM resume, pipelined, via s2proxy", (4, 1), (3, 1)),
]
TRANSPORTS = ("starttls", "direct-tls")


class Bench:
    def __init__(self, env, relays, rtt):
        self.env = env
        self.relays = relays  # (target, transport) -> relay port
        self.rtt = rtt
        self.devices = {}
        self.results = {}

    def port(self, target, transport):
        return self.relays[(target, transport)]

    def setup_devices(self):
        for tr in TRANSPORTS:
            direct = tr == "direct-tls"
            port = self.port("proxy", tr)
            ca = self.env.proxy_ca
            # device for b/c: the password login hands out the token
            dc = Device("bench-c-" + tr)
            c, _ = sasl2_login(dc, port, ca, direct, "password")
            finish(c, dc)
            # device for d: token, then a FAST session with SM that gets cut
            dd = Device("bench-d-" + tr)
            c, _ = sasl2_login(dd, port, ca, direct, "password")
            finish(c, dd)
            c, _ = sasl2_login(dd, port, ca, direct, "fast")
            finish(c, dd, cut=True)
            self.devices[tr] = (dc, dd)
        time.sleep(0.2)

    def run_one(self, key, tr):
        direct = tr == "direct-tls"
        if key == "a":
            c, r = legacy_login(self.port("prosody", tr), self.env.prosody_ca, direct)
            finish(c)
            return c, r
        if key == "a/slix":
            return None, slixmpp_login(self.port("prosody", tr), self.env.prosody_ca, direct)
        dc, dd = self.devices[tr]
        port, ca = self.port("proxy", tr), self.env.proxy_ca
        if key == "b":
            c, r = sasl2_login(dc, port, ca, direct, "password")
            finish(c, dc)
        elif key in ("c", "c+"):
            c, r = sasl2_login(dc, port, ca, direct, "fast", pipelined=key.endswith("+"))
            finish(c, dc)
        else:
            c, r = sasl2_login(dd, port, ca, direct, "resume", pipelined=key.endswith("+"))
            finish(c, dd, cut=True)
        return c, r

    def round(self, record):
        for tr in TRANSPORTS:
            for key, *_ in SCENARIOS:
                c, r = self.run_one(key, tr)
                if record:
                    slot = self.results.setdefault((key, tr), {"total_ms": [], "after_setup_ms": [], "steps": {},
                                                               "tls": set()})
                    slot["total_ms"].append(r["total_ms"])
                    slot["after_setup_ms"].append(r["after_setup_ms"])
                    slot["tls"].add(r["tls"])
                    for name, ms in (c.steps() if c is not None else []):
                        slot["steps"].setdefault(name, []).append(ms)
                time.sleep(0.03)  # let the proxy see the cut / close before the next login


def fmt_ms(xs):
    return "%.0f (%.0f)" % (s2bench.median(xs), s2bench.percentile(xs, 90))


def fmt_rtt(xs, rtt):
    return "%.2f (%.2f)" % (s2bench.median(xs) / rtt, s2bench.percentile(xs, 90) / rtt)


def report(bench, args, elapsed):
    rtt = args.rtt_ms
    rows, steps_rows, js = [], [], {}
    for tr in TRANSPORTS:
        for key, label, ideal_st, ideal_dt in SCENARIOS:
            r = bench.results.get((key, tr))
            if not r:
                continue
            ideal = ideal_dt if tr == "direct-tls" else ideal_st
            rows.append(["%s" % key, label, tr, "%d / %d" % ideal,
                         fmt_ms(r["total_ms"]), fmt_rtt(r["total_ms"], rtt),
                         fmt_ms(r["after_setup_ms"]), fmt_rtt(r["after_setup_ms"], rtt)])
            if r["steps"]:
                steps_rows.append([key, tr, " → ".join("%s %.0f" % (n, s2bench.median(v))
                                                       for n, v in r["steps"].items())])
            js["%s/%s" % (key, tr)] = {
                "label": label, "transport": tr, "ideal_rtt_from_connect": ideal[0], "ideal_rtt_after_setup": ideal[1],
                "total_ms": r["total_ms"], "after_setup_ms": r["after_setup_ms"],
                "total_median_ms": s2bench.median(r["total_ms"]), "total_p90_ms": s2bench.percentile(r["total_ms"], 90),
                "after_setup_median_ms": s2bench.median(r["after_setup_ms"]),
                "after_setup_p90_ms": s2bench.percentile(r["after_setup_ms"], 90),
                "total_median_rtt": s2bench.median(r["total_ms"]) / rtt,
                "after_setup_median_rtt": s2bench.median(r["after_setup_ms"]) / rtt,
                "steps_median_ms": {n: s2bench.median(v) for n, v in r["steps"].items()},
                "tls": sorted(r["tls"])}
    table = s2bench.md_table(
        ["", "scenario", "transport", "ideal RTT (connect / setup)", "from TCP connect ms, median (p90)",
         "= RTT", "after setup ms, median (p90)", "= RTT"], rows, align=["l", "l", "l", "r", "r", "r", "r", "r"])
    steps = s2bench.md_table(["", "transport", "median ms per step (each step ends when its answer arrived)"],
                             steps_rows, align=["l", "l", "l"])
    head = ("### Login over a %g ms RTT path (N=%d per row, %d-core machine, loopback + delay relay)\n\n"
            "Times are median (p90). RTT = time / %g ms. Ideal = round trips a client that waits for "
            "every answer (pipelined rows: see text) cannot avoid, counting the TCP handshake.\n"
            % (rtt, args.n, os.cpu_count(), rtt))
    head += "\nBinary: %s.\n" % s2bench.binary_line(args.binary_info)
    md = head + "\n" + table + "\n\nWhere the time goes:\n\n" + steps + "\n\n_run took %.0f s_\n" % elapsed
    return md, js


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=15, help="runs per scenario (default 15)")
    ap.add_argument("--rtt-ms", type=float, default=50.0, help="round-trip time the relays add (default 50)")
    ap.add_argument("--binary", default=str(s2bench.DEFAULT_BINARY), help="s2proxy binary")
    ap.add_argument("--json", help="write raw samples and summaries here")
    ap.add_argument("--budget", type=int, default=175, help="hard time limit in seconds (default 175)")
    ap.add_argument("--prosody-nagle", choices=("on", "off"), default="on",
                    help="diagnostic: 'off' restarts the test bed Prosody with network_settings = "
                         "{ nagle = false } (Prosody 0.12 default: Nagle on)")
    args = ap.parse_args()

    s2bench.install_deadline(args.budget)
    t_start = time.monotonic()
    args.binary_info = s2bench.binary_info(args.binary)
    env = s2bench.BenchEnv(args.binary, prosody_nagle=args.prosody_nagle == "on")
    relays = []
    try:
        env.start()
        one_way = args.rtt_ms / 2000.0
        ports = {}
        for (target, tr), tp in zip(
                [("prosody", "starttls"), ("prosody", "direct-tls"), ("proxy", "starttls"), ("proxy", "direct-tls")],
                [s2bench.PROSODY_C2S, s2bench.PROSODY_C2S_TLS, s2bench.PROXY_PORT, s2bench.PROXY_TLS_PORT]):
            relay = DelayRelay(0, tp, one_way).start()  # port 0: a free port of the kernel's choosing
            relays.append(relay)
            ports[(target, tr)] = relay.listen_port
        bench = Bench(env, ports, args.rtt_ms)
        bench.setup_devices()
        bench.round(record=False)  # warm-up
        for i in range(args.n):
            bench.round(record=True)
        elapsed = time.monotonic() - t_start
        md, js = report(bench, args, elapsed)
        print(md)
        if args.json:
            out = {"bench": "login", "rtt_ms": args.rtt_ms, "prosody_nagle": args.prosody_nagle, "n": args.n, "machine": s2bench.machine_info(),
                   "binary": args.binary_info, "elapsed_s": elapsed, "scenarios": js}
            Path(args.json).write_text(json.dumps(out, indent=1))
        return 0
    except (BenchError, AssertionError, OSError, ET.ParseError) as e:  # rawxmpp raises AssertionErrors
        print("bench failed: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        if env.proxy is not None:
            print(env.proxy.log_tail(30), file=sys.stderr)
        return 1
    finally:
        s2bench.cancel_deadline()
        for r in relays:
            r.stop()
        env.stop()


if __name__ == "__main__":
    sys.exit(main())
