"""slixmpp client helper for the integration tests (Debian python3-slixmpp, /usr/bin/python3 only).

Every wait is bounded. A test body is an async function run by `run_async(fn, timeout)`; it gets a
`Pool` that connects clients and disconnects (or aborts) all of them when the body ends, whatever
happened:

    def test_x(target, upstream_target):
        async def body(pool):
            alice = await pool.connect(target, "alice", "a1")          # through the proxy
            bob = await pool.connect(upstream_target, "bob", "b1")     # directly upstream
            bob.send_xml(msg_xml(alice.jid, "hi", mid="m1"))
            el = await alice.wait_msg(has_body("hi"), 5)
        run_async(body, 60)
"""
import asyncio
import logging
import os
import ssl
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Optional
from xml.sax.saxutils import escape, quoteattr

try:
    import slixmpp
    from slixmpp.exceptions import IqError, IqTimeout
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath
except ImportError as e:  # pragma: no cover
    raise ImportError("python3-slixmpp missing: apt-get install -y python3-slixmpp, and run "
                      "/usr/bin/python3 -m pytest (not a pyenv/venv python)") from e

NS_CLIENT = "jabber:client"
NS_ROSTER = "jabber:iq:roster"
NS_PING = "urn:xmpp:ping"
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"
NS_XDATA = "jabber:x:data"
NS_CARBONS = "urn:xmpp:carbons:2"
NS_FORWARD = "urn:xmpp:forward:0"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

PASSWORDS = {"alice": "alicepw", "bob": "bobpw", "carol": "carolpw"}

log = logging.getLogger("s2it.client")
# slixmpp logs expected things (failed auth, resets in hostile tests) at ERROR level
logging.getLogger("slixmpp").setLevel(logging.CRITICAL)


def q(ns, tag):
    return "{%s}%s" % (ns, tag)


@dataclass
class Target:
    """Where a client connects: the proxy or (S2_TARGET=direct, or bob) the upstream itself."""
    name: str  # "proxy", "direct" or "upstream"
    domain: str
    host: str
    starttls_port: int
    tls_port: int
    cafile: Optional[str] = None  # the certificate the server presents (self-signed), for verification
    direct: bool = False  # True when this is the upstream server itself, not s2proxy
    proc: object = None  # harness.ProxyProc when this is a proxy instance
    kind: str = ""  # upstream kind behind it: prosody | ejabberd
    limits: dict = field(default_factory=dict)

    def jid(self, user, resource=None):
        return "%s@%s%s" % (user, self.domain, "/" + resource if resource else "")


def verify_default():
    return os.environ.get("S2_VERIFY", "0") == "1"


