"""session2 with the real xmpp.js client (@xmpp/client 0.14.0, npm) through s2proxy: SASL2 (XEP-0388),
Bind2 (XEP-0386), FAST (XEP-0484), inline Stream Management (XEP-0198), local SCRAM, and raw-socket
clients for what xmpp.js cannot be made to do (FAST count replay, SCRAM-SHA-256, a failed attempt
followed by a second <authenticate> on the same stream). The wire formats are those of
/work/shared/design/PROTOCOLS.md section 1.

xmpp.js runs in tests/integration/xmppjs/ (driver.mjs, driven through jsclient.py); `npm ci` is
run there once per session when node_modules is missing. Proxy only: skipped with S2_TARGET=direct
(Prosody 0.12 and ejabberd 23 offer no SASL2).
"""
import asyncio
import base64
import hashlib
import hmac
import os
import time
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import pytest

from harness import free_closed_port, scrape_metrics
from jsclient import (NS_BIND2, NS_FAST, NS_SASL, NS_SASL2, NS_SM, NS_STREAM, DriverError, XmppJs,
                      ensure_node_modules)
from rawxmpp import RawXMPP, XMPPTimeout, local, ns_of, q
from xmppclient import PASSWORDS, Client, body_of, has_body, msg_xml, new_id, run_async, short

HT = "HT-SHA-256-NONE"
NS_PING = "urn:xmpp:ping"


@pytest.fixture(autouse=True)
def _proxy_only(mode):
    if mode == "direct":
        pytest.skip("session2 (SASL2/Bind2/FAST) is what s2proxy adds: the upstream offers none of it")


_node_state = {}


@pytest.fixture
def js_factory(request):
    """Start xmpp.js driver processes: js_factory(cafile) -> XmppJs. All are closed at the end."""
    if "ready" not in _node_state:
        _node_state["ready"] = ensure_node_modules()
    if _node_state["ready"] is not None:
        pytest.fail("xmpp.js is not available: %s" % _node_state["ready"], pytrace=False)
    drivers = []

    def make(cafile=None):
        d = XmppJs(cafile=cafile)
        drivers.append(d)
        return d

    yield make
    for d in drivers:
        d.close()


@pytest.fixture
def js(js_factory, target):
    """One xmpp.js driver that trusts the main proxy's self-signed certificate."""
    return js_factory(target.cafile)


@pytest.fixture
def private(proxy_factory, js_factory):
    """A proxy instance of the test's own: empty credential vault, own login throttle (the proxy backs
    off after a few failed logins per source address, and every test connects from 127.0.0.1, so
    tests that fail logins on purpose must not share the main proxy). Returns (target, xmpp.js driver)."""
    p = proxy_factory.start()
    return p.target(), js_factory(p.cert)


def ua():
    return str(uuid.uuid4())


def resource_of(jid):
    return jid.split("/", 1)[1] if "/" in jid else None


def child(el, ns, tag):
    return el.find(q(ns, tag)) if el is not None else None


def fail_ctx(tr, extra="", raw=False):
    return "%s\nxmpp.js trace:\n%s" % (extra, tr.dump(raw=raw))


def login_trace(drv, name, target, user="alice", **kw):
    """Start an xmpp.js client; on failure the assertion carries its trace."""
    try:
        st = drv.start(name, target, user, **kw)
    except DriverError as e:
        try:
            tr = drv.trace(name)
            raise AssertionError("%s\n%s" % (e, fail_ctx(tr))) from None
        except DriverError:
            raise e from None
    return st, drv.trace(name)


def js_wait_message(drv, name, text, timeout=5.0, since=0):
    """xmpp.js client `name` receives a message with this body; on failure the assertion carries
    the client's trace (from entry `since`)."""
    try:
        return drv.wait_message(name, text, timeout)
    except DriverError as e:
        raise AssertionError("%s\n%s" % (e, fail_ctx(drv.trace(name, since), raw=True))) from None


def sasl2_features(tr):
    """The <authentication xmlns='urn:xmpp:sasl:2'/> feature the client saw last before authenticating."""
    feats = [e for e in tr.find("in", NS_STREAM, "features") if child(e.el, NS_SASL2, "authentication") is not None]
    return child(feats[-1].el, NS_SASL2, "authentication") if feats else None


def mechanisms_of(auth_feature):
    return [m.text for m in auth_feature.findall(q(NS_SASL2, "mechanism"))] if auth_feature is not None else []


def fast_mechanisms_of(auth_feature):
    inline = child(auth_feature, NS_SASL2, "inline")
    fast = child(inline, NS_FAST, "fast")
    return [m.text for m in fast.findall(q(NS_FAST, "mechanism"))] if fast is not None else []


def authenticates(tr):
    return tr.find("out", NS_SASL2, "authenticate")


def success_of(tr):
    s = tr.find("in", NS_SASL2, "success")
    return s[-1] if s else None


def failure_condition(el):
    conds = [local(c.tag) for c in el if local(c.tag) != "text"]
    return conds[0] if conds else None


def check_no_restart_after_success(tr, succ):
    """SASL2: no stream restart after <success/>; <stream:features/> follow on the same stream."""
    after = tr.after(succ)
    assert not after.stream_opens(), "the client restarted the stream after SASL2 <success/>" + fail_ctx(tr)
    assert "open" not in after.statuses(), "a new stream header arrived after SASL2 <success/>" + fail_ctx(tr)
    feats = after.first("in", NS_STREAM, "features")
    assert feats is not None, "no <stream:features/> after SASL2 <success/>" + fail_ctx(tr)
    return feats


# ---- raw clients: stream with `from`, SASL2, SCRAM, FAST ---------------------------------------------
def header(domain, frm=None):
    return ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='%s' to=%s%s "
            "version='1.0'>" % (NS_STREAM, quoteattr(domain), " from=%s" % quoteattr(frm) if frm else ""))


def raw_secure(target, frm=None, timeout=10):
    """STARTTLS (no `from` before TLS, RFC 6120 4.7.1), then the secured stream with `from`."""
    c = RawXMPP.connect(target.host, target.starttls_port, target.domain, timeout=timeout)
    c.open_stream(header=header(target.domain))
    c.read_features()
    c.starttls()
    c.open_stream(header=header(target.domain, frm))
    c.read_features()
    return c


def raw_sasl1_mechanisms(c):
    return c.mechanisms()


def raw_sasl2_feature(c):
    return child(c.features, NS_SASL2, "authentication")


def b64(b):
    return base64.b64encode(b).decode()


def user_agent_xml(ua_id, software="s2it-raw"):
    return "<user-agent id=%s><software>%s</software><device>pytest</device></user-agent>" % (quoteattr(ua_id),
                                                                                              software)


