"""A small asyncio XMPP client for load: STARTTLS or direct TLS, SASL1 PLAIN, bind, then either
bounded waits for elements (expect) or a callback per top-level element (start_reader).

    c = AXmpp("legacy.test", cafile)
    await c.login_plain("127.0.0.1", 56222, "user1", "pass1", resource="r1")
    c.start_reader(lambda el: ...)
    c.send("<message .../>")
    await c.close()
"""
import asyncio
import base64
import collections
import hashlib
import hmac
import socket
import ssl
import time
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

# Namespaces and tag helpers are the integration suite's (tests/integration must be on sys.path,
# as bench_relay.py arranges).
from rawxmpp import NS_BIND, NS_CLIENT, NS_SASL, NS_SESSION, NS_STREAM, NS_TLS, local, ns_of, q  # noqa: F401

HDR = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
       "xmlns:stream='http://etherx.jabber.org/streams' to=%s version='1.0'>")
HDR_FROM = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' to=%s from=%s version='1.0'>")
NS_SASL2 = "urn:xmpp:sasl:2"
NS_BIND2 = "urn:xmpp:bind:0"
NS_FAST = "urn:xmpp:fast:0"
HT = "HT-SHA-256-NONE"


class XmppError(Exception):
    pass


_contexts = {}


def tls_context(cafile):
    ctx = _contexts.get(cafile)
    if ctx is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        _contexts[cafile] = ctx
    return ctx


