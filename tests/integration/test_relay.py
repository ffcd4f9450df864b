"""The relay path with real clients: alice through the proxy (`target`), bob directly upstream."""
import ssl
import time
import socket
import uuid

import pytest

from rawxmpp import RawXMPP
from xmppclient import (NS_CLIENT, NS_MUC_OWNER, NS_MUC_USER, NS_PING, NS_ROSTER, NS_XDATA, NS_CARBONS,
                        body_of, carbon_inner, join_room, contains_text, has_body, msg_xml, new_id, q, run_async, short,
                        stanza_error)


def test_message_both_ways(target, upstream_target):
    async def body(pool):
        alice = await pool.connect(target, "alice", "relay")
        bob = await pool.connect(upstream_target, "bob", "relay")
        # bob -> alice full JID, bob -> alice bare JID, alice -> bob bare JID, alice -> bob full JID
        cases = [(bob, alice, alice.full_jid), (bob, alice, alice.bare),
                 (alice, bob, bob.bare), (alice, bob, bob.full_jid)]
        for sender, receiver, to in cases:
            text = "relay %s -> %s %s" % (sender.user, to, uuid.uuid4().hex[:8])
            mid = new_id("rel")
            sender.send_xml(msg_xml(to, text, mid=mid))
            el = await receiver.wait_msg(has_body(text), 5, what="%r" % text)
            assert el.get("id") == mid, "message id changed on the way: sent %s, got %s" % (mid, short(el))
            assert el.get("type") == "chat", short(el)
            frm = el.get("from") or ""
            assert frm == sender.full_jid, "from should be the sender's full JID %s: %s" % (sender.full_jid,
                                                                                           short(el))
            to_attr = el.get("to") or ""
            assert to_attr.split("/")[0] == receiver.bare, short(el)

    run_async(body, 60)


def test_unicode_and_escaping(target, upstream_target):
    """Bodies with markup-significant characters and non-ASCII text survive both ways."""
    async def body(pool):
        alice = await pool.connect(target, "alice", "esc")
        bob = await pool.connect(upstream_target, "bob", "esc")
        text = "<b>&amp; \"q\" 'a' – ünïcødé 💬 %s" % uuid.uuid4().hex[:6]
        bob.send_xml(msg_xml(alice.full_jid, text))
        await alice.wait_msg(has_body(text), 5)
        alice.send_xml(msg_xml(bob.full_jid, text + " back"))
        await bob.wait_msg(has_body(text + " back"), 5)

    run_async(body, 60)


def test_ping_to_alice_full_jid(target, upstream_target):
    async def body(pool):
        alice = await pool.connect(target, "alice", "ping")
        bob = await pool.connect(upstream_target, "bob", "ping")
        res = await bob.iq("<ping xmlns='%s'/>" % NS_PING, to=alice.full_jid, itype="get")
        assert res.get("type") == "result", "ping bob -> %s through the proxy: %s" % (alice.full_jid, short(res))
        assert res.get("from") == alice.full_jid, short(res)
        # and the other way round, plus a ping to the server through the proxy
        res = await alice.iq("<ping xmlns='%s'/>" % NS_PING, to=bob.full_jid, itype="get")
        assert res.get("type") == "result", short(res)
        res = await alice.iq("<ping xmlns='%s'/>" % NS_PING, to=target.domain, itype="get")
        assert res.get("type") == "result", short(res)

    run_async(body, 60)


def test_iq_error_is_relayed(target, upstream_target):
    """An iq alice's client cannot handle comes back to bob as an error, with bob's id."""
    async def body(pool):
        alice = await pool.connect(target, "alice", "iqerr")
        bob = await pool.connect(upstream_target, "bob", "iqerr")
        res = await bob.iq("<query xmlns='urn:example:s2it:unknown'/>", to=alice.full_jid, itype="get")
        assert res.get("type") == "error", short(res)
        assert stanza_error(res) is not None and stanza_error(res)[1] in (
            "feature-not-implemented", "service-unavailable"), short(res)

    run_async(body, 60)


