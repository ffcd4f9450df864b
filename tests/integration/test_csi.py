"""Client State Indication (XEP-0352) served by s2proxy: an inactive device gets Silent stanzas held
(chat states, presence — coalesced per full JID), anything more urgent flushes them first, an iq is
never held, <active/> flushes. alice through the proxy (slixmpp, and xmpp.js with CSI inline in
Bind2), bob directly upstream.

With S2_TARGET=direct the same scripted traffic runs against the upstream's own CSI (Prosody 0.12
mod_csi_simple: holds in order, no coalescing; ejabberd 23 mod_client_state: coalesces presence);
every test prints one `CSI-NUMBERS` line (run with -s to see them) so both can be compared. Only
what XEP-0352 lets any server do is asserted in that mode.
"""
import time
import uuid

import pytest

from jsclient import XmppJs, ensure_node_modules
from xmppclient import NS_PING, NS_ROSTER, contains_text, has_body, msg_xml, new_id, run_async, short

NS_CSI = "urn:xmpp:csi:0"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_DELAY = "urn:xmpp:delay"
HOLD_S = 3.0


def numbers(test, mode, upstream, **kw):
    print("\nCSI-NUMBERS test=%s target=%s upstream=%s %s" % (
        test, mode, upstream.kind, " ".join("%s=%s" % (k, v) for k, v in kw.items())))


def is_chat_state(el, tag="composing"):
    return el.find("{%s}%s" % (NS_CHATSTATES, tag)) is not None


def has_delay(el):
    return el.find("{%s}delay" % NS_DELAY) is not None


def arrival(client, pred, kind="message"):
    """(monotonic time, index) of the first received stanza matching pred, or None."""
    for i, (t, k, el) in enumerate(client.stanzas):
        if k == kind and pred(el):
            return t, i
    return None


async def go_inactive(c):
    c.send_xml("<inactive xmlns='%s'/>" % NS_CSI)
    # No round trip to make sure it was read: Prosody's mod_csi_simple flushes on any bytes from the
    # client and then stays "flushing" for csi_resume_inactive_delay (5 s), which would make the
    # baseline hold nothing. Loopback delivers it well within this.
    await _sleep(0.5)


async def subscribe(alice, bob):
    for c in (alice, bob):
        res = await c.iq("<query xmlns='%s'/>" % NS_ROSTER, itype="get")
        assert res.get("type") == "result", short(res)
    alice.send_xml("<presence xmlns='jabber:client' to='%s' type='subscribe'/>" % bob.bare)
    await alice.wait_presence(lambda el: el.get("type") == "subscribed" and
                              (el.get("from") or "").split("/")[0] == bob.bare, 10,
                              what="<presence type='subscribed'/> from bob")


# ------------------------------------------------------------------------------------------------
def test_chat_state_held_until_message(target, upstream_target, mode, upstream):
    """A standalone chat state waits (≥ 3 s) while alice is inactive; bob's message then arrives at
    once, right after the held chat state, which carries a <delay/>."""
    async def body(pool):
        alice = await pool.connect(target, "alice", "csi-state")
        bob = await pool.connect(upstream_target, "bob", "csi-state")
        await go_inactive(alice)
        t_state = time.monotonic()
        bob.send_xml(msg_xml(alice.bare, None, mtype="chat", extra="<composing xmlns='%s'/>" % NS_CHATSTATES))
        await _sleep(HOLD_S)
        early = alice.received("message", is_chat_state, since=t_state)
        text = "after the pause %s" % uuid.uuid4().hex[:6]
        t_msg = time.monotonic()
        bob.send_xml(msg_xml(alice.bare, text, mid=new_id("csi")))
        await alice.wait_msg(has_body(text), 5, since=t_msg, what="bob's message")
        m_at, m_i = arrival(alice, has_body(text))
        s = arrival(alice, is_chat_state)
        state_el = alice.received("message", is_chat_state, since=t_state)
        numbers("chat_state_held", mode, upstream, state_held_s="%.2f" % ((s[0] - t_state) if s else -1),
                message_latency_s="%.2f" % (m_at - t_msg), state_before_message=bool(s and s[1] < m_i),
                delay_stamp=bool(state_el and has_delay(state_el[0])))
        assert not early, "a chat state reached the inactive client at once: %s" % short(early[0])
        assert m_at - t_msg < 2.0, "the message waited %.1fs" % (m_at - t_msg)
        assert s is not None and s[1] < m_i, "the held chat state did not come first: %s" % [
            short(e) for e in alice.received("message", since=t_state)]
        assert s[0] - t_state >= HOLD_S, "held only %.1fs" % (s[0] - t_state)
        if mode != "direct":
            assert has_delay(state_el[0]), "a held stanza gets <delay/>: %s" % short(state_el[0])

    run_async(body, 60)


