"""A tiny raw XMPP client for hostile-input tests.

Blocking sockets, every read bounded by a deadline. It speaks just enough
XMPP to get where a test needs to be (stream open, STARTTLS, SASL PLAIN,
bind) and then lets the test write arbitrary bytes and collect what the
server answers: a stream error (condition + <text/>), a SASL result, or a
plain close.

    c = RawXMPP.connect("127.0.0.1", 36222, domain="legacy.test")
    c.open_stream(); c.read_features(); c.starttls()
    c.open_stream(); c.read_features()
    c.send("<!-- hi -->")
    err = c.read_stream_error()          # StreamEnd(condition='restricted-xml', ...)
"""
import base64
import socket
import ssl
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Optional
from xml.sax.saxutils import quoteattr

NS_STREAM = "http://etherx.jabber.org/streams"
NS_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams"
NS_CLIENT = "jabber:client"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"

STREAM_HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                 "xmlns:stream='http://etherx.jabber.org/streams' to={to} version='1.0'>")


def q(ns, tag):
    return "{%s}%s" % (ns, tag)


def local(tag):
    return tag.split("}", 1)[1] if tag.startswith("{") else tag


def ns_of(tag):
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


class XMPPTimeout(AssertionError):
    """Nothing (or not the expected thing) arrived before the deadline."""


class XMPPClosed(AssertionError):
    """The peer closed the connection while we were waiting for something else."""


@dataclass
class StreamEnd:
    """How a stream ended, as observed by the client."""
    condition: Optional[str] = None  # stream error condition, None if there was no <stream:error/>
    text: Optional[str] = None  # content of <text/>, None if absent
    text_ns: Optional[str] = None  # namespace of <text/>, None if absent
    error_xml: Optional[str] = None
    got_header: bool = False  # the server's <stream:stream> arrived before the error / close
    close_tag: bool = False  # </stream:stream> received
    eof: bool = False  # TCP closed by the peer (recv returned b"")
    reset: bool = False  # connection reset / TLS torn down without close_notify
    timed_out: bool = False  # still open when the deadline passed
    elapsed: float = 0.0  # seconds from the start of the wait to the end
    other: list = field(default_factory=list)  # other top-level elements seen meanwhile

    def describe(self):
        return ("condition=%r text=%r text_ns=%r header=%s close_tag=%s eof=%s reset=%s timed_out=%s "
                "elapsed=%.2fs other=%s error_xml=%s" % (
                    self.condition, self.text, self.text_ns, self.got_header, self.close_tag, self.eof,
                    self.reset, self.timed_out, self.elapsed, [local(e.tag) for e in self.other], self.error_xml))