def test_roster_get_and_push(target):
    async def body(pool):
        alice = await pool.connect(target, "alice", "roster")
        res = await alice.iq("<query xmlns='%s'/>" % NS_ROSTER, itype="get")
        assert res.get("type") == "result", short(res)
        assert res.find(q(NS_ROSTER, "query")) is not None, "roster result without <query/>: %s" % short(res)

        contact = "carol@%s" % target.domain
        name = "Carol %s" % uuid.uuid4().hex[:6]
        is_push = lambda sub=None: lambda el: (
            el.get("type") == "set" and any(
                it.get("jid") == contact and (sub is None or it.get("subscription") == sub)
                and (sub == "remove" or it.get("name") == name)
                for it in el.iter(q(NS_ROSTER, "item"))))
        t0 = time.monotonic()
        res = await alice.iq("<query xmlns='%s'><item jid='%s' name='%s'/></query>" % (NS_ROSTER, contact, name),
                             itype="set")
        assert res.get("type") == "result", "roster set: %s" % short(res)
        push = await alice.wait_for("iq", is_push(), 5, since=t0, what="roster push for %s" % contact)
        frm = push.get("from")
        assert frm in (None, alice.bare), "roster push must come from the account (or no from): %s" % short(push)

        res = await alice.iq("<query xmlns='%s'/>" % NS_ROSTER, itype="get")
        assert any(it.get("jid") == contact and it.get("name") == name for it in res.iter(q(NS_ROSTER, "item"))), \
            "new item missing from roster: %s" % short(res, 2000)

        t1 = time.monotonic()
        res = await alice.iq("<query xmlns='%s'><item jid='%s' subscription='remove'/></query>" % (
            NS_ROSTER, contact), itype="set")
        assert res.get("type") == "result", short(res)
        await alice.wait_for("iq", is_push("remove"), 5, since=t1, what="roster push removing %s" % contact)

    run_async(body, 60)


def test_presence_both_ways(target, upstream_target):
    """alice (proxy) and bob (direct) subscribe to each other; each then sees the other's presence."""
    async def body(pool):
        alice = await pool.connect(target, "alice", "pres")
        bob = await pool.connect(upstream_target, "bob", "pres")
        # both fetch their roster first: subscription approvals go to "interested" resources only
        # (RFC 6121 3.1.6), i.e. those that requested the roster
        for c in (alice, bob):
            res = await c.iq("<query xmlns='%s'/>" % NS_ROSTER, itype="get")
            assert res.get("type") == "result", short(res)
        # mutual subscription; slixmpp auto-authorizes and subscribes back
        alice.send_xml("<presence xmlns='jabber:client' to='%s' type='subscribe'/>" % bob.bare)
        await alice.wait_presence(lambda el: el.get("type") == "subscribed" and
                                  (el.get("from") or "").split("/")[0] == bob.bare, 10,
                                  what="<presence type='subscribed'/> from bob")
        await bob.wait_presence(lambda el: el.get("type") == "subscribed" and
                                (el.get("from") or "").split("/")[0] == alice.bare, 10,
                                what="<presence type='subscribed'/> from alice")
        # fresh presence with a unique status from each side
        s_a = "alice-status-%s" % uuid.uuid4().hex[:6]
        s_b = "bob-status-%s" % uuid.uuid4().hex[:6]
        t0 = time.monotonic()
        alice.send_xml("<presence xmlns='jabber:client'><status>%s</status></presence>" % s_a)
        bob.send_xml("<presence xmlns='jabber:client'><status>%s</status></presence>" % s_b)
        st = lambda s: lambda el: el.get("type") in (None, "available") and contains_text(el, s)
        # the device's own presence (its link, priority -1) ...
        p = await bob.wait_presence(lambda el: st(s_a)(el) and el.get("from") == alice.full_jid, 5, since=t0,
                                    what="alice's available presence from her device")
        prio = p.find("{jabber:client}priority")
        assert prio is not None and prio.text == "-1", "device links advertise priority -1: %s" % short(p)
        # ... and the anchor mirroring the best device presence (ARCHITECTURE.md §3), at priority 0,
        # from its own session (alice/s2proxy) or the link of a device of an earlier test that it
        # kept when that device left (docs/architecture.md §26): another resource of alice's
        def from_anchor(el):
            frm = el.get("from") or ""
            return st(s_a)(el) and frm.startswith(alice.bare + "/") and frm != alice.full_jid
        p = await bob.wait_presence(from_anchor, 5, since=t0, what="the anchor mirroring alice's presence")
        prio = p.find("{jabber:client}priority")
        assert prio is not None and prio.text == "0", "the anchor advertises priority 0: %s" % short(p)
        p = await alice.wait_presence(st(s_b), 5, since=t0, what="bob's available presence")
        assert p.get("from") == bob.full_jid, short(p)
        # and alice going away is seen by bob
        t1 = time.monotonic()
        await alice.disconnect()
        await bob.wait_presence(lambda el: el.get("type") == "unavailable" and el.get("from") == alice.full_jid,
                                5, since=t1, what="alice's unavailable presence after she disconnects")

    run_async(body, 60)