def test_presence_coalesced_until_active(target, upstream_target, mode, upstream):
    """Three presence updates of bob's while alice is inactive: on <active/> she gets the latest only."""
    async def body(pool):
        alice = await pool.connect(target, "alice", "csi-pres")
        bob = await pool.connect(upstream_target, "bob", "csi-pres")
        await subscribe(alice, bob)
        await alice.wait_presence(lambda el: el.get("from") == bob.full_jid and el.get("type") is None, 5,
                                  what="bob's presence")
        await go_inactive(alice)
        tag = uuid.uuid4().hex[:6]
        statuses = ["st%d-%s" % (i, tag) for i in range(1, 4)]
        t0 = time.monotonic()
        for s in statuses:
            bob.send_xml("<presence xmlns='jabber:client'><show>away</show><status>%s</status></presence>" % s)
            await _sleep(0.2)
        await _sleep(1.5)
        early = alice.received("presence", lambda el: contains_text(el, tag), since=t0)
        t_active = time.monotonic()
        alice.send_xml("<active xmlns='%s'/>" % NS_CSI)
        await alice.wait_presence(lambda el: contains_text(el, statuses[-1]), 5, since=t0, what="bob's latest")
        await _sleep(0.5)
        got = [next(s for s in statuses if contains_text(el, s))
               for el in alice.received("presence", lambda el: contains_text(el, tag), since=t0)]
        numbers("presence_coalesced", mode, upstream, sent=3, held_before_active=3 - len(early),
                delivered_after_active=len(got), delivered=",".join(g.split("-")[0] for g in got))
        assert not early, "presence reached the inactive client: %s" % [short(e) for e in early]
        if mode != "direct":
            assert got == [statuses[-1]], "expected only the latest presence, got %s" % got
            el = alice.received("presence", lambda el: contains_text(el, statuses[-1]), since=t_active)[0]
            assert has_delay(el), short(el)

    run_async(body, 60)


def test_iq_not_held(target, upstream_target, mode, upstream):
    """An iq to an inactive device is delivered at once — after what was held before it."""
    async def body(pool):
        alice = await pool.connect(target, "alice", "csi-iq")
        bob = await pool.connect(upstream_target, "bob", "csi-iq")
        await go_inactive(alice)
        t0 = time.monotonic()
        bob.send_xml(msg_xml(alice.full_jid, None, extra="<paused xmlns='%s'/>" % NS_CHATSTATES))
        await _sleep(1.0)
        early = alice.received("message", lambda el: is_chat_state(el, "paused"), since=t0)
        t1 = time.monotonic()
        res = await bob.iq("<ping xmlns='%s'/>" % NS_PING, to=alice.full_jid, itype="get", timeout=5)
        rtt = time.monotonic() - t1
        assert res.get("type") == "result", short(res)
        ping = arrival(alice, lambda el: el.find("{%s}ping" % NS_PING) is not None, kind="iq")
        state = arrival(alice, lambda el: is_chat_state(el, "paused"))
        numbers("iq_not_held", mode, upstream, ping_rtt_s="%.2f" % rtt, state_held_before_iq=not early,
                state_before_iq=bool(state and ping and state[0] <= ping[0]))
        assert rtt < 2.0, "the ping waited %.1fs" % rtt
        assert not early, "the chat state was not held"
        assert state is not None and state[0] <= ping[0], "the held chat state did not come before the iq"

    run_async(body, 60)


# ---- xmpp.js: CSI inline in Bind2 ---------------------------------------------------------------
@pytest.fixture
def js(mode, target):
    if mode == "direct":
        pytest.skip("Bind2 inline CSI is what s2proxy adds: the upstream offers no SASL2")
    err = ensure_node_modules()
    if err is not None:
        pytest.fail("xmpp.js is not available: %s" % err, pytrace=False)
    d = XmppJs(cafile=target.cafile)
    yield d
    d.close()


def test_xmppjs_bind2_inline_inactive(target, upstream_target, js, mode, upstream):
    """xmpp.js binds with <inactive/> inline in Bind2 (SM enabled inline): bob's chat state waits,
    his message flushes it, SM keeps counting right (a ping still works), and <active/> is accepted."""
    async def body(pool):
        st = js.start("a", target, "alice", resource="csi-js", user_agent=str(uuid.uuid4()), csi="inactive")
        jid = st["jid"]
        tr = js.trace("a")
        bind = [e for e in tr.entries if e.dir == "out" and "urn:xmpp:bind:0" in e.x]
        assert bind and "<inactive xmlns=\"urn:xmpp:csi:0\"/>" in bind[0].x, \
            "xmpp.js did not send <inactive/> inline in Bind2: %s" % tr.dump(20)
        bob = await pool.connect(upstream_target, "bob", "csi-js")
        n0 = len(js.trace("a"))
        t0 = time.monotonic()
        bob.send_xml(msg_xml(jid, None, extra="<composing xmlns='%s'/>" % NS_CHATSTATES))
        await _sleep(HOLD_S)
        early = [e for e in js.trace("a", since=n0).entries if e.dir == "in" and "chatstates" in e.x]
        assert not early, "a chat state reached the inactive xmpp.js client: %s" % early
        text = "js-flush %s" % uuid.uuid4().hex[:6]
        t1 = time.monotonic()
        bob.send_xml(msg_xml(jid, text))
        js.wait_message("a", text, timeout=5)
        latency = time.monotonic() - t1
        ins = [e for e in js.trace("a", since=n0).entries if e.dir == "in" and e.x.startswith("<message")]
        kinds = ["state" if "chatstates" in e.x else ("msg" if text in e.x else "other") for e in ins]
        numbers("xmppjs_bind2_inline", mode, upstream, held_s="%.2f" % (t1 - t0), message_latency_s="%.2f" % latency,
                order=",".join(kinds))
        assert kinds.index("state") < kinds.index("msg"), kinds
        assert "urn:xmpp:delay" in ins[kinds.index("state")].x, ins[kinds.index("state")]
        js.send("a", "<active xmlns='urn:xmpp:csi:0'/>")
        r = js.call("ping", name="a", timeout=5)
        assert r["ms"] < 2000, r
        s = js.state("a")
        assert s["status"] == "online" and s["sm"]["enabled"], s

    run_async(body, 60)


async def _sleep(s):
    import asyncio
    await asyncio.sleep(s)