def sasl2_authenticate_xml(mechanism, initial=None, ua_id=None, extra=""):
    return "<authenticate xmlns='%s' mechanism=%s>%s%s%s</authenticate>" % (
        NS_SASL2, quoteattr(mechanism),
        "<initial-response>%s</initial-response>" % b64(initial) if initial is not None else "",
        user_agent_xml(ua_id) if ua_id else "", extra)


def bind2_xml(tag, sm=False):
    return "<bind xmlns='%s'><tag>%s</tag>%s</bind>" % (
        NS_BIND2, escape(tag), "<enable xmlns='%s' resume='true'/>" % NS_SM if sm else "")


def read_sasl2(c, timeout=10):
    return c.wait_for(lambda e: ns_of(e.tag) == NS_SASL2, timeout, "SASL2 answer")


def raw_ping(c, timeout=5):
    pid = new_id("ping")
    c.send("<iq xmlns='jabber:client' type='get' id='%s' to=%s><ping xmlns='%s'/></iq>" % (
        pid, quoteattr(c.domain), NS_PING))
    el = c.wait_for(lambda e: local(e.tag) == "iq" and e.get("id") == pid, timeout, "ping result")
    return el.get("type")


class Scram:
    """RFC 5802 client (no channel binding: gs2 header 'n,,')."""

    def __init__(self, hashname, user, password):
        self.h = hashname
        self.user = user
        self.password = password.encode()
        self.cnonce = b64(os.urandom(18))
        self.first_bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), self.cnonce)

    def client_first(self):
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first):
        sf = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        assert attrs["r"].startswith(self.cnonce) and len(attrs["r"]) > len(self.cnonce), \
            "server nonce does not extend the client nonce: %r" % sf
        self.iterations = int(attrs["i"])
        salt = base64.b64decode(attrs["s"])
        salted = hashlib.pbkdf2_hmac(self.h, self.password, salt, self.iterations)
        client_key = hmac.new(salted, b"Client Key", self.h).digest()
        stored_key = hashlib.new(self.h, client_key).digest()
        without_proof = "c=%s,r=%s" % (b64(b"n,,"), attrs["r"])
        auth_msg = ("%s,%s,%s" % (self.first_bare, sf, without_proof)).encode()
        sig = hmac.new(stored_key, auth_msg, self.h).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        server_key = hmac.new(salted, b"Server Key", self.h).digest()
        self.server_signature = hmac.new(server_key, auth_msg, self.h).digest()
        return ("%s,p=%s" % (without_proof, b64(proof))).encode()

    def verify_final(self, server_final):
        sf = server_final.decode()
        assert sf == "v=" + b64(self.server_signature), "wrong SCRAM server signature: %r" % sf


def scram_sasl1(c, hashname, mech, user, password):
    """SASL1 SCRAM. Returns ('success', None, scram) or ('failure', condition, scram)."""
    s = Scram(hashname, user, password)
    c.send("<auth xmlns='%s' mechanism='%s'>%s</auth>" % (NS_SASL, mech, b64(s.client_first())))
    el = c.wait_for(lambda e: ns_of(e.tag) == NS_SASL, 10, "SCRAM server-first")
    if local(el.tag) == "failure":
        return "failure", failure_condition(el), s
    assert local(el.tag) == "challenge", c.transcript()
    c.send("<response xmlns='%s'>%s</response>" % (NS_SASL, b64(s.client_final(base64.b64decode(el.text or "")))))
    el = c.wait_for(lambda e: ns_of(e.tag) == NS_SASL, 10, "SCRAM outcome")
    if local(el.tag) == "failure":
        return "failure", failure_condition(el), s
    assert local(el.tag) == "success", c.transcript()
    s.verify_final(base64.b64decode(el.text or ""))
    return "success", None, s


def scram_sasl2(c, hashname, mech, user, password, ua_id, extra=""):
    """SASL2 SCRAM. Returns ('success', <success/>, scram) or ('failure', condition, scram)."""
    s = Scram(hashname, user, password)
    c.send(sasl2_authenticate_xml(mech, s.client_first(), ua_id, extra))
    el = read_sasl2(c)
    if local(el.tag) == "failure":
        return "failure", failure_condition(el), s
    assert local(el.tag) == "challenge", c.transcript()
    c.send("<response xmlns='%s'>%s</response>" % (NS_SASL2, b64(s.client_final(base64.b64decode(el.text or "")))))
    el = read_sasl2(c)
    if local(el.tag) == "failure":
        return "failure", failure_condition(el), s
    assert local(el.tag) == "success", c.transcript()
    add = child(el, NS_SASL2, "additional-data")
    assert add is not None and add.text, "SASL2 SCRAM <success/> without the server-final message in " \
                                         "<additional-data/>:\n" + c.transcript()
    s.verify_final(base64.b64decode(add.text))
    return "success", el, s


def ht_initial(user, token):
    """HT-SHA-256-NONE initial response: authcid NUL HMAC-SHA-256(token, "Initiator"), cb-data empty."""
    return user.encode() + b"\0" + hmac.new(token.encode(), b"Initiator", hashlib.sha256).digest()


def ht_responder(token):
    return hmac.new(token.encode(), b"Responder", hashlib.sha256).digest()