def test_muc_groupchat(target, upstream_target):
    room = "s2it-%s@muc.%s" % (uuid.uuid4().hex[:8], target.domain)

    async def join(c, nick):
        return await join_room(c, room, nick, instant=False)

    async def body(pool):
        alice = await pool.connect(target, "alice", "muc")
        bob = await pool.connect(upstream_target, "bob", "muc")
        p = await join(alice, "alice")
        x = p.find(q(NS_MUC_USER, "x"))
        if any(s.get("code") == "201" for s in x.findall(q(NS_MUC_USER, "status"))):
            # new room: accept the default configuration (instant room)
            res = await alice.iq("<query xmlns='%s'><x xmlns='%s' type='submit'/></query>" % (NS_MUC_OWNER, NS_XDATA),
                                 to=room, itype="set")
            assert res.get("type") == "result", "instant room config: %s" % short(res)
        await join(bob, "bob")
        await alice.wait_presence(lambda el: el.get("from") == room + "/bob", 5, what="bob joining, seen by alice")

        for sender, nick, others in ((alice, "alice", [bob]), (bob, "bob", [alice])):
            text = "groupchat from %s %s" % (nick, uuid.uuid4().hex[:6])
            mid = new_id("gc")
            sender.send_xml(msg_xml(room, text, mid=mid, mtype="groupchat"))
            for c in others + [sender]:  # the sender gets its reflection too
                el = await c.wait_msg(has_body(text), 5, what="groupchat %r" % text)
                assert el.get("type") == "groupchat", short(el)
                assert el.get("from") == "%s/%s" % (room, nick), short(el)
                assert el.get("id") == mid, "groupchat id changed: sent %s, got %s" % (mid, short(el))

        # the room's archive is the room's: a MAM query to the room JID is relayed, not answered
        # from alice's mirror (ARCHITECTURE.md §2: groupchat history is kept upstream)
        qid = uuid.uuid4().hex[:8]
        t0 = time.monotonic()
        res = await alice.iq("<query xmlns='urn:xmpp:mam:2' queryid='%s'/>" % qid, to=room, itype="set")
        assert res.get("type") == "result" and res.get("from") == room, "room MAM: %s" % short(res)
        results = [el for el in alice.received("message", since=t0)
                   if el.find("{urn:xmpp:mam:2}result") is not None
                   and el.find("{urn:xmpp:mam:2}result").get("queryid") == qid]
        assert results and all(el.get("from") == room for el in results), [short(e) for e in results]
        assert any(contains_text(el, "groupchat from alice") for el in results), [short(e) for e in results]

        # a private message within the room, bob -> alice's occupant JID, goes through the proxy
        text = "muc-pm %s" % uuid.uuid4().hex[:6]
        bob.send_xml(msg_xml(room + "/alice", text))
        el = await alice.wait_msg(has_body(text), 5, what="MUC private message")
        assert el.get("from") == room + "/bob", short(el)

        alice.send_xml("<presence xmlns='jabber:client' to='%s/alice' type='unavailable'/>" % room)
        await bob.wait_presence(lambda el: el.get("from") == room + "/alice" and el.get("type") == "unavailable",
                                5, what="alice leaving the room")

    run_async(body, 60)


def test_direct_tls_port(target, upstream_target):
    """alice via the direct TLS (XEP-0368) port logs in and exchanges messages with bob."""
    async def body(pool):
        alice = await pool.connect(target, "alice", "dtls", tls="direct")
        bob = await pool.connect(upstream_target, "bob", "dtls")
        text = "over direct tls %s" % uuid.uuid4().hex[:6]
        bob.send_xml(msg_xml(alice.full_jid, text))
        await alice.wait_msg(has_body(text), 5)
        alice.send_xml(msg_xml(bob.full_jid, text + " back"))
        await bob.wait_msg(has_body(text + " back"), 5)
        res = await bob.iq("<ping xmlns='%s'/>" % NS_PING, to=alice.full_jid, itype="get")
        assert res.get("type") == "result", short(res)

    run_async(body, 60)


def test_two_devices_full_jid_routing(target, upstream_target):
    """Two devices of alice through the proxy; bob's message to one full JID reaches that device only."""
    async def body(pool):
        import asyncio
        d1 = await pool.connect(target, "alice", "dev1")
        d2 = await pool.connect(target, "alice", "dev2", tls="direct")
        bob = await pool.connect(upstream_target, "bob", "devs")
        assert d1.full_jid != d2.full_jid
        texts = {}
        for dev in (d1, d2):
            text = "to %s only %s" % (dev.full_jid, uuid.uuid4().hex[:6])
            mid = new_id("dev")
            texts[dev] = text
            bob.send_xml(msg_xml(dev.full_jid, text, mid=mid))
            el = await dev.wait_msg(has_body(text), 5, what="message to its own full JID")
            assert el.get("id") == mid, short(el)
            assert el.get("to") == dev.full_jid, short(el)
        await asyncio.sleep(1.0)
        for dev, other in ((d1, d2), (d2, d1)):
            wrong = other.received("message", lambda el: contains_text(el, texts[dev]))
            assert not wrong, ("%s got (a copy of) a message bob addressed to %s, although it never enabled "
                               "carbons: %s" % (other.full_jid, dev.full_jid, [short(e) for e in wrong]))

    run_async(body, 60)


