"""Receipts (XEP-0184) and displayed markers (XEP-0333) once per account, not once per device
(issue 10 item 5).

alice has several devices through the proxy; bob talks to the upstream directly and asks for
receipts. However many of alice's devices answer, bob gets one receipt per message; the other
devices' answers are absorbed (reflected to alice's devices only); a device that syncs later and
answers what is answered sends nothing upstream; a request that arrived while every device was
offline is answered by the first device that syncs it. On Prosody and (S2_UPSTREAM=ejabberd)
ejabberd.
"""
import asyncio
import uuid

from test_history import connect, wait_anchor, wait_until
from xmppclient import body_of, q, run_async

NS_RECEIPTS = "urn:xmpp:receipts"
NS_MARKERS = "urn:xmpp:chat-markers:0"


def request_xml(to, body, mid):
    return ("<message to='%s' type='chat' id='%s'><body>%s</body><request xmlns='%s'/></message>"
            % (to, mid, body, NS_RECEIPTS))


def receipt_xml(to, mid):
    return "<message to='%s' type='chat'><received xmlns='%s' id='%s'/></message>" % (to, NS_RECEIPTS, mid)


def marker_xml(to, mid):
    return "<message to='%s' type='chat'><displayed xmlns='%s' id='%s'/></message>" % (to, NS_MARKERS, mid)


def receipts_for(client, mid):
    return client.received("message", lambda e: any(r.get("id") == mid
                                                    for r in e.iter(q(NS_RECEIPTS, "received"))))


def markers_for(client, mid):
    return client.received("message", lambda e: any(r.get("id") == mid
                                                     for r in e.iter(q(NS_MARKERS, "displayed"))))


def has_text(text):
    return lambda e: any(body_of(x) == text for x in [e] + list(e.iter(q("jabber:client", "message"))))


def test_two_devices_answer_bob_gets_one_receipt(target, upstream_target):
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        a = await connect(pool, target, "alice", "rcptA-" + run, sm=True, carbons=True)
        b = await connect(pool, target, "alice", "rcptB-" + run, sm=True, carbons=True)
        bob = await connect(pool, upstream_target, "bob", "rcpt-" + run)
        if getattr(target, "proc", None) is not None:
            await wait_anchor(target.proc)
        mids = ["r-%s-%d" % (run, i) for i in range(3)]
        for i, mid in enumerate(mids):
            text = "receipt please %s %d" % (run, i)
            bob.send_xml(request_xml(a.bare, text, mid))
            await a.wait_msg(has_text(text), 10, what="bob's message on A")
            await b.wait_msg(has_text(text), 10, what="bob's message on B")
            # Both devices answer, as clients do.
            a.send_xml(receipt_xml(bob.bare, mid))
            b.send_xml(receipt_xml(bob.bare, mid))
        await wait_until(lambda: all(receipts_for(bob, m) for m in mids), 10, "bob's receipts")
        await asyncio.sleep(2.0)  # a second one would have arrived by now
        counts = {m: len(receipts_for(bob, m)) for m in mids}
        assert counts == {m: 1 for m in mids}, "bob gets one receipt per message: %s" % counts
        # A device that syncs later and answers again: nothing more upstream.
        c = await connect(pool, target, "alice", "rcptC-" + run, sm=True)
        c.send_xml(receipt_xml(bob.bare, mids[0]))
        await asyncio.sleep(2.0)
        assert len(receipts_for(bob, mids[0])) == 1, "a late answer is absorbed"

    run_async(body, 90)


def test_request_while_every_device_offline_is_answered_by_the_first_that_syncs(target, upstream_target):
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        a = await connect(pool, target, "alice", "offA-" + run, sm=True)
        if getattr(target, "proc", None) is not None:
            await wait_anchor(target.proc)
        await a.disconnect()
        bob = await connect(pool, upstream_target, "bob", "off-" + run)
        mid, text = "o-%s" % run, "while you were away %s" % run
        bob.send_xml(request_xml(a.bare, text, mid))
        await asyncio.sleep(1.5)
        assert not receipts_for(bob, mid), "nobody answered yet"
        first = await connect(pool, target, "alice", "offA-" + run, sm=True)
        await first.wait_msg(has_text(text), 15, what="the message in A's catch-up")
        first.send_xml(receipt_xml(bob.bare, mid))
        await bob.wait_msg(lambda e: bool(receipts_for(bob, mid)), 10, what="the receipt")
        second = await connect(pool, target, "alice", "offB-" + run, sm=True)
        second.send_xml(receipt_xml(bob.bare, mid))
        await asyncio.sleep(2.0)
        assert len(receipts_for(bob, mid)) == 1, "one receipt: %d" % len(receipts_for(bob, mid))

    run_async(body, 90)


def test_displayed_marker_goes_upstream_once(target, upstream_target):
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        a = await connect(pool, target, "alice", "mkA-" + run, sm=True)
        b = await connect(pool, target, "alice", "mkB-" + run, sm=True)
        bob = await connect(pool, upstream_target, "bob", "mk-" + run)
        if getattr(target, "proc", None) is not None:
            await wait_anchor(target.proc)
        mid, text = "m-%s" % run, "mark me %s" % run
        bob.send_xml("<message to='%s' type='chat' id='%s'><body>%s</body><markable xmlns='%s'/></message>"
                     % (a.bare, mid, text, NS_MARKERS))
        await a.wait_msg(has_text(text), 10, what="on A")
        await b.wait_msg(has_text(text), 10, what="on B")
        a.send_xml(marker_xml(bob.bare, mid))
        await bob.wait_msg(lambda e: bool(markers_for(bob, mid)), 10, what="the marker")
        b.send_xml(marker_xml(bob.bare, mid))
        await asyncio.sleep(2.0)
        assert len(markers_for(bob, mid)) == 1, "one marker: %d" % len(markers_for(bob, mid))

    run_async(body, 90)