# =====================================================================================================
# a. SASL2 + Bind2 + inline SM with the password
# =====================================================================================================
def test_sasl2_bind2_inline_sm_password_login(private):
    """First login of the account (fresh proxy, empty vault): xmpp.js authenticates with SASL2
    PLAIN, binds with Bind2 and enables SM inline, all in <success/>, no stream restart; the resource
    is stable per (tag, user-agent id) and never contains the user-agent id."""
    t, js = private
    ua1 = ua()
    st, tr = login_trace(js, "a1", t, resource="phone", user_agent=ua1)

    feat = sasl2_features(tr)
    assert feat is not None, "no SASL2 <authentication/> in the stream features" + fail_ctx(tr)
    assert "PLAIN" in mechanisms_of(feat), fail_ctx(tr)
    inline = child(feat, NS_SASL2, "inline")
    bind_offer = child(inline, NS_BIND2, "bind")
    assert bind_offer is not None, "SASL2 <inline/> does not offer Bind2" + fail_ctx(tr)
    assert NS_SM in [f.get("var") for f in bind_offer.iter(q(NS_BIND2, "feature"))], \
        "Bind2 <inline/> does not list urn:xmpp:sm:3" + fail_ctx(tr)

    auths = authenticates(tr)
    assert len(auths) == 1, "want one <authenticate/>" + fail_ctx(tr)
    assert auths[0].el.get("mechanism") == "PLAIN", "first login of the account should be SASL2 PLAIN" + fail_ctx(tr)
    assert not tr.find("out", NS_SASL, "auth"), "xmpp.js fell back to SASL1" + fail_ctx(tr)
    a = auths[0].el
    assert child(a, NS_SASL2, "user-agent") is not None and child(a, NS_SASL2, "user-agent").get("id") == ua1
    b = child(a, NS_BIND2, "bind")
    assert b is not None and child(b, NS_BIND2, "tag").text == "phone", fail_ctx(tr)
    assert child(b, NS_SM, "enable") is not None, "xmpp.js did not ask for SM inline" + fail_ctx(tr)

    succ = success_of(tr)
    assert succ is not None, fail_ctx(tr)
    aid = child(succ.el, NS_SASL2, "authorization-identifier")
    assert aid is not None and aid.text, "<success/> without <authorization-identifier/>" + fail_ctx(tr)
    jid = aid.text
    assert jid.startswith("alice@%s/" % t.domain), "not a full JID of alice: %r" % jid + fail_ctx(tr)
    res = resource_of(jid)
    assert res.startswith("phone"), "resource %r does not start with the tag 'phone'" % res
    assert ua1 not in jid and ua1.replace("-", "") not in jid, "the user-agent id leaks into the resource %r" % jid
    bound = child(succ.el, NS_BIND2, "bound")
    assert bound is not None, "no <bound xmlns='urn:xmpp:bind:0'/> in <success/>" + fail_ctx(tr)
    enabled = child(bound, NS_SM, "enabled")
    assert enabled is not None, "no inline <enabled xmlns='urn:xmpp:sm:3'/> in <bound/>" + fail_ctx(tr)
    assert enabled.get("resume") in ("true", "1"), "SM enabled without resume" + fail_ctx(tr)
    assert enabled.get("id"), "resumable SM without an id" + fail_ctx(tr)
    assert st["jid"] == jid and st["sm"]["enabled"] and st["sm"]["id"] == enabled.get("id"), st
    check_no_restart_after_success(tr, succ)
    assert len(tr.stream_opens()) == 2, "want exactly 2 stream headers from the client (before and after " \
                                        "STARTTLS)" + fail_ctx(tr)
    assert js.call("ping", name="a1")["ms"] >= 0
    js.stop("a1")

    # same user-agent id + tag: same resource
    st2, tr2 = login_trace(js, "a2", t, resource="phone", user_agent=ua1)
    assert st2["jid"] == jid, "same (tag, user-agent id) gave %s, first login %s" % (st2["jid"], jid) + fail_ctx(tr2)
    js.stop("a2")
    # another user-agent id, same tag: another resource
    ua2 = ua()
    st3, tr3 = login_trace(js, "a3", t, resource="phone", user_agent=ua2)
    assert st3["jid"] != jid, "a different user-agent id got the same resource %s" % jid + fail_ctx(tr3)
    assert resource_of(st3["jid"]).startswith("phone") and ua2 not in st3["jid"], st3["jid"]
    js.stop("a3")


# =====================================================================================================
# b. messages both ways
# =====================================================================================================
def test_messages_both_ways_xmppjs_and_slixmpp(target, upstream_target, js):
    async def body(pool):
        bob = await pool.connect(upstream_target, "bob", "s2js")
        st, tr = await asyncio.to_thread(login_trace, js, "alice", target, resource="msg", user_agent=ua())
        alice_jid = st["jid"]
        await asyncio.to_thread(js.send, "alice", "<presence/>")
        # bob -> alice (full JID, then bare JID)
        for to in (alice_jid, "alice@%s" % target.domain):
            text = "to xmpp.js %s %s" % (to, uuid.uuid4().hex[:8])
            mid = new_id("js")
            bob.send_xml(msg_xml(to, text, mid=mid))
            el, count = await asyncio.to_thread(js_wait_message, js, "alice", text, 5.0)
            assert el.get("id") == mid, short(el)
            assert el.get("from") == bob.full_jid, short(el)
            assert (el.get("to") or "").split("/")[0] == "alice@%s" % target.domain, short(el)
        # alice -> bob (bare, then full)
        for to in (bob.bare, bob.full_jid):
            text = "from xmpp.js <&> %s %s" % (to, uuid.uuid4().hex[:8])
            mid = new_id("js")
            await asyncio.to_thread(js.send, "alice", msg_xml(to, text, mid=mid).replace(
                " xmlns='jabber:client'", ""))
            el = await bob.wait_msg(has_body(text), 5, what="xmpp.js alice's message")
            assert el.get("id") == mid, short(el)
            assert el.get("from") == alice_jid, "from should be alice's bound JID %s: %s" % (alice_jid, short(el))
        await asyncio.to_thread(js.stop, "alice")

    run_async(body, 40)


def test_direct_tls_sasl2_login(target, js_factory):
    """xmpps:// (XEP-0368 direct TLS port): no STARTTLS, one stream header, SASL2 + Bind2 at once."""
    # xmpp.js checks a direct TLS certificate against the service host (127.0.0.1 here), not the
    # XMPP domain: no verification for this one (the STARTTLS tests verify the proxy's certificate)
    js = js_factory(None)
    st, tr = login_trace(js, "d", target, resource="direct", user_agent=ua(), direct_tls=True)
    assert not tr.find("out", "urn:ietf:params:xml:ns:xmpp-tls", "starttls"), fail_ctx(tr)
    assert len(tr.stream_opens()) == 1, fail_ctx(tr)
    succ = success_of(tr)
    assert succ is not None and child(succ.el, NS_BIND2, "bound") is not None, fail_ctx(tr)
    check_no_restart_after_success(tr, succ)
    assert st["jid"].startswith("alice@%s/direct" % target.domain), st
    assert js.call("ping", name="d")["ms"] >= 0
    js.stop("d")


# =====================================================================================================
# c. FAST
# =====================================================================================================
def fast_password_login(js, target, name, ua_id, resource="fast"):
    """Password login that must yield a FAST token (xmpp.js requests one when FAST is offered)."""
    st, tr = login_trace(js, name, target, resource=resource, user_agent=ua_id)
    feat = sasl2_features(tr)
    assert feat is not None, fail_ctx(tr)
    assert HT in fast_mechanisms_of(feat), "SASL2 <inline/> does not offer <fast><mechanism>%s" % HT + fail_ctx(tr)
    a = authenticates(tr)[-1].el
    rt = child(a, NS_FAST, "request-token")
    assert rt is not None and rt.get("mechanism") == HT, "xmpp.js did not request a token" + fail_ctx(tr)
    succ = success_of(tr)
    tok = child(succ.el, NS_FAST, "token")
    assert tok is not None and tok.get("token"), "no <token xmlns='urn:xmpp:fast:0'/> in <success/>" + fail_ctx(tr)
    assert tok.get("expiry"), "FAST token without expiry" + fail_ctx(tr)
    assert st["token"] and st["token"]["token"] == tok.get("token"), st
    return st, tr, st["token"]


