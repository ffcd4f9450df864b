"""Push by the proxy (XEP-0357, issue 10 item 3), on Prosody and (S2_UPSTREAM=ejabberd) ejabberd.

alice's device registers push through s2proxy; the app server is bob, a real XMPP client logged in
directly upstream, that answers pubsub publishes with a result (or an error) and records them.
carol writes to alice. The proxy publishes from alice's anchor session (resource s2proxy); the
upstream's own push module (Prosody mod_cloud_notify, ejabberd mod_push) never hears the
registration, so nothing may reach the app server from any other address (mod_cloud_notify
publishes from the domain itself).
"""
import asyncio
import os
import re
import subprocess
import time
import uuid

import pytest
from xmppclient import Client, join_room, msg_xml, q, run_async, short

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

NS_PUSH = "urn:xmpp:push:0"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_XDATA = "jabber:x:data"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_BOOKMARKS = "urn:xmpp:bookmarks:1"
NS_NOTIFY = "urn:xmpp:notification-settings:1"


@pytest.fixture(autouse=True)
def _proxy_only(mode):
    if mode == "direct":
        pytest.skip("push by the proxy: nothing to compare against the upstream directly")


async def connect(pool, target, user, resource, sm=False):
    c = Client(target, user, resource)
    if sm:
        c.x.register_plugin("xep_0198")
    pool.clients.append(c)
    await c.connect()
    return c


async def app_server(pool, upstream_target, run, fail_with=None):
    """bob as a XEP-0357 app server: answers every pubsub iq (result, or an error of type
    `fail_with`) and keeps them in .stanzas like any other stanza."""
    bob = await connect(pool, upstream_target, "bob", "pushapp-" + run)

    def on_publish(iq):
        if fail_with:
            err = iq.reply(clear=True)
            err["type"] = "error"
            err["error"]["type"] = fail_with
            err["error"]["condition"] = "item-not-found" if fail_with == "cancel" else "resource-constraint"
            err.send()
        else:
            iq.reply(clear=True).send()

    bob.x.register_handler(Callback("push-app-server", MatchXPath("{jabber:client}iq/{%s}pubsub" % NS_PUBSUB),
                                    on_publish))
    return bob


def publishes(app, node=None):
    """Pubsub iqs the app server received (for `node`, or all)."""
    out = []
    for el in app.received("iq"):
        ps = el.find(q(NS_PUBSUB, "pubsub"))
        if ps is None:
            continue
        pub = ps.find(q(NS_PUBSUB, "publish"))
        if node is None or (pub is not None and pub.get("node") == node):
            out.append(el)
    return out


def summary(iq):
    """{var: value} of the notification form of one publish."""
    form = iq.find("%s/%s/%s/%s/%s" % (q(NS_PUBSUB, "pubsub"), q(NS_PUBSUB, "publish"), q(NS_PUBSUB, "item"),
                                       q(NS_PUSH, "notification"), q(NS_XDATA, "x")))
    assert form is not None, short(iq)
    return {f.get("var"): (f.findtext(q(NS_XDATA, "value")) or "") for f in form.findall(q(NS_XDATA, "field"))}


def enable_xml(app_jid, node, secret):
    return ("<enable xmlns='%s' jid='%s' node='%s'><x xmlns='%s' type='submit'>"
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
            "<field var='secret'><value>%s</value></field></x></enable>" % (NS_PUSH, app_jid, node, NS_XDATA, secret))