class Client:
    """One slixmpp connection that records every stanza it receives."""

    def __init__(self, target: Target, user, resource, password=None, tls="starttls", verify=None,
                 sasl_mech=None):
        self.target = target
        self.user = user
        self.tls = tls
        self.jid = target.jid(user, resource)
        self.bare = target.jid(user)
        kwargs = {"sasl_mech": sasl_mech} if sasl_mech else {}
        self.x = slixmpp.ClientXMPP(self.jid, password if password is not None else PASSWORDS[user], **kwargs)
        for p in ("xep_0030", "xep_0199"):
            self.x.register_plugin(p)
        if verify is None:
            verify = verify_default()
        if verify and target.cafile:
            self.x.ca_certs = target.cafile
        else:
            self.x.ssl_context.check_hostname = False
            self.x.ssl_context.verify_mode = ssl.CERT_NONE
        self.stanzas = []  # (monotonic time, kind, ElementTree element)
        # an incoming filter, not a handler: a handler would make every iq "handled" and keep
        # slixmpp from answering unknown iqs with an error
        self.x.add_filter("in", self._record)
        self.events = []
        for ev in ("failed_auth", "failed_all_auth", "disconnected", "connection_failed", "stream_error"):
            self.x.add_event_handler(ev, lambda data, ev=ev: self.events.append((time.monotonic(), ev, data)))

    def _record(self, stanza):
        kind = stanza.xml.tag.split("}")[-1]
        if kind in ("message", "presence", "iq"):
            self.stanzas.append((time.monotonic(), kind, stanza.xml))
        return stanza

    @property
    def full_jid(self):
        return str(self.x.boundjid)

    def _port(self):
        return self.target.tls_port if self.tls == "direct" else self.target.starttls_port

    async def connect(self, presence=True, timeout=15.0):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def ok(_):
            if not fut.done():
                fut.set_result(True)

        def bad(reason):
            def f(ev):
                if not fut.done():
                    fut.set_exception(ConnectionError("%s (%s:%d as %s): %s" % (
                        reason, self.target.host, self._port(), self.jid, ev)))
            return f

        handlers = [("session_start", ok), ("failed_all_auth", bad("authentication failed")),
                    ("connection_failed", bad("connection failed"))]
        for ev, h in handlers:
            self.x.add_event_handler(ev, h)
        self.x.connect(address=(self.target.host, self._port()), use_ssl=(self.tls == "direct"),
                       force_starttls=(self.tls == "starttls"), disable_starttls=(self.tls != "starttls"))
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self.abort()
            raise AssertionError("no session for %s via %s %s:%d within %.0fs (events: %s)" % (
                self.jid, self.target.name, self.target.host, self._port(), timeout,
                [e[1] for e in self.events])) from None
        except Exception:
            self.abort()
            raise
        finally:
            for ev, h in handlers:
                self.x.del_event_handler(ev, h)
        if presence:
            t0 = time.monotonic()
            self.x.send_presence()
            if self.target.direct:
                # Available once the server has processed the presence (it reflects it to the
                # sender): until then a message to the bare JID goes to offline storage, not here.
                await self.wait_presence(lambda el: el.get("from") == self.full_jid and
                                         el.get("type") in (None, "available"), timeout, since=t0,
                                         what="its own initial presence back from the server")
        return self

    def abort(self):
        try:
            self.x.abort()
        except Exception:
            pass
        try:
            self.x.cancel_connection_attempt()
        except Exception:
            pass

    async def disconnect(self, timeout=5.0):
        if not self.x.transport:
            return
        try:
            await asyncio.wait_for(self.x.disconnect(wait=2.0), timeout)
        except Exception:
            self.abort()

    @property
    def connected(self):
        return self.x.transport is not None

    # ---- sending -------------------------------------------------------------------------------
    def send_xml(self, xml):
        self.x.send_raw(xml)

    async def iq(self, payload_xml, to=None, itype="get", timeout=10.0):
        """Send an iq, return the response element (result OR error: check .get('type'))."""
        iq = self.x.make_iq(itype=itype, ito=to)
        if payload_xml:
            iq.append(ET.fromstring(payload_xml))
        try:
            res = await iq.send(timeout=timeout)
            return res.xml
        except IqError as e:
            return e.iq.xml
        except IqTimeout:
            raise AssertionError("no response to iq %s from %s within %.0fs: %s" % (
                itype, to or "server", timeout, payload_xml)) from None

    # ---- receiving -----------------------------------------------------------------------------
    def received(self, kind=None, pred=None, since=0.0):
        return [el for t, k, el in self.stanzas
                if t >= since and (kind is None or k == kind) and (pred is None or pred(el))]

    async def wait_for(self, kind, pred, timeout, since=0.0, what=None):
        end = time.monotonic() + timeout
        while True:
            for t, k, el in self.stanzas:
                if t >= since and k == kind and pred(el):
                    return el
            if time.monotonic() >= end:
                raise AssertionError("%s did not receive %s within %.1fs; got %d %s stanza(s): %s" % (
                    self.jid, what or kind, timeout, len(self.received(kind, since=since)), kind,
                    [short(e) for e in self.received(kind, since=since)][-8:]))
            await asyncio.sleep(0.02)

    async def wait_msg(self, pred, timeout=5.0, since=0.0, what="message"):
        return await self.wait_for("message", pred, timeout, since, what)

    async def wait_presence(self, pred, timeout=5.0, since=0.0, what="presence"):
        return await self.wait_for("presence", pred, timeout, since, what)