def assert_token_not_logged(target, *tokens):
    log = target.proc.log_text()
    for t in tokens:
        assert t["token"] not in log, "a FAST token appears in the proxy log %s" % target.proc.logfile


def test_fast_token_login(target, js):
    ua1 = ua()
    st1, tr1, token = fast_password_login(js, target, "p", ua1)
    js.stop("p")

    # login 2: the token only -- the password given to xmpp.js is wrong, so success proves FAST
    st2, tr2 = login_trace(js, "f", target, password="not-the-password-" + uuid.uuid4().hex[:6],
                           resource="fast", user_agent=ua1, token=token)
    auths = authenticates(tr2)
    assert [x.el.get("mechanism") for x in auths] == [HT], "want exactly one HT-SHA-256-NONE <authenticate/>" + \
        fail_ctx(tr2)
    assert child(auths[0].el, NS_FAST, "fast") is not None, fail_ctx(tr2)
    assert not tr2.find("in", NS_SASL2, "challenge"), "FAST must not need a challenge round trip" + fail_ctx(tr2)
    succ = success_of(tr2)
    assert succ is not None, fail_ctx(tr2)
    add = child(succ.el, NS_SASL2, "additional-data")
    assert add is not None and base64.b64decode(add.text or "") == ht_responder(token["token"]), \
        "<additional-data/> is not HMAC-SHA-256(token, 'Responder')" + fail_ctx(tr2)
    assert st2["jid"] == st1["jid"], "FAST login got %s, password login %s (same tag + user-agent id)" % (
        st2["jid"], st1["jid"])
    assert child(child(succ.el, NS_BIND2, "bound"), NS_SM, "enabled") is not None, fail_ctx(tr2)
    check_no_restart_after_success(tr2, succ)
    assert js.call("ping", name="f")["ms"] >= 0
    js.stop("f")
    assert_token_not_logged(target, token)


def test_fast_return_takes_back_the_kept_link_without_an_upstream_login(proxy_factory, js_factory,
                                                                        upstream_target):
    """docs/architecture.md §26: alice's only device leaves; the anchor, which rode its link, keeps
    that upstream session instead of logging in one of its own. The device comes back with FAST
    (same user-agent, same Bind2 tag: same resource) and takes its session back: the upstream sees
    no login at all (s2proxy_upstream_logins_total unchanged), the device gets the same full JID,
    and messages flow both ways on it."""
    mport = free_closed_port()
    p = proxy_factory.start({"metrics": "127.0.0.1:%d" % mport})
    target, js = p.target(), js_factory(p.cert)

    async def body(pool):
        bob = await pool.connect(upstream_target, "bob", "kept-" + uuid.uuid4().hex[:6])
        ua1 = ua()
        st1, _, token = await asyncio.to_thread(fast_password_login, js, target, "p", ua1, "kept")
        await wait_for(lambda: "anchor.ready" in p.log_text(), 10, "alice's anchor")
        assert "anchor.rides_device_link" in p.log_text(), "the anchor rides the device's link"
        await asyncio.to_thread(js.stop, "p")
        await wait_for(lambda: "anchor.keeps_device_link" in p.log_text(), 10,
                       "the anchor keeping the device's link (%s)" % p.logfile)
        await asyncio.sleep(0.5)
        before = scrape_metrics(mport)
        logins = before.get('s2proxy_upstream_logins_total{result="ok"}', 0)
        assert logins >= 1, before

        t0 = time.monotonic()
        st2, tr2 = await asyncio.to_thread(login_trace, js, "f", target, resource="kept", user_agent=ua1,
                                           token=token)
        took = time.monotonic() - t0
        assert [x.el.get("mechanism") for x in authenticates(tr2)] == [HT], fail_ctx(tr2)
        assert st2["jid"] == st1["jid"], "same resource: %s, then %s" % (st1["jid"], st2["jid"])
        assert "device.takes_kept_link" in p.log_text(), "the device took its kept link back"
        after = scrape_metrics(mport)
        assert after.get('s2proxy_upstream_logins_total{result="ok"}', 0) == logins, \
            "no upstream login for the returning device: %s -> %s" % (logins, after)
        assert after.get('s2proxy_anchor_device_links_total{event="given_back"}', 0) == 1, after
        print("FAST login onto the kept link: %.1f ms (xmpp.js, TLS connect included)" % (took * 1000))

        # Both ways on the session it took back.
        t1 = "to the returned device %s" % uuid.uuid4().hex[:8]
        bob.send_xml(msg_xml(st2["jid"].split("/")[0], t1))
        await asyncio.to_thread(js_wait_message, js, "f", t1, 5.0)
        t2 = "from the returned device %s" % uuid.uuid4().hex[:8]
        await asyncio.to_thread(js.send, "f", "<message to=%s type='chat'><body>%s</body></message>" % (
            quoteattr(bob.full_jid), t2))
        el = await bob.wait_msg(has_body(t2), 5, what="alice's message on the kept link")
        assert el.get("from") == st2["jid"], short(el)
        await asyncio.to_thread(js.stop, "f")
        assert_token_not_logged(target, token)

    run_async(body, 60)


async def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for " + what)
        await asyncio.sleep(0.05)


def test_fast_garbage_token_falls_back_to_password(private):
    target, js = private
    ua1 = ua()
    garbage = {"mechanism": HT, "token": "s2it-garbage-" + uuid.uuid4().hex, "expiry": "2099-01-01T00:00:00Z"}
    st, tr = login_trace(js, "g", target, resource="fast", user_agent=ua1, token=garbage)
    auths = authenticates(tr)
    assert len(auths) == 2 and auths[0].el.get("mechanism") == HT, \
        "want a FAST attempt then a password <authenticate/>" + fail_ctx(tr)
    fails = tr.find("in", NS_SASL2, "failure")
    assert fails and fails[0].n > auths[0].n and fails[0].n < auths[1].n, fail_ctx(tr)
    assert failure_condition(fails[0].el) == "not-authorized", fail_ctx(tr)
    assert child(fails[0].el, NS_SASL, "not-authorized") is not None, \
        "<not-authorized/> must be in urn:ietf:params:xml:ns:xmpp-sasl" + fail_ctx(tr)
    assert auths[1].el.get("mechanism") != HT
    # same stream: no new stream header between the failed FAST attempt and the password
    between = [e for e in tr.stream_opens() if auths[0].n < e.n < auths[1].n]
    assert not between, "xmpp.js opened a new stream before retrying" + fail_ctx(tr)
    assert child(auths[1].el, NS_FAST, "request-token") is not None, fail_ctx(tr)
    assert st["tokenDeleted"], "xmpp.js did not drop the refused token"
    assert st["jid"] and st["jid"].startswith("alice@%s/fast" % target.domain), st
    succ = success_of(tr)
    assert succ.n > auths[1].n and child(succ.el, NS_FAST, "token") is not None, \
        "the password login after the refused token should get a new token" + fail_ctx(tr)
    js.stop("g")