async def wait_until(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


async def wait_count(app, node, n, timeout, settle=2.5):
    """Exactly n publishes for `node`: reached within `timeout`, and no more after `settle` s (the
    coalescing window is 2 s)."""
    await wait_until(lambda: len(publishes(app, node)) >= n, timeout, "%d publish(es) for %s" % (n, node))
    await asyncio.sleep(settle)
    got = publishes(app, node)
    assert len(got) == n, "expected exactly %d publish(es), got %d: %s" % (n, len(got), [short(x) for x in got])
    return got


def check_only_from_proxy(app, bare, only=None):
    """Every pubsub iq the app server got came from alice's anchor, none from the upstream itself
    (which publishes from the account's bare JID): from a session of alice's, the anchor's own
    (alice/s2proxy) or, while a device of alice's is her only one, that device's link, which the
    anchor then rides (docs/architecture.md §22), or keeps after it left (§26). `only`: the sessions
    it may be (a JID or a set of them)."""
    allowed = {only} if isinstance(only, str) else only
    for el in publishes(app):
        frm = el.get("from") or ""
        if allowed is not None:
            assert frm in allowed, "a publish not from the anchor's sessions %s: %s" % (sorted(allowed), short(el))
        assert frm.startswith(bare + "/") and len(frm) > len(bare) + 1, \
            "a publish that is not the proxy's (the upstream pushed on its own?): %s" % short(el)


async def enable(dev, app, node, secret):
    res = await dev.iq(enable_xml(app.full_jid, node, secret), itype="set")
    assert res.get("type") == "result", short(res)


async def hibernated(target, resource):
    # One line naming both: the proxy's log is shared by the suite, and another device's
    # hibernation must not count for this one.
    await wait_until(lambda: any("device.hibernating" in ln and resource in ln
                                 for ln in target.proc.log_text().splitlines()),
                     10, "device %s hibernating" % resource)


# -------------------------------------------------------------------------------------------------
def test_hibernated_device_gets_one_push_per_message_and_per_burst(target, upstream_target):
    """TCP cut (SM resumable): one publish for one urgent message, one for a burst of three, none for a
    chat state; summary with message-count and last-message-sender, publish-options passed through,
    no body."""
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        node, secret = "node-" + run, "secret-" + run
        app = await app_server(pool, upstream_target, run)
        dev = await connect(pool, target, "alice", "pushdev-" + run, sm=True)
        await enable(dev, app, node, secret)
        await wait_until(lambda: "anchor.ready" in target.proc.log_text(), 15, "alice's anchor")
        carol = await connect(pool, upstream_target, "carol", "pc-" + run)
        await asyncio.sleep(0.5)  # SM enabled (resumable) before the cut
        dev.abort()
        await hibernated(target, "pushdev-" + run)

        carol.send_xml(msg_xml(dev.bare, "one-" + run))
        first = (await wait_count(app, node, 1, 8))[0]
        s = summary(first)
        assert s.get("FORM_TYPE") == "urn:xmpp:push:summary", s
        assert s.get("message-count") == "1", s
        assert s.get("last-message-sender") == carol.bare, s
        assert "last-message-body" not in s and "one-" + run not in short(first, 10000), short(first, 10000)
        assert secret in short(first, 10000), "the client's publish-options are passed through: %s" % short(first)

        for i in range(3):
            carol.send_xml(msg_xml(dev.bare, "burst-%d-%s" % (i, run)))
        got = await wait_count(app, node, 2, 8)
        s = summary(got[1])
        assert s.get("message-count") == "2", "the badge: urgent messages since the cut, at publish time: %s" % s
        assert not any("burst-" in short(x, 10000) for x in got), "no body by default"

        carol.send_xml(msg_xml(dev.bare, None, extra="<composing xmlns='%s'/>" % NS_CHATSTATES))
        await wait_count(app, node, 2, 1, settle=3.0)
        check_only_from_proxy(app, dev.bare)

    run_async(body, 90)


def test_ended_device_keeps_push_and_disable_stops_it(target, upstream_target):
    """A device that ends its session cleanly is still woken (offline: it syncs from the mirror); after
    <disable/> nothing more. Neither iq is relayed upstream: nothing reaches the app server but the
    proxy's publishes."""
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        node = "node-" + run
        app = await app_server(pool, upstream_target, run)
        dev = await connect(pool, target, "alice", "pushoff-" + run)
        await enable(dev, app, node, "s-" + run)
        await dev.disconnect()
        carol = await connect(pool, upstream_target, "carol", "pc-" + run)
        await asyncio.sleep(0.5)

        carol.send_xml(msg_xml(dev.bare, "offline-" + run))
        await wait_count(app, node, 1, 8)

        dev2 = await connect(pool, target, "alice", "pushoff-" + run)
        res = await dev2.iq("<disable xmlns='%s' jid='%s' node='%s'/>" % (NS_PUSH, app.full_jid, node), itype="set")
        assert res.get("type") == "result", short(res)
        dev2.abort()
        await asyncio.sleep(2.5)  # past the coalescing window: silence is the disable's doing
        carol.send_xml(msg_xml(dev.bare, "after-disable-" + run))
        await wait_count(app, node, 1, 1, settle=3.0)
        check_only_from_proxy(app, dev.bare)

    run_async(body, 90)


def test_registration_survives_restart(proxy_factory, upstream_target):
    p = proxy_factory.start()
    t = p.target()
    anchor = "alice@%s/%s" % (t.domain, p.opts["anchor-resource"])

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        node = "node-" + run
        app = await app_server(pool, upstream_target, run)
        dev = await connect(pool, t, "alice", "pushrs-" + run)
        await enable(dev, app, node, "s-" + run)
        await wait_until(lambda: "anchor.ready" in p.log_text(), 15, "the anchor (first login)")
        await dev.disconnect()
        rc, _, killed = p.stop()
        assert rc == 0 and not killed
        p.restart()
        await wait_until(lambda: p.log_text().count("anchor.ready") >= 2, 15, "the anchor after the restart")
        carol = await connect(pool, upstream_target, "carol", "pc-" + run)
        carol.send_xml(msg_xml(dev.bare, "restart-" + run))
        await wait_count(app, node, 1, 8, settle=1.0)
        check_only_from_proxy(app, anchor.split("/")[0], only=anchor)

    run_async(body, 90)


def test_messages_while_the_proxy_was_down_wake_the_device(proxy_factory, upstream_target):
    """Three urgent messages arrive while s2proxy is stopped and alice has a client logged in to
    the upstream directly, so the upstream delivers them there (no offline storage) and only its
    archive keeps them. When the proxy is back, the anchor's MAM catch-up commits them and the
    device behind the proxy, still offline and never given them, gets one push for the burst."""
    p = proxy_factory.start()
    t = p.target()
    anchor = "alice@%s/%s" % (t.domain, p.opts["anchor-resource"])

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        node = "node-" + run
        app = await app_server(pool, upstream_target, run)
        dev = await connect(pool, t, "alice", "pushdown-" + run)
        await enable(dev, app, node, "s-" + run)
        await wait_until(lambda: "anchor.ready" in p.log_text(), 15, "the anchor (first login)")
        await dev.disconnect()
        # One live message first: its push shows the anchor's first catch-up is over (the sync
        # cursor exists, and the restart pages from it).
        carol = await connect(pool, upstream_target, "carol", "pd-" + run)
        carol.send_xml(msg_xml(dev.bare, "before-" + run))
        await wait_count(app, node, 1, 8)
        rc, _, killed = p.stop()
        assert rc == 0 and not killed
        desk = await connect(pool, upstream_target, "alice", "desk-" + run)
        # The highest priority of the account: the upstream delivers there, whatever other
        # sessions of alice (another test's proxy) are online.
        desk.send_xml("<presence><priority>127</priority></presence>")
        await asyncio.sleep(0.3)
        for i in range(3):
            carol.send_xml(msg_xml(dev.bare, "while-down-%d-%s" % (i, run)))
        for i in range(3):
            await desk.wait_msg(lambda e, i=i: "while-down-%d-%s" % (i, run) in short(e, 10000), 10,
                                what="message %d at alice's direct client" % i)
        await desk.disconnect()
        await asyncio.sleep(1.0)
        assert len(publishes(app, node)) == 1, "nothing can push while the proxy is down"
        p.restart()
        await wait_until(lambda: p.log_text().count("anchor.ready") >= 2, 15, "the anchor after the restart")
        got = await wait_count(app, node, 2, 10)
        s = summary(got[1])
        assert s.get("last-message-sender") == carol.bare, s
        # Before the restart the anchor kept the device's link (docs §26), after it a session of
        # its own: both are the anchor's, and nothing else published.
        check_only_from_proxy(app, anchor.split("/")[0], only={anchor, dev.full_jid})
        assert got[1].get("from") == anchor, "after the restart, the anchor's own session: %s" % short(got[1])

    run_async(body, 90)


def test_registration_disabled_after_repeated_errors(proxy_factory, upstream_target):
    """An app server that keeps refusing (type cancel): after 16 errors the registration is gone;
    errors of type wait never disable it."""
    p = proxy_factory.start(opts={"push-coalesce": 0})
    t = p.target()

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        node = "node-" + run
        app = await app_server(pool, upstream_target, run, fail_with="cancel")
        dev = await connect(pool, t, "alice", "pusherr-" + run)
        await enable(dev, app, node, "s-" + run)
        await wait_until(lambda: "anchor.ready" in p.log_text(), 15, "the anchor")
        await dev.disconnect()
        carol = await connect(pool, upstream_target, "carol", "pc-" + run)
        await asyncio.sleep(0.5)
        for i in range(16):
            carol.send_xml(msg_xml(dev.bare, "err-%d-%s" % (i, run)))
            await wait_until(lambda: len(publishes(app, node)) > i, 8, "publish %d" % (i + 1))
            await asyncio.sleep(0.1)  # its error answered before the next one
        await wait_until(lambda: "push.registration_disabled" in p.log_text(), 5, "the registration disabled")
        carol.send_xml(msg_xml(dev.bare, "err-last-" + run))
        await wait_count(app, node, 16, 1, settle=2.0)

    run_async(body, 120)


def push_body_cli(target, account, setting):
    out = subprocess.run([os.environ["S2PROXY_BIN"], "accounts", "push-body", account, setting,
                          "--data-dir", target.proc.data_dir], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, "accounts push-body %s: %s %s" % (setting, out.stdout, out.stderr)
    return out.stdout


def test_account_push_body_setting_followed_while_running(target, upstream_target):
    """Whether pushes carry the body is one per-account setting (issue 10 item 4):
    `s2proxy accounts push-body JID on|off|default`, written to the mirror while the daemon runs and
    read at the next urgent message; `accounts show` prints it."""
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        node = "node-" + run
        app = await app_server(pool, upstream_target, run)
        dev = await connect(pool, target, "alice", "pushbody-" + run)
        await enable(dev, app, node, "s-" + run)
        await wait_until(lambda: "anchor.ready" in target.proc.log_text(), 15, "alice's anchor")
        await dev.disconnect()
        carol = await connect(pool, upstream_target, "carol", "pb-" + run)
        try:
            assert "on" in push_body_cli(target, dev.bare, "on")
            carol.send_xml(msg_xml(dev.bare, "with-body-" + run))
            s = summary((await wait_count(app, node, 1, 8))[0])
            assert s.get("last-message-body") == "with-body-" + run, s

            push_body_cli(target, dev.bare, "off")
            carol.send_xml(msg_xml(dev.bare, "no-body-" + run))
            got = await wait_count(app, node, 2, 8)
            s = summary(got[1])
            assert "last-message-body" not in s and "no-body-" + run not in short(got[1], 10000), s
        finally:
            push_body_cli(target, dev.bare, "default")
        show = subprocess.run([os.environ["S2PROXY_BIN"], "accounts", "show", dev.bare, "--data-dir",
                               target.proc.data_dir], capture_output=True, text=True, timeout=30)
        assert "push body    default" in show.stdout, show.stdout

    run_async(body, 90)


def bookmark_xml(room, setting, options=True):
    """A XEP-0402 bookmark of `room` carrying a XEP-0492 setting, as a client publishes it."""
    opts = ("<publish-options><x xmlns='%s' type='submit'>"
            "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value>"
            "</field><field var='pubsub#persist_items'><value>true</value></field>"
            "<field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options>" % NS_XDATA)
    return ("<pubsub xmlns='%s'><publish node='%s'><item id='%s'><conference xmlns='%s' autojoin='false'>"
            "<extensions><notify xmlns='%s'><%s/></notify></extensions></conference></item></publish>%s</pubsub>"
            % (NS_PUBSUB, NS_BOOKMARKS, room, NS_BOOKMARKS, NS_NOTIFY, setting, opts if options else ""))


def test_room_mention_wakes_and_muted_room_does_not(target, upstream_target):
    """Issue 10 items 1 and 4: a room's message wakes the sleeping device that is in the room only
    when it mentions alice's nick (XEP-0492's default for rooms); a room alice's client set to
    `never` in its bookmark (XEP-0402 + XEP-0492, published through the proxy) wakes nothing, even
    on mention. Preferences change urgency, never delivery: every message reaches the device when it
    resumes."""
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        node = "node-" + run
        app = await app_server(pool, upstream_target, run)
        dev = await connect(pool, target, "alice", "pushmuc-" + run, sm=True)
        await enable(dev, app, node, "s-" + run)
        await wait_until(lambda: "anchor.ready" in target.proc.log_text(), 15, "alice's anchor")
        carol = await connect(pool, upstream_target, "carol", "pm-" + run)
        loud = "s2push-%s@muc.%s" % (run, target.domain)
        muted = "s2mute-%s@muc.%s" % (run, target.domain)
        nick = "ally" + run
        for room in (loud, muted):
            await join_room(dev, room, nick)
            await join_room(carol, room, "carol")

        mark = len(target.proc.log_text())  # the log is the suite's: only what follows counts
        res = await dev.iq(bookmark_xml(muted, "never"), to=dev.bare, itype="set")
        if res.get("type") != "result":  # a server that refuses the publish-options
            res = await dev.iq(bookmark_xml(muted, "never", options=False), to=dev.bare, itype="set")
        assert res.get("type") == "result", "bookmark publish: %s" % short(res)
        await wait_until(lambda: re.search(r"notify\.settings .*chats=[1-9]", target.proc.log_text()[mark:]),
                         10, "the proxy reading the room's setting")

        await asyncio.sleep(0.5)  # SM enabled (resumable) before the cut
        dev.abort()
        await hibernated(target, "pushmuc-" + run)

        carol.send_xml(msg_xml(muted, "%s: muted mention %s" % (nick, run), mtype="groupchat"))
        carol.send_xml(msg_xml(loud, "nothing for alice %s" % run, mtype="groupchat"))
        await asyncio.sleep(3.0)
        assert not publishes(app, node), "muted room / no mention: %s" % [short(x) for x in publishes(app, node)]

        carol.send_xml(msg_xml(loud, "hey %s, look %s" % (nick, run), mtype="groupchat"))
        got = await wait_count(app, node, 1, 8)
        s = summary(got[0])
        assert s.get("last-message-sender") == "%s/carol" % loud, s
        assert "look " + run not in short(got[0], 10000), "no body by default"
        check_only_from_proxy(app, dev.bare)

    run_async(body, 120)
