"""Retention (issue 13 item 4): --archive-max-messages on a running proxy.

bob sends 25 messages to alice; the sweep (every second here) keeps the newest 10. MAM through the
proxy then answers exactly those 10, with the archive ids the device saw live; a query after an id
that was pruned (a device's old sync point) continues from the oldest remaining message instead of
answering item-not-found forever; new messages keep arriving and being archived.
"""
import asyncio
import uuid

from test_history import collect, connect, mam_all, wait_anchor, wait_until
from xmppclient import body_of, msg_xml, q, run_async, short

NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"


def test_max_messages_prunes_the_oldest_and_mam_serves_the_rest(proxy_factory, upstream_target):
    p = proxy_factory.start(opts={"archive-max-messages": 10, "archive-sweep-interval": 1})
    t = p.target()

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        prefix = "ret-%s-" % run
        a = await connect(pool, t, "alice", "ret-" + run)
        await wait_anchor(p)
        bob = await connect(pool, upstream_target, "bob", "ret-" + run)
        for i in range(25):
            bob.send_xml(msg_xml(a.bare, "%s%02d" % (prefix, i)))
        await wait_until(lambda: len(collect([a], prefix, a.bare)) >= 25, 20, "25 messages live")
        live = {b: aid for b, aid, _ in collect([a], prefix, a.bare)}
        assert all(live.values()), live
        await wait_until(lambda: "retention.pruned" in p.log_text(), 15, "a retention sweep")
        await asyncio.sleep(1.5)  # the sweep of this account is done (batches of 500)

        items = await mam_all(a, max_=50)
        mine = [(body_of(m), aid) for aid, m in items if (body_of(m) or "").startswith(prefix)]
        # Other tests' messages to alice may be in her archive too: the newest 10 overall remain.
        assert len(items) == 10, "MAM keeps exactly --archive-max-messages: %d" % len(items)
        expect = ["%s%02d" % (prefix, i) for i in range(15, 25)]
        assert [b for b, _ in mine] == expect, mine
        assert all(live[b] == aid for b, aid in mine), "the archive ids the device saw live"

        # A sync point that was pruned: the page continues from the oldest remaining message.
        pruned_id = live["%s00" % prefix]
        qid = uuid.uuid4().hex[:8]
        res = await a.iq("<query xmlns='%s' queryid='%s'><set xmlns='%s'><max>50</max><after>%s</after></set>"
                         "</query>" % (NS_MAM, qid, NS_RSM, pruned_id), itype="set", timeout=15)
        assert res.get("type") == "result", "after a pruned id: %s" % short(res)
        got = [el for el in a.received("message")
               if el.find(q(NS_MAM, "result")) is not None and el.find(q(NS_MAM, "result")).get("queryid") == qid]
        assert len(got) == 10, "the remaining 10 after a pruned id, got %d" % len(got)

        # Traffic goes on and is archived.
        bob.send_xml(msg_xml(a.bare, prefix + "late"))
        await wait_until(lambda: any(b == prefix + "late" for b, _, _ in collect([a], prefix, a.bare)), 10,
                         "a message after the sweep")
        items = await mam_all(a, max_=50)
        assert body_of(items[-1][1]) == prefix + "late"

    run_async(body, 90)