def test_fast_token_bound_to_user_agent(private):
    target, js = private
    ua1, ua2 = ua(), ua()
    _, _, token = fast_password_login(js, target, "p", ua1)
    js.stop("p")
    st, tr = login_trace(js, "other", target, resource="fast", user_agent=ua2, token=token)
    auths = authenticates(tr)
    assert auths and auths[0].el.get("mechanism") == HT, "xmpp.js did not try the token" + fail_ctx(tr)
    fails = tr.find("in", NS_SASL2, "failure")
    assert fails and fails[0].n > auths[0].n and (len(auths) < 2 or fails[0].n < auths[1].n), \
        "a token presented with another user-agent id was accepted" + fail_ctx(tr)
    assert failure_condition(fails[0].el) in ("not-authorized", "credentials-expired"), fail_ctx(tr)
    # xmpp.js then falls back to the password on the same stream
    assert len(auths) == 2 and auths[1].el.get("mechanism") != HT and st["jid"], fail_ctx(tr)
    js.stop("other")
    assert_token_not_logged(target, token)


def test_fast_count_replay_is_refused(private):
    """Raw client: HT-SHA-256-NONE computed per PROTOCOLS.md section 1 with <fast count='N'/>; the same
    authenticate replayed (same count), or an older count, must not succeed."""
    target, js = private
    ua_r = ua()
    _, _, token = fast_password_login(js, target, "p", ua_r, resource="raw")
    js.stop("p")
    frm = "alice@%s" % target.domain
    tok = token["token"]

    def fast_auth(count):
        extra = bind2_xml("raw") + "<fast xmlns='%s' count='%d'/>" % (NS_FAST, count)
        return sasl2_authenticate_xml(HT, ht_initial("alice", tok), ua_r, extra)

    def attempt(xml_text):
        with raw_secure(target, frm=frm) as c:
            assert HT in fast_mechanisms_of(raw_sasl2_feature(c)), c.transcript()
            c.send(xml_text)
            el = read_sasl2(c)
            out = (local(el.tag), el, c.transcript())
            if local(el.tag) == "success":
                c.send("</stream:stream>")
                c.read_stream_end(2)
            return out

    for count in (1, 2):
        kind, el, tx = attempt(fast_auth(count))
        assert kind == "success", "FAST with count=%d failed:\n%s" % (count, tx)
        add = child(el, NS_SASL2, "additional-data")
        assert add is not None and base64.b64decode(add.text or "") == ht_responder(tok), tx
        aid = child(el, NS_SASL2, "authorization-identifier")
        assert aid is not None and aid.text.startswith(frm + "/raw"), tx
    replay = fast_auth(2)
    for what, xml_text in (("replay of count=2", replay), ("older count=1", fast_auth(1))):
        kind, el, tx = attempt(xml_text)
        assert kind == "failure", "%s was accepted (FAST replay protection):\n%s" % (what, tx)
        assert failure_condition(el) == "not-authorized", tx
    assert_token_not_logged(target, token)


# =====================================================================================================
# d. SM resumption inline in SASL2
# =====================================================================================================
def test_sm_resume_inline_after_tcp_cut(target, upstream_target, js):
    async def body(pool):
        bob = await pool.connect(upstream_target, "bob", "smjs")
        st, tr = await asyncio.to_thread(login_trace, js, "alice", target, resource="sm", user_agent=ua())
        assert st["sm"]["enabled"] and st["sm"]["id"], "SM not enabled inline: %s" % st + fail_ctx(tr)
        alice_jid, previd = st["jid"], st["sm"]["id"]
        await asyncio.to_thread(js.send, "alice", "<presence/>")
        t0 = "before the cut %s" % uuid.uuid4().hex[:8]
        bob.send_xml(msg_xml(alice_jid, t0))
        await asyncio.to_thread(js_wait_message, js, "alice", t0, 5.0)

        cut = await asyncio.to_thread(js.call, "cut", 3.0, name="alice")
        h_at_cut = cut["sm"]["inbound"]
        await asyncio.sleep(0.3)
        t1 = "while cut %s" % uuid.uuid4().hex[:8]
        bob.send_xml(msg_xml(alice_jid, t1, mid=new_id("cut")))
        await asyncio.sleep(0.7)

        r = await asyncio.to_thread(js.call, "reconnect", 10.0, name="alice")
        trr = (await asyncio.to_thread(js.trace, "alice")).since(r["mark"])
        assert r["how"] == "resumed", "xmpp.js did not resume (%s)" % r["how"] + fail_ctx(trr)
        auths = authenticates(trr)
        assert len(auths) == 1, fail_ctx(trr)
        res_el = child(auths[0].el, NS_SM, "resume")
        assert res_el is not None and res_el.get("previd") == previd and res_el.get("h") == str(h_at_cut), \
            "want <resume previd=%s h=%d/> inside <authenticate/>" % (previd, h_at_cut) + fail_ctx(trr)
        succ = success_of(trr)
        assert succ is not None, fail_ctx(trr)
        resumed = child(succ.el, NS_SM, "resumed")
        assert resumed is not None and resumed.get("previd") == previd, \
            "no <resumed xmlns='urn:xmpp:sm:3' previd=.../> in <success/>" + fail_ctx(trr)
        assert resumed.get("h") is not None, fail_ctx(trr)
        assert child(succ.el, NS_BIND2, "bound") is None, "resumed AND bound in one <success/>" + fail_ctx(trr)
        aid = child(succ.el, NS_SASL2, "authorization-identifier")
        assert aid is not None and aid.text == alice_jid, fail_ctx(trr)

        el, _ = await asyncio.to_thread(js_wait_message, js, "alice", t1, 5.0, r["mark"])
        await asyncio.sleep(1.0)  # anything duplicated would be here by now
        bodies = [body_of(m) for m in await asyncio.to_thread(js.messages, "alice")]
        assert bodies.count(t1) == 1, "the message sent during the cut arrived %d times" % bodies.count(t1)
        assert bodies.count(t0) == 1, "the message acknowledged before the cut (h=%d) was resent" % h_at_cut
        trr = (await asyncio.to_thread(js.trace, "alice")).since(r["mark"])
        assert not trr.after(succ).find("in", NS_STREAM, "features"), \
            "stream features after a successful resume (XEP-0198: none)" + fail_ctx(trr)
        # the resumed session works both ways
        t2 = "after resume %s" % uuid.uuid4().hex[:8]
        await asyncio.to_thread(js.send, "alice", "<message to=%s type='chat'><body>%s</body></message>" % (
            quoteattr(bob.full_jid), t2))
        el = await bob.wait_msg(has_body(t2), 5, what="alice's message after the resume")
        assert el.get("from") == alice_jid, short(el)
        await asyncio.to_thread(js.stop, "alice")

    run_async(body, 45)