class AXmpp:
    def __init__(self, domain, cafile, name=""):
        self.domain = domain
        self.cafile = cafile
        self.name = name
        self.reader = None
        self.writer = None
        self.jid = None
        self.features = None
        self.closed = False
        self._callback = None
        self._task = None
        self._new_parser()

    # ---- parsing --------------------------------------------------------------------------------
    def _new_parser(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.root = None
        self.pending = collections.deque()

    def _feed(self, data):
        self.parser.feed(data)
        for ev, el in self.parser.read_events():
            if ev == "start":
                self.depth += 1
                if self.depth == 1:
                    self.root = el
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.root.remove(el)  # keep the stream root small
                    if self._callback is not None:
                        self._callback(el)
                    else:
                        self.pending.append(el)
                elif self.depth == 0:
                    self.closed = True

    async def next_element(self, timeout=10.0):
        end = time.monotonic() + timeout
        while not self.pending:
            if self.closed:
                raise XmppError("%s: stream closed" % self.name)
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise XmppError("%s: timeout" % self.name)
            try:
                data = await asyncio.wait_for(self.reader.read(65536), remaining)
            except asyncio.TimeoutError:
                raise XmppError("%s: timeout" % self.name) from None
            if not data:
                self.closed = True
                raise XmppError("%s: connection closed" % self.name)
            self._feed(data)
        return self.pending.popleft()

    async def expect(self, pred, what, timeout=10.0):
        end = time.monotonic() + timeout
        while True:
            el = await self.next_element(max(0.01, end - time.monotonic()))
            if el.tag == q(NS_STREAM, "error"):
                raise XmppError("%s: stream error while waiting for %s: %s" % (
                    self.name, what, ET.tostring(el).decode()))
            if pred(el):
                return el

    # ---- I/O ------------------------------------------------------------------------------------
    def send(self, data):
        self.writer.write(data.encode() if isinstance(data, str) else data)

    async def drain(self):
        await self.writer.drain()

    async def connect(self, host, port, direct_tls=False, timeout=10.0, local_addr=None):
        kw = {"ssl": tls_context(self.cafile), "server_hostname": self.domain} if direct_tls else {}
        if local_addr is not None:  # a source address of our own (127.0.0.x): per-address limits
            kw["local_addr"] = (local_addr, 0)
        self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(host, port, **kw), timeout)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def open_stream(self):
        self._new_parser()
        self.send(HDR % quoteattr(self.domain))
        self.features = await self.expect(lambda e: e.tag == q(NS_STREAM, "features"), "features")
        return self.features

    async def starttls(self, timeout=10.0):
        await self.open_stream()
        self.send("<starttls xmlns='%s'/>" % NS_TLS)
        el = await self.expect(lambda e: ns_of(e.tag) == NS_TLS, "<proceed/>")
        if local(el.tag) != "proceed":
            raise XmppError("STARTTLS refused")
        await asyncio.wait_for(self.writer.start_tls(tls_context(self.cafile), server_hostname=self.domain), timeout)

    async def login_plain(self, host, port, user, password, resource=None, direct_tls=False, timeout=15.0,
                          local_addr=None):
        """Connect, TLS, SASL1 PLAIN, restart, bind (+ session when required). Returns seconds taken."""
        t0 = time.perf_counter()

        async def go():
            await self.connect(host, port, direct_tls, local_addr=local_addr)
            if not direct_tls:
                await self.starttls()
            await self.open_stream()
            blob = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
            self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, blob))
            el = await self.expect(lambda e: ns_of(e.tag) == NS_SASL, "SASL outcome")
            if local(el.tag) != "success":
                raise XmppError("%s: auth failed: %s" % (self.name, ET.tostring(el).decode()))
            f = await self.open_stream()
            bid = "b-" + uuid.uuid4().hex[:8]
            res = "<resource>%s</resource>" % resource if resource else ""
            self.send("<iq type='set' id='%s'><bind xmlns='%s'>%s</bind></iq>" % (bid, NS_BIND, res))
            el = await self.expect(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == bid, "bind")
            if el.get("type") != "result":
                raise XmppError("%s: bind failed" % self.name)
            self.jid = el.find("%s/%s" % (q(NS_BIND, "bind"), q(NS_BIND, "jid"))).text
            sess = f.find(q(NS_SESSION, "session"))
            if sess is not None and sess.find(q(NS_SESSION, "optional")) is None:
                sid = "s-" + uuid.uuid4().hex[:8]
                self.send("<iq type='set' id='%s'><session xmlns='%s'/></iq>" % (sid, NS_SESSION))
                await self.expect(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == sid, "session")

        await asyncio.wait_for(go(), timeout)
        return time.perf_counter() - t0

    async def login_sasl2(self, host, port, user, password=None, token=None, count=1, ua_id=None,
                          tag="bench", timeout=15.0, local_addr=None):
        """session2 (XEP-0388/0386/0484): connect, STARTTLS, one <authenticate/> with Bind2 — SASL2
        PLAIN asking for a FAST token (`password`), or FAST HT-SHA-256-NONE with `token` and replay
        `count` — up to <success/>, which carries the bound JID. Returns (seconds taken, the new
        FAST token or None)."""
        t0 = time.perf_counter()
        ua = "<user-agent id=%s><software>s2bench</software></user-agent>" % quoteattr(ua_id or str(uuid.uuid4()))
        bind = "<bind xmlns='%s'><tag>%s</tag></bind>" % (NS_BIND2, tag)
        if token is None:
            ir = ("\0%s\0%s" % (user, password)).encode()
            auth = ("<authenticate xmlns='%s' mechanism='PLAIN'><initial-response>%s</initial-response>%s%s"
                    "<request-token xmlns='%s' mechanism='%s'/></authenticate>") % (
                NS_SASL2, base64.b64encode(ir).decode(), ua, bind, NS_FAST, HT)
        else:
            mac = hmac.new(token.encode(), b"Initiator", hashlib.sha256).digest()
            ir = user.encode() + b"\0" + mac
            auth = ("<authenticate xmlns='%s' mechanism='%s'><initial-response>%s</initial-response>%s%s"
                    "<fast xmlns='%s' count='%d'/></authenticate>") % (
                NS_SASL2, HT, base64.b64encode(ir).decode(), ua, bind, NS_FAST, count)
        new_token = None

        async def go():
            nonlocal new_token
            await self.connect(host, port, local_addr=local_addr)
            await self.starttls()
            self._new_parser()
            self.send(HDR_FROM % (quoteattr(self.domain), quoteattr("%s@%s" % (user, self.domain))))
            self.features = await self.expect(lambda e: e.tag == q(NS_STREAM, "features"), "features")
            self.send(auth)
            el = await self.expect(lambda e: ns_of(e.tag) == NS_SASL2, "SASL2 outcome")
            if local(el.tag) != "success":
                raise XmppError("%s: SASL2 failed: %s" % (self.name, ET.tostring(el).decode()))
            tok = el.find(q(NS_FAST, "token"))
            if tok is not None:
                new_token = tok.get("token")
            self.jid = (el.findtext(q(NS_SASL2, "authorization-identifier")) or "").strip()

        await asyncio.wait_for(go(), timeout)
        return time.perf_counter() - t0, new_token

    def start_reader(self, callback):
        """From now on every top-level element goes to callback(el) (synchronously, in order)."""
        self._callback = callback
        while self.pending:
            callback(self.pending.popleft())
        self._task = asyncio.create_task(self._read_loop())

    async def _read_loop(self):
        try:
            while True:
                data = await self.reader.read(262144)
                if not data:
                    self.closed = True
                    return
                self._feed(data)
        except (ConnectionError, OSError, ssl.SSLError, ET.ParseError):
            self.closed = True

    async def close(self, timeout=3.0):
        if self.writer is None:
            return
        try:
            if not self.writer.is_closing():
                self.send("</stream:stream>")
                await asyncio.wait_for(self.writer.drain(), timeout)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 1.0)
            except (asyncio.TimeoutError, Exception):
                self._task.cancel()
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), timeout)
        except (ConnectionError, OSError, asyncio.TimeoutError, ssl.SSLError):
            pass