class RawXMPP:
    def __init__(self, sock, domain, host, port, cafile=None, timeout=10.0):
        self.sock = sock
        self.domain = domain
        self.host = host
        self.port = port
        self.cafile = cafile
        self.timeout = timeout
        self.tls = isinstance(sock, ssl.SSLSocket)
        self.log = []  # ("<<" | ">>", bytes) for post-mortem
        self._new_parser()
        self.stream_attrs = None
        self.features = None
        self.closed = False
        self.close_tag = False
        self.eof = False
        self.reset = False
        self.jid = None

    # ---- connection -------------------------------------------------------------------------------
    @classmethod
    def connect(cls, host, port, domain, direct_tls=False, cafile=None, timeout=10.0):
        s = socket.create_connection((host, port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = cls(s, domain, host, port, cafile=cafile, timeout=timeout)
        if direct_tls:
            c._wrap_tls()
        return c

    def _ssl_context(self):
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if self.cafile:
            ctx.load_verify_locations(self.cafile)
            ctx.check_hostname = True
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _wrap_tls(self):
        ctx = self._ssl_context()
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.domain)
        self.tls = True
        self._new_parser()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- I/O ---------------------------------------------------------------------------------------
    def _new_parser(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.pending = []  # complete top-level elements not yet consumed
        self.got_header = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.log.append((">>", data))
        self.sock.sendall(data)

    def _recv_some(self, deadline):
        """One recv, fed into the parser. Returns False on EOF/reset."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise XMPPTimeout("deadline passed")
        self.sock.settimeout(min(remaining, 1.0))
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return True
        except ssl.SSLZeroReturnError:
            self.eof = True
            self.closed = True
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, ssl.SSLEOFError) as e:
            self.log.append(("!!", repr(e).encode()))
            self.reset = True
            self.closed = True
            return False
        if not data:
            self.eof = True
            self.closed = True
            return False
        self.log.append(("<<", data))
        self._feed(data)
        return True

    def _feed(self, data):
        if not self.got_header and self.depth == 0:
            # a peer that sends <stream:error/> without opening its stream first violates
            # RFC 6120 4.9.1.2; note it and parse the rest anyway
            stripped = data.lstrip()
            if stripped.startswith(b"<stream:error") or stripped.startswith(b"</stream:stream"):
                self.log.append(("!!", b"error/close without a stream header"))
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
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.pending.append(el)
                elif self.depth == 0:
                    self.close_tag = True

    def next_element(self, timeout=None):
        """Next complete top-level element (after the stream header)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.pending:
            if self.close_tag:
                raise XMPPClosed("stream closed by the server (</stream:stream>)")
            if self.closed:
                raise XMPPClosed("connection closed by the server")
            self._recv_some(deadline)
        return self.pending.pop(0)

    def wait_for(self, pred, timeout=None, what="element"):
        deadline = time.monotonic() + (timeout or self.timeout)
        skipped = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise XMPPTimeout("no %s within %.1fs (skipped: %s)" % (what, timeout or self.timeout,
                                                                           [local(e.tag) for e in skipped]))
            try:
                el = self.next_element(remaining)
            except XMPPTimeout:
                continue
            if el.tag == q(NS_STREAM, "error"):
                raise XMPPClosed("stream error while waiting for %s: %s" % (what, ET.tostring(el).decode()))
            if pred(el):
                return el
            skipped.append(el)

    # ---- stream setup ------------------------------------------------------------------------------
    def open_stream(self, to=None, header=None):
        self._new_parser()
        self.send(header if header is not None else STREAM_HEADER.format(to=quoteattr(to or self.domain)))

    def read_features(self, timeout=None):
        el = self.wait_for(lambda e: e.tag == q(NS_STREAM, "features"), timeout, "<stream:features/>")
        self.features = el
        return el

    def mechanisms(self):
        m = self.features.find(q(NS_SASL, "mechanisms")) if self.features is not None else None
        return [x.text for x in m.findall(q(NS_SASL, "mechanism"))] if m is not None else []

    def starttls(self):
        self.send("<starttls xmlns='%s'/>" % NS_TLS)
        el = self.wait_for(lambda e: ns_of(e.tag) == NS_TLS, None, "<proceed/>")
        if local(el.tag) != "proceed":
            raise AssertionError("STARTTLS refused: %s" % ET.tostring(el).decode())
        self._wrap_tls()

    def secure_stream(self, direct_tls=False):
        """Stream open (+ STARTTLS unless direct TLS) up to the post-TLS features."""
        if not direct_tls:
            self.open_stream()
            self.read_features()
            self.starttls()
        self.open_stream()
        return self.read_features()

    def auth_plain(self, user, password, authzid=""):
        """SASL PLAIN. Returns (result, condition, text, element): result 'success' or 'failure'."""
        blob = base64.b64encode(("%s\0%s\0%s" % (authzid, user, password)).encode()).decode()
        self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, blob))
        return self.read_sasl_result()

    def read_sasl_result(self, timeout=None):
        el = self.wait_for(lambda e: ns_of(e.tag) == NS_SASL, timeout, "SASL <success/>/<failure/>")
        if local(el.tag) == "success":
            return "success", None, None, el
        cond = None
        text = None
        for ch in el:
            if local(ch.tag) == "text":
                text = ch.text or ""
            else:
                cond = local(ch.tag)
        return local(el.tag), cond, text, el

    def bind(self, resource=None):
        rid = "bind-" + uuid.uuid4().hex[:6]
        res = "<resource>%s</resource>" % resource if resource else ""
        self.send("<iq xmlns='jabber:client' type='set' id='%s'><bind xmlns='%s'>%s</bind></iq>" % (rid, NS_BIND, res))
        el = self.wait_for(lambda e: local(e.tag) == "iq" and e.get("id") == rid, None, "bind result")
        if el.get("type") != "result":
            raise AssertionError("bind failed: %s" % ET.tostring(el).decode())
        self.jid = el.find("%s/%s" % (q(NS_BIND, "bind"), q(NS_BIND, "jid"))).text
        # RFC 3921 session iq: harmless where optional, needed by old servers
        if self.features is not None and self.features.find(q(NS_SESSION, "session")) is not None:
            sid = "sess-" + uuid.uuid4().hex[:6]
            self.send("<iq xmlns='jabber:client' type='set' id='%s'><session xmlns='%s'/></iq>" % (sid, NS_SESSION))
            self.wait_for(lambda e: local(e.tag) == "iq" and e.get("id") == sid, None, "session result")
        return self.jid

    def login(self, user, password, resource=None, direct_tls=False):
        """Full login: TLS, SASL PLAIN, bind. Returns the bound JID."""
        self.secure_stream(direct_tls)
        result, cond, text, _ = self.auth_plain(user, password)
        if result != "success":
            raise AssertionError("login %s failed: %s %r" % (user, cond, text))
        self.open_stream()
        self.read_features()
        return self.bind(resource)

    # ---- ending ------------------------------------------------------------------------------------
    def read_stream_end(self, timeout=10.0):
        """Read until the server ends the stream (error, close tag, EOF) or the deadline passes."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        res = StreamEnd()
        while True:
            while self.pending:
                el = self.pending.pop(0)
                if el.tag == q(NS_STREAM, "error") and res.condition is None:
                    res.error_xml = ET.tostring(el).decode()
                    for ch in el:
                        if ns_of(ch.tag) != NS_STREAMS:
                            continue
                        if local(ch.tag) == "text":
                            res.text = ch.text or ""
                            res.text_ns = ns_of(ch.tag)
                        else:
                            res.condition = local(ch.tag)
                    if res.text is None:
                        # a <text/> in the wrong namespace is still worth reporting
                        for ch in el:
                            if local(ch.tag) == "text":
                                res.text = ch.text or ""
                                res.text_ns = ns_of(ch.tag)
                else:
                    res.other.append(el)
            if self.closed or (self.close_tag and res.condition is not None):
                break
            if self.close_tag:
                # close tag seen: give the peer a moment to close TCP, then stop
                end = min(deadline, time.monotonic() + 2.0)
                while not self.closed and time.monotonic() < end:
                    try:
                        self._recv_some(end)
                    except XMPPTimeout:
                        break
                break
            if time.monotonic() >= deadline:
                res.timed_out = True
                break
            try:
                self._recv_some(deadline)
            except XMPPTimeout:
                res.timed_out = True
                break
            except ET.ParseError as e:
                self.log.append(("!!", ("server sent malformed XML: %s" % e).encode()))
                raise
        res.got_header = self.got_header
        res.close_tag = self.close_tag
        res.eof = self.eof
        res.reset = self.reset
        res.elapsed = time.monotonic() - t0
        return res

    def transcript(self, limit=4000):
        out = []
        for d, data in self.log:
            s = data.decode("utf-8", "replace")
            if len(s) > 300:
                s = s[:150] + "...[%d bytes]..." % len(s) + s[-100:]
            out.append("%s %s" % (d, s))
        t = "\n".join(out)
        return t[-limit:]


def assert_stream_error(res: StreamEnd, condition, conn: RawXMPP = None):
    """The RFC 6120 4.9 shape: header first, <condition/> + <text/> in the streams namespace, then
    </stream:stream>. `condition` may be a string or a set of acceptable conditions."""
    ctx = "\n" + res.describe() + ("\ntranscript:\n" + conn.transcript() if conn else "")
    wanted = {condition} if isinstance(condition, str) else set(condition)
    assert res.condition in wanted, "expected stream error %s, got %r%s" % (sorted(wanted), res.condition, ctx)
    assert res.text_ns == NS_STREAMS, "stream error <%s/> without <text xmlns='%s'>%s" % (
        res.condition, NS_STREAMS, ctx)
    assert res.got_header, "stream error sent without opening the stream first (RFC 6120 4.9.1.2)" + ctx
    assert res.close_tag, "stream error not followed by </stream:stream>" + ctx