def test_sm_resume_inline_raw_client(target, upstream_target):
    """The same resumption as above with a raw client (no xmpp.js): what the proxy sends must be
    exactly <success/> with <resumed previd h/>, then the unacknowledged stanzas, once, and no
    stream features."""
    async def body(pool):
        bob = await pool.connect(upstream_target, "bob", "smraw")
        ua_id = ua()

        def login():
            c = raw_secure(target)
            c.send(sasl2_authenticate_xml("PLAIN", b"\0alice\0alicepw", ua_id, bind2_xml("smraw", sm=True)))
            el = read_sasl2(c)
            assert local(el.tag) == "success", c.transcript()
            enabled = child(child(el, NS_BIND2, "bound"), NS_SM, "enabled")
            assert enabled is not None and enabled.get("id"), c.transcript()
            c.read_features()
            c.send("<presence/>")  # the one stanza the proxy must count for us
            return c, child(el, NS_SASL2, "authorization-identifier").text, enabled.get("id")

        c, jid, previd = await asyncio.to_thread(login)
        t0 = "raw before the cut %s" % uuid.uuid4().hex[:8]
        bob.send_xml(msg_xml(jid, t0))
        seen = await asyncio.to_thread(read_until, c, lambda e: local(e.tag) == "message" and contains(e, t0), 5)
        h = len([e for e in seen if local(e.tag) in ("message", "presence", "iq")])  # XEP-0198 'h'
        c.sock.close()  # no </stream:stream>, no TLS close_notify (Python never sends it on close())
        await asyncio.sleep(0.3)
        t1 = "raw while cut %s" % uuid.uuid4().hex[:8]
        bob.send_xml(msg_xml(jid, t1))
        await asyncio.sleep(0.5)

        def resume():
            c2 = raw_secure(target)
            c2.send(sasl2_authenticate_xml("PLAIN", b"\0alice\0alicepw", ua_id,
                                           "<resume xmlns='%s' previd=%s h='%d'/>" % (NS_SM, quoteattr(previd), h) +
                                           bind2_xml("smraw", sm=True)))
            el = read_sasl2(c2)
            seen = []
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                try:
                    seen.append(c2.next_element(max(0.05, end - time.monotonic())))
                except Exception:
                    break
            return c2, el, seen

        c2, el, seen = await asyncio.to_thread(resume)
        try:
            assert local(el.tag) == "success", c2.transcript()
            resumed = child(el, NS_SM, "resumed")
            assert resumed is not None and resumed.get("previd") == previd, c2.transcript()
            assert resumed.get("h") == "1", "the proxy handled 1 stanza (presence) from us: %s" % c2.transcript()
            assert child(el, NS_BIND2, "bound") is None, c2.transcript()
            assert child(el, NS_SASL2, "authorization-identifier").text == jid, c2.transcript()
            msgs = [e for e in seen if local(e.tag) == "message"]
            assert sum(contains(m, t1) for m in msgs) == 1, "want the message sent during the cut once:\n" + \
                c2.transcript()
            assert not any(contains(m, t0) for m in msgs), "acknowledged (h=%d) message resent:\n" % h + \
                c2.transcript()
            assert not [e for e in seen if e.tag == q(NS_STREAM, "features")], \
                "stream features after a successful resume:\n" + c2.transcript()
            t2 = "raw after resume %s" % uuid.uuid4().hex[:8]
            c2.send(msg_xml(bob.full_jid, t2))
            got = await bob.wait_msg(has_body(t2), 5)
            assert got.get("from") == jid, short(got)
        finally:
            c2.close()

    run_async(body, 30)


def contains(el, text):
    return text in ET.tostring(el, encoding="unicode")


def read_until(c, pred, timeout, settle=0.3):
    """Every top-level element until one matches `pred`, then whatever else arrives within `settle` s."""
    seen = []
    end = time.monotonic() + timeout
    while not (seen and pred(seen[-1])):
        seen.append(c.next_element(max(0.05, end - time.monotonic())))
    end = time.monotonic() + settle
    while time.monotonic() < end:
        try:
            seen.append(c.next_element(max(0.05, end - time.monotonic())))
        except XMPPTimeout:
            break
    return seen


def test_sm_resume_unknown_previd_fails_and_binds(target, upstream_target, js):
    async def body(pool):
        bob = await pool.connect(upstream_target, "bob", "smjs2")
        bogus = "s2it-unknown-" + uuid.uuid4().hex
        st, tr = await asyncio.to_thread(login_trace, js, "alice", target, resource="fresh", user_agent=ua(),
                                         sm_id=bogus, sm_inbound=3)
        a = authenticates(tr)[-1].el
        res_el = child(a, NS_SM, "resume")
        assert res_el is not None and res_el.get("previd") == bogus, fail_ctx(tr)
        assert child(a, NS_BIND2, "bind") is not None, fail_ctx(tr)
        succ = success_of(tr)
        assert succ is not None, fail_ctx(tr)
        assert child(succ.el, NS_SM, "failed") is not None, \
            "no <failed xmlns='urn:xmpp:sm:3'/> in <success/> for an unknown previd" + fail_ctx(tr)
        assert child(succ.el, NS_SM, "resumed") is None, fail_ctx(tr)
        bound = child(succ.el, NS_BIND2, "bound")
        assert bound is not None, "the <bind/> next to the failed <resume/> was not processed" + fail_ctx(tr)
        assert child(bound, NS_SM, "enabled") is not None, fail_ctx(tr)
        aid = child(succ.el, NS_SASL2, "authorization-identifier").text
        assert aid.startswith("alice@%s/fresh" % target.domain) and aid == st["jid"], aid
        check_no_restart_after_success(tr, succ)
        text = "to the new session %s" % uuid.uuid4().hex[:8]
        bob.send_xml(msg_xml(st["jid"], text))
        await asyncio.to_thread(js_wait_message, js, "alice", text, 5.0)
        await asyncio.to_thread(js.stop, "alice")

    run_async(body, 30)


# =====================================================================================================
# e. local SCRAM once the account is known
# =====================================================================================================
def make_known(target, user="alice", wait=5.0):
    """A PLAIN login through the proxy (SASL1, verified upstream): the vault learns the account. The
    vault is written after the login succeeds, so wait (bounded) until a stream whose `from` names
    the account is offered SCRAM."""
    jid = "%s@%s" % (user, target.domain)
    with RawXMPP.connect(target.host, target.starttls_port, target.domain, timeout=10) as c:
        c.login(user, PASSWORDS[user], resource="vault")
    end = time.monotonic() + wait
    while True:
        with raw_secure(target, frm=jid) as c:
            if "SCRAM-SHA-1" in raw_sasl1_mechanisms(c):
                return jid
        assert time.monotonic() < end, "SCRAM still not offered to %s %.0fs after its PLAIN login" % (jid, wait)
        time.sleep(0.05)