def test_two_devices_carbons(target, upstream_target):
    """Both devices enable Carbons (XEP-0280): a message to one device is carbon-copied to the other."""
    async def body(pool):
        d1 = await pool.connect(target, "alice", "cb1")
        d2 = await pool.connect(target, "alice", "cb2")
        bob = await pool.connect(upstream_target, "bob", "cb")
        for d in (d1, d2):
            res = await d.iq("<enable xmlns='%s'/>" % NS_CARBONS, itype="set")
            assert res.get("type") == "result", "carbons enable: %s" % short(res)
        text = "carbon me %s" % uuid.uuid4().hex[:6]
        bob.send_xml(msg_xml(d1.full_jid, text))
        await d1.wait_msg(has_body(text), 5)
        el = await d2.wait_msg(lambda el: (carbon_inner(el, "received") is not None and
                                           body_of(carbon_inner(el, "received")) == text), 5,
                               what="<received/> carbon of bob's message to %s" % d1.full_jid)
        assert (el.get("from") or "") == d2.bare, "carbon must come from alice's bare JID: %s" % short(el)
        text = "sent carbon %s" % uuid.uuid4().hex[:6]
        d1.send_xml(msg_xml(bob.full_jid, text))
        await bob.wait_msg(has_body(text), 5)
        await d2.wait_msg(lambda el: (carbon_inner(el, "sent") is not None and
                                      body_of(carbon_inner(el, "sent")) == text), 5,
                          what="<sent/> carbon of d1's message to bob")

    run_async(body, 60)


@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
def test_proxy_certificate_verifies(target, direct_tls):
    """The certificate offered on both ports verifies (self-signed file in the data dir, name = domain)."""
    assert target.cafile, "no certificate file known for %s" % target.name
    c = RawXMPP.connect(target.host, target.tls_port if direct_tls else target.starttls_port, target.domain,
                        direct_tls=direct_tls, cafile=target.cafile, timeout=10)
    try:
        if not direct_tls:
            c.open_stream()
            c.read_features()
            c.starttls()  # raises ssl.SSLCertVerificationError on a bad certificate
        assert isinstance(c.sock, ssl.SSLSocket)
        c.open_stream()
        feats = c.read_features()
        assert c.mechanisms(), "no SASL mechanisms after TLS: %s" % c.transcript()
    finally:
        c.close()


def test_features_before_starttls(target):
    """Before TLS the plain port offers STARTTLS as required and no SASL mechanism to use."""
    c = RawXMPP.connect(target.host, target.starttls_port, target.domain, timeout=10)
    try:
        c.open_stream()
        f = c.read_features()
        st = f.find(q("urn:ietf:params:xml:ns:xmpp-tls", "starttls"))
        assert st is not None, "no <starttls/> offered: %s" % c.transcript()
        assert st.find(q("urn:ietf:params:xml:ns:xmpp-tls", "required")) is not None, \
            "STARTTLS not marked <required/>: %s" % c.transcript()
        assert "PLAIN" not in c.mechanisms(), "PLAIN offered before TLS: %s" % c.transcript()
        assert c.stream_attrs.get("from") == target.domain, "stream from=%r" % c.stream_attrs
        assert c.stream_attrs.get("version") == "1.0"
        assert c.stream_attrs.get("id"), "stream header without id"
    finally:
        c.close()


@pytest.mark.parametrize("phase", ["plain", "tls", "authed", "authed-direct-tls"])
def test_client_close_is_answered(target, phase):
    """RFC 6120 4.4: a client's </stream:stream> is answered with the server's </stream:stream>
    (no stream error) before the TCP connection goes away."""
    direct = phase == "authed-direct-tls"
    c = RawXMPP.connect(target.host, target.tls_port if direct else target.starttls_port, target.domain,
                        direct_tls=direct, timeout=10)
    try:
        if phase == "plain":
            c.open_stream()
            c.read_features()
        elif phase == "tls":
            c.secure_stream()
        else:
            c.login("carol", "carolpw", resource="close-" + uuid.uuid4().hex[:6], direct_tls=direct)
        c.send("</stream:stream>")
        end = c.read_stream_end(5)
        assert end.condition is None, end.describe()
        assert end.close_tag, "no </stream:stream> in answer to the client's: %s\n%s" % (end.describe(),
                                                                                       c.transcript())
    finally:
        c.close()