class Pool:
    def __init__(self):
        self.clients = []

    async def connect(self, target, user, resource=None, presence=True, timeout=15.0, **kw):
        c = Client(target, user, resource or ("r-" + uuid.uuid4().hex[:6]), **kw)
        self.clients.append(c)
        await c.connect(presence=presence, timeout=timeout)
        return c

    async def close_all(self, graceful=True):
        if graceful:
            await asyncio.gather(*(c.disconnect() for c in self.clients), return_exceptions=True)
        for c in self.clients:
            c.abort()
        await asyncio.sleep(0.05)


def run_async(fn, timeout=60.0):
    """Run `await fn(pool)` bounded by `timeout` seconds; every client is closed afterwards."""

    async def main():
        pool = Pool()
        ok = False
        try:
            res = await asyncio.wait_for(fn(pool), timeout)
            ok = True
            return res
        except asyncio.TimeoutError:
            raise AssertionError("test body exceeded %.0fs" % timeout) from None
        finally:
            await pool.close_all(graceful=ok)

    return asyncio.run(main())


# ---- stanza helpers ----------------------------------------------------------------------------
def new_id(prefix="s2it"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def msg_xml(to, body=None, mid=None, mtype="chat", extra=""):
    return "<message xmlns='%s' to=%s type='%s' id=%s>%s%s</message>" % (
        NS_CLIENT, quoteattr(to), mtype, quoteattr(mid or new_id("m")),
        "<body>%s</body>" % escape(body) if body is not None else "", extra)


def body_of(el):
    b = el.find(q(NS_CLIENT, "body"))
    return b.text if b is not None else None


def has_body(text):
    return lambda el: body_of(el) == text


def carbon_inner(el, kind):
    c = el.find(q(NS_CARBONS, kind))
    if c is None:
        return None
    return c.find("%s/%s" % (q(NS_FORWARD, "forwarded"), q(NS_CLIENT, "message")))


def contains_text(el, text):
    """True when `text` appears anywhere in the element (a body, a carbon, a forwarded copy...)."""
    return text in ET.tostring(el, encoding="unicode")


def stanza_error(el):
    """(type, condition) of a stanza's <error/>, or None."""
    e = el.find(q(NS_CLIENT, "error"))
    if e is None:
        return None
    cond = [c.tag.split("}")[1] for c in e if c.tag.startswith("{%s}" % NS_STANZAS) and not c.tag.endswith("}text")]
    return e.get("type"), (cond[0] if cond else None)


def short(el, n=300):
    s = ET.tostring(el, encoding="unicode")
    s = s.replace("xmlns:ns0=\"jabber:client\" ", "").replace("ns0:", "")
    return s if len(s) <= n else s[:n] + "..."


async def join_room(c, room, nick, instant=True):
    """Joins `room` as `nick` and returns the self-presence (status 110). instant: a room that the
    join created (status 201) is configured with the default form at once."""
    t0 = time.monotonic()
    c.send_xml("<presence xmlns='jabber:client' to='%s/%s'><x xmlns='%s'/></presence>" % (room, nick, NS_MUC))

    def self_presence(el):
        if el.get("from") != "%s/%s" % (room, nick):
            return False
        if el.get("type") == "error":
            return True
        x = el.find(q(NS_MUC_USER, "x"))
        return x is not None and any(s.get("code") == "110" for s in x.findall(q(NS_MUC_USER, "status")))

    p = await c.wait_presence(self_presence, 10, since=t0, what="MUC self-presence in %s" % room)
    assert p.get("type") != "error", "join %s failed: %s" % (room, short(p))
    x = p.find(q(NS_MUC_USER, "x"))
    if instant and any(s.get("code") == "201" for s in x.findall(q(NS_MUC_USER, "status"))):
        res = await c.iq("<query xmlns='%s'><x xmlns='jabber:x:data' type='submit'/></query>" % NS_MUC_OWNER,
                         to=room, itype="set")
        assert res.get("type") == "result", "instant room config: %s" % short(res)
    return p