NS_MDS = "urn:xmpp:mds:displayed:0"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_SID = "urn:xmpp:sid:0"


def archive_id_of(el, account):
    for sid in el.iter(q(NS_SID, "stanza-id")):
        if sid.get("by") == account:
            return sid.get("id")
    return None


async def mds_items(client, owner=None):
    """{item id: stanza-id id} of the account's XEP-0490 node (or the error element's tag)."""
    res = await client.iq("<pubsub xmlns='%s'><items node='%s'/></pubsub>" % (NS_PUBSUB, NS_MDS),
                          to=owner)
    if res.get("type") != "result":
        return {"error": res}
    out = {}
    for item in res.iter(q(NS_PUBSUB, "item")):
        for sid in item.iter(q(NS_SID, "stanza-id")):
            out[item.get("id")] = sid.get("id")
    return out


def test_displayed_state_reaches_the_accounts_mds_node(target, upstream_target):
    """XEP-0490 by the proxy (issue 10 item 5): a device's displayed marker to bob publishes the
    marked message's archive id (the one the devices saw) to the account's urn:xmpp:mds:displayed:0
    node; a server-assisted <displayed/> is taken out of the message and published as given; the
    account's disco#info says urn:xmpp:mds:server-assist:0; the node is private (bob cannot read it)."""
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        a = await connect(pool, target, "alice", "mdsA-" + run, sm=True)
        bob = await connect(pool, upstream_target, "bob", "mds-" + run)
        direct = await connect(pool, upstream_target, "alice", "mdsD-" + run)
        if getattr(target, "proc", None) is not None:
            await wait_anchor(target.proc)
        info = await a.iq("<query xmlns='http://jabber.org/protocol/disco#info'/>", to=a.bare)
        features = {f.get("var") for f in info.iter(q("http://jabber.org/protocol/disco#info", "feature"))}
        assert "urn:xmpp:mds:server-assist:0" in features, "account features: %s" % sorted(features)

        # 1. A plain XEP-0333 marker: the proxy publishes the archive id of what it marks.
        mid, text = "mds-%s-1" % run, "read me %s" % run
        bob.send_xml("<message to='%s' type='chat' id='%s'><body>%s</body><markable xmlns='%s'/></message>"
                     % (a.bare, mid, text, NS_MARKERS))
        got = await a.wait_msg(has_text(text), 10, what="bob's message on A")
        aid = archive_id_of(got, a.bare)
        assert aid, "the message carries alice's archive id"
        a.send_xml(marker_xml(bob.bare, mid))
        await bob.wait_msg(lambda e: bool(markers_for(bob, mid)), 10, what="the marker at bob")
        state = {}

        async def published(want):
            state.update(await mds_items(direct))
            return state.get(bob.bare) == want

        for _ in range(40):
            if await published(aid):
                break
            await asyncio.sleep(0.25)
        assert state.get(bob.bare) == aid, "the node names bob's chat read up to %s: %s" % (aid, state)

        # 2. Server assist: taken out of the message, published verbatim, the marker still goes.
        mid2, text2 = "mds-%s-2" % run, "and me %s" % run
        bob.send_xml("<message to='%s' type='chat' id='%s'><body>%s</body><markable xmlns='%s'/></message>"
                     % (a.bare, mid2, text2, NS_MARKERS))
        got2 = await a.wait_msg(has_text(text2), 10, what="bob's second message on A")
        aid2 = archive_id_of(got2, a.bare)
        assert aid2 and aid2 != aid
        a.send_xml("<message to='%s' type='chat'><displayed xmlns='%s' id='%s'/>"
                   "<displayed xmlns='%s'><stanza-id xmlns='%s' by='%s' id='%s'/></displayed></message>"
                   % (bob.bare, NS_MARKERS, mid2, NS_MDS, NS_SID, a.bare, aid2))
        marker = await bob.wait_msg(lambda e: bool(markers_for(bob, mid2)), 10, what="the second marker")
        assert not list(marker.iter(q(NS_MDS, "displayed"))), "the assist element is stripped"
        for _ in range(40):
            if await published(aid2):
                break
            await asyncio.sleep(0.25)
        assert state.get(bob.bare) == aid2, "assisted state published: %s" % state

        # 3. One item per chat, kept: carol's chat read too, bob's state stays.
        carol = await connect(pool, upstream_target, "carol", "mds-" + run)
        mid3, text3 = "mds-%s-3" % run, "carol here %s" % run
        carol.send_xml("<message to='%s' type='chat' id='%s'><body>%s</body><markable xmlns='%s'/></message>"
                       % (a.bare, mid3, text3, NS_MARKERS))
        got3 = await a.wait_msg(has_text(text3), 10, what="carol's message on A")
        aid3 = archive_id_of(got3, a.bare)
        a.send_xml(marker_xml(carol.bare, mid3))
        for _ in range(40):
            state = await mds_items(direct)  # afresh: an item replaced would be gone
            if state.get(carol.bare) == aid3:
                break
            await asyncio.sleep(0.25)
        assert state.get(carol.bare) == aid3 and state.get(bob.bare) == aid2, \
            "both chats' states kept: %s" % state

        # 4. Private: bob cannot read alice's displayed state.
        seen = await mds_items(bob, owner=a.bare)
        assert "error" in seen, "bob reads alice's MDS node: %s" % seen

    run_async(body, 90)