@pytest.fixture
def alice_known(target):
    return make_known(target)


SCRAMS = [("SCRAM-SHA-1", "sha1"), ("SCRAM-SHA-256", "sha256")]


def test_scram_offered_only_for_known_account(target, alice_known):
    """PROTOCOLS.md section 1: SCRAM when the stream `from` names an account the vault knows; never
    for an account it does not know (it could not verify it); never -PLUS (TLS is terminated here)."""
    with raw_secure(target, frm=alice_known) as c:
        m1, m2 = raw_sasl1_mechanisms(c), mechanisms_of(raw_sasl2_feature(c))
    for mech, _ in SCRAMS:
        assert mech in m1, "%s not offered (SASL1) although the stream `from` names a known account: %s" % (mech, m1)
        assert mech in m2, "%s not offered (SASL2) although the stream `from` names a known account: %s" % (mech, m2)
    assert not [m for m in m1 + m2 if m.endswith("-PLUS")], "channel binding offered across TLS termination"
    assert "PLAIN" in m1 and "PLAIN" in m2
    frm = "nobody-%s@%s" % (uuid.uuid4().hex[:6], target.domain)
    with raw_secure(target, frm=frm) as c:
        ms = raw_sasl1_mechanisms(c) + mechanisms_of(raw_sasl2_feature(c))
    assert not [m for m in ms if m.startswith("SCRAM")], \
        "SCRAM offered for from=%r, an account the proxy cannot verify: %s" % (frm, ms)


def test_no_scram_without_from_when_disabled(proxy_factory):
    """--scram-without-from false: a stream without `from` gets PLAIN only, as PROTOCOLS.md section 1
    says (the default, true, offers SCRAM to such streams for clients like slixmpp)."""
    t = proxy_factory.start({"scram-without-from": "false"}).target()
    known = make_known(t)
    with raw_secure(t) as c:
        ms = raw_sasl1_mechanisms(c) + mechanisms_of(raw_sasl2_feature(c))
    assert ms and not [m for m in ms if m.startswith("SCRAM")], "SCRAM offered without `from`: %s" % ms
    with raw_secure(t, frm=known) as c:
        assert "SCRAM-SHA-1" in raw_sasl1_mechanisms(c), c.transcript()


@pytest.mark.parametrize("mech,hashname", SCRAMS, ids=["sha1", "sha256"])
def test_scram_sasl1_raw(private, mech, hashname):
    target, _ = private
    alice_known = make_known(target)
    with raw_secure(target, frm=alice_known) as c:
        assert mech in raw_sasl1_mechanisms(c), "%s not offered: %s" % (mech, raw_sasl1_mechanisms(c))
        result, cond, s = scram_sasl1(c, hashname, mech, "alice", "alicepw")
        assert result == "success", "%s with the right password: %s\n%s" % (mech, cond, c.transcript())
        assert s.iterations >= 4096, "local SCRAM verifier with only %d iterations" % s.iterations
        c.open_stream(header=header(target.domain, alice_known))
        c.read_features()
        jid = c.bind("scram1-" + hashname)
        assert jid.startswith(alice_known + "/"), jid
        assert raw_ping(c) == "result", c.transcript()
    with raw_secure(target, frm=alice_known) as c:
        result, cond, _ = scram_sasl1(c, hashname, mech, "alice", "wrong-" + uuid.uuid4().hex[:6])
        assert (result, cond) == ("failure", "not-authorized"), c.transcript()


@pytest.mark.parametrize("mech,hashname", SCRAMS, ids=["sha1", "sha256"])
def test_scram_sasl2_raw(target, alice_known, mech, hashname):
    with raw_secure(target, frm=alice_known) as c:
        assert mech in mechanisms_of(raw_sasl2_feature(c)), c.transcript()
        result, succ, s = scram_sasl2(c, hashname, mech, "alice", "alicepw", ua(), bind2_xml("scram2"))
        assert result == "success", "SASL2 %s: %s\n%s" % (mech, succ, c.transcript())
        aid = child(succ, NS_SASL2, "authorization-identifier").text
        assert aid.startswith(alice_known + "/scram2"), aid
        assert child(succ, NS_BIND2, "bound") is not None, c.transcript()
        c.read_features()  # no restart
        assert raw_ping(c) == "result", c.transcript()


@pytest.mark.parametrize("with_from", [False, True], ids=["stock", "stream-from"])
def test_slixmpp_scram_sha1_sasl1(target, upstream_target, alice_known, with_from):
    """slixmpp 1.8.3 (SASL1 only) restricted to SCRAM-SHA-1, after alice's PLAIN login: stock (no
    stream `from`; SCRAM offered by the default --scram-without-from) and with a `from` (RFC 6120
    4.7.1 SHOULD)."""
    async def body(pool):
        bob = await pool.connect(upstream_target, "bob", "scram")
        alice = Client(target, "alice", "slix-scram", sasl_mech="SCRAM-SHA-1")
        if with_from:
            alice.x.stream_header = alice.x.stream_header[:-1] + " from='%s'>" % alice_known
        pool.clients.append(alice)
        await alice.connect()
        assert alice.x.plugin["feature_mechanisms"].mech.name == "SCRAM-SHA-1"
        text = "slixmpp scram %s" % uuid.uuid4().hex[:8]
        alice.send_xml(msg_xml(bob.full_jid, text))
        el = await bob.wait_msg(has_body(text), 5)
        assert el.get("from") == alice.full_jid, short(el)

    run_async(body, 30)


def test_slixmpp_first_logins_of_new_accounts(private):
    """Stock slixmpp (no `from`, prefers SCRAM) logging in for the first time: SCRAM cannot work for
    an account the vault does not know yet, so it must end in PLAIN and a session -- for several new
    accounts from one address in a row (failed SCRAM attempts must not lock the address out); the
    next login of the same account then uses SCRAM."""
    target, _ = private

    async def body(pool):
        used = {}
        for user in ("alice", "bob", "carol"):
            c = await pool.connect(target, user, "first", presence=False)
            used[user] = c.x.plugin["feature_mechanisms"].mech.name
            await c.disconnect()
        assert used == {"alice": "PLAIN", "bob": "PLAIN", "carol": "PLAIN"}, used
        c = await pool.connect(target, "alice", "second", presence=False)
        assert c.x.plugin["feature_mechanisms"].mech.name.startswith("SCRAM-"), \
            "second login of alice used %s" % c.x.plugin["feature_mechanisms"].mech.name

    run_async(body, 30)


def test_xmppjs_uses_scram_when_account_known(target, js, alice_known):
    """xmpp.js sends `from` after TLS and takes SCRAM-SHA-1 over PLAIN when both are offered."""
    st, tr = login_trace(js, "s", target, resource="scramjs", user_agent=ua())
    auths = authenticates(tr)
    assert [a.el.get("mechanism") for a in auths] == ["SCRAM-SHA-1"], \
        "want SASL2 SCRAM-SHA-1 for a known account" + fail_ctx(tr)
    assert tr.find("in", NS_SASL2, "challenge"), fail_ctx(tr)
    assert st["jid"].startswith("alice@%s/scramjs" % target.domain)
    js.stop("s")


# =====================================================================================================
# f. wrong password over SASL2, then the right one on the same stream
# =====================================================================================================
def test_sasl2_wrong_password_then_retry_same_stream(private):
    target, _ = private
    with raw_secure(target) as c:  # no `from`: PLAIN
        ua_id = ua()
        bad = b"\0alice\0wrong-" + uuid.uuid4().hex[:6].encode()
        c.send(sasl2_authenticate_xml("PLAIN", bad, ua_id, bind2_xml("retry")))
        el = read_sasl2(c)
        assert local(el.tag) == "failure", c.transcript()
        assert child(el, NS_SASL, "not-authorized") is not None, \
            "want <not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>:\n" + c.transcript()
        text = child(el, NS_SASL2, "text")
        assert text is not None and (text.text or "").strip(), "SASL2 <failure/> without <text/>:\n" + c.transcript()
        c.send(sasl2_authenticate_xml("PLAIN", b"\0alice\0alicepw", ua_id, bind2_xml("retry")))
        el = read_sasl2(c)
        assert local(el.tag) == "success", "second <authenticate/> on the same stream:\n" + c.transcript()
        aid = child(el, NS_SASL2, "authorization-identifier").text
        assert aid.startswith("alice@%s/retry" % target.domain), aid
        assert child(el, NS_BIND2, "bound") is not None, c.transcript()
        c.read_features()
        assert raw_ping(c) == "result", c.transcript()


def test_xmppjs_wrong_password(private):
    target, js = private
    with pytest.raises(DriverError) as ei:
        js.start("w", target, "alice", password="wrong-" + uuid.uuid4().hex[:6], resource="wrong", user_agent=ua())
    tr = js.trace("w")
    assert "not-authorized" in str(ei.value), str(ei.value) + fail_ctx(tr)
    fails = tr.find("in", NS_SASL2, "failure")
    assert fails, "no SASL2 <failure/>" + fail_ctx(tr)
    assert child(fails[-1].el, NS_SASL, "not-authorized") is not None, fail_ctx(tr)
    t = child(fails[-1].el, NS_SASL2, "text")
    assert t is not None and (t.text or "").strip(), "SASL2 <failure/> without <text/>" + fail_ctx(tr)


def test_session2_device_live_archive_ids_no_offline_flood_mam_sync(target, upstream_target, js):
    """Message Routing 2.0 for a session2 (Bind2) device: live messages carry the mirror's archive
    id; what arrived while it was away is not flooded at login but found in MAM (served by the
    proxy), under the same ids another device saw live."""
    ns_sid, ns_mam, ns_rsm, ns_fwd = "urn:xmpp:sid:0", "urn:xmpp:mam:2", "http://jabber.org/protocol/rsm", \
        "urn:xmpp:forward:0"
    agent = ua()
    run = uuid.uuid4().hex[:6]
    account = "alice@%s" % target.domain

    def sid_of(el):
        for s in el.findall(q(ns_sid, "stanza-id")):
            if s.get("by") == account:
                return s.get("id")
        return None

    async def body(pool):
        bob = await pool.connect(upstream_target, "bob", "s2sync-" + run)
        other = await pool.connect(target, "alice", "s2other-" + run)  # a legacy device, online throughout
        await asyncio.to_thread(login_trace, js, "alice", target, resource="sync", user_agent=agent)
        await asyncio.to_thread(js.send, "alice", "<presence/>")
        live = "s2-live %s" % run
        bob.send_xml(msg_xml(account, live))
        el, _ = await asyncio.to_thread(js_wait_message, js, "alice", live, 5.0)
        live_id = sid_of(el)
        assert live_id, "a live persistent message carries <stanza-id by=account>: %s" % short(el)
        await asyncio.to_thread(js.stop, "alice")
        away = ["s2-away %s %d" % (run, i) for i in range(3)]
        for text in away:
            bob.send_xml(msg_xml(account, text))
        for text in away:
            await other.wait_msg(has_body(text), 5)
        ids_other = {body_of(e): e.find(q(ns_sid, "stanza-id")).get("id")
                     for e in other.received("message", lambda e: body_of(e) in away)}
        _, tr2 = await asyncio.to_thread(login_trace, js, "alice2", target, resource="sync", user_agent=agent)
        success = tr2.first("in", NS_SASL2, "success")
        md = success.el.find("%s/%s" % (q(NS_BIND2, "bound"), q(ns_mam, "metadata"))) if success else None
        end = md.find(q(ns_mam, "end")) if md is not None else None
        assert end is not None and end.get("id") == max(ids_other.values()), \
            "<bound> carries MAM metadata ending at the newest archive id: %s" % (short(success.el) if success else None)
        await asyncio.to_thread(js.send, "alice2", "<presence/>")
        await asyncio.sleep(1.5)
        flooded = [m for m in await asyncio.to_thread(js.messages, "alice2") if body_of(m) in away]
        assert not flooded, "a Bind2 session gets no offline flood: %s" % [short(m) for m in flooded]
        qid = "sync-" + run
        await asyncio.to_thread(js.send, "alice2", (
            "<iq type='set' id='%s'><query xmlns='%s' queryid='%s'><set xmlns='%s'><after>%s</after></set>"
            "</query></iq>" % (qid, ns_mam, qid, ns_rsm, live_id)))
        end = time.monotonic() + 5
        fin = None
        while time.monotonic() < end and fin is None:
            tr = await asyncio.to_thread(js.trace, "alice2")
            fins = [e.el for e in tr.find("in", "jabber:client", "iq") if e.el.get("id") == qid]
            fin = fins[0] if fins else None
            await asyncio.sleep(0.1)
        assert fin is not None and fin.get("type") == "result", "MAM answer: %s" % (short(fin) if fin else None)
        got = {}
        for m in await asyncio.to_thread(js.messages, "alice2"):
            r = m.find(q(ns_mam, "result"))
            if r is None or r.get("queryid") != qid:
                continue
            inner = r.find("%s/%s" % (q(ns_fwd, "forwarded"), q("jabber:client", "message")))
            if inner is not None and body_of(inner) in away:
                got[body_of(inner)] = r.get("id")
        assert got == ids_other, "MAM after the live id has the missed messages, same ids: %s vs %s" % (
            got, ids_other)
        await asyncio.to_thread(js.stop, "alice2")

    run_async(body, 60)
