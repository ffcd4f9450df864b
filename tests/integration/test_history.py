"""One ordered history per account (issue 4): the mirror, the anchor and unified routing, end to end.

alice's devices connect through the proxy (slixmpp, legacy profile, XEP-0198 where a crash is
involved); bob talks to the upstream directly. Every delivered persistent message carries the
proxy's <stanza-id by='alice@domain'/> (the archive id); MAM for alice is served from the mirror.
Scenarios (a)–(g) of the issue, on Prosody and (S2_UPSTREAM=ejabberd) on ejabberd.
"""
import asyncio
import re
import random
import time
import uuid
from xml.sax.saxutils import quoteattr as q_attr

import pytest

from harness import tcp_sent_to
from xmppclient import (NS_CARBONS, Client, body_of, carbon_inner, has_body, msg_xml, q, run_async, short,
                        stanza_error)

NS_SID = "urn:xmpp:sid:0"
NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_DELAY = "urn:xmpp:delay"
NS_FORWARD = "urn:xmpp:forward:0"
NS_HINTS = "urn:xmpp:hints"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"


def inner_of(el):
    """The message itself: the forwarded one of a carbon, else the stanza."""
    for kind in ("received", "sent"):
        m = carbon_inner(el, kind)
        if m is not None:
            return m
    return el


def archive_id(el, account):
    m = inner_of(el)
    for s in m.findall(q(NS_SID, "stanza-id")):
        if s.get("by") == account:
            return s.get("id")
    return None


def text_of(el):
    return body_of(inner_of(el))


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


async def connect(pool, target, user, resource, sm=False, carbons=False, timeout=15.0):
    c = Client(target, user, resource)
    if sm:
        c.x.register_plugin("xep_0198")
    pool.clients.append(c)
    await c.connect(timeout=timeout)
    if carbons:
        res = await c.iq("<enable xmlns='%s'/>" % NS_CARBONS, itype="set")
        assert res.get("type") == "result", short(res)
    return c


async def mam_all(client, with_jid=None, start=None, max_=100, backwards=False, limit_pages=100):
    """Pages alice's archive through `client`; returns [(archive id, inner message)] in archive order."""
    items, cursor = [], None
    for _ in range(limit_pages):
        qid = uuid.uuid4().hex[:8]
        fields = ""
        if with_jid:
            fields += "<field var='with'><value>%s</value></field>" % with_jid
        if start:
            fields += "<field var='start'><value>%s</value></field>" % start
        rsm = "<max>%d</max>" % max_
        if backwards:
            rsm += "<before>%s</before>" % cursor if cursor else "<before/>"
        elif cursor:
            rsm += "<after>%s</after>" % cursor
        t0 = time.monotonic()
        res = await client.iq("<query xmlns='%s' queryid='%s'><x xmlns='jabber:x:data' type='submit'>"
                              "<field var='FORM_TYPE' type='hidden'><value>%s</value></field>%s</x>"
                              "<set xmlns='%s'>%s</set></query>" % (NS_MAM, qid, NS_MAM, fields, NS_RSM, rsm),
                              itype="set", timeout=20)
        assert res.get("type") == "result", "MAM query failed: %s" % short(res)
        fin = res.find(q(NS_MAM, "fin"))
        assert fin is not None, short(res)
        page = []
        for el in client.received("message", since=t0):
            r = el.find(q(NS_MAM, "result"))
            if r is None or r.get("queryid") != qid:
                continue
            m = r.find("%s/%s" % (q(NS_FORWARD, "forwarded"), q("jabber:client", "message")))
            assert m is not None, short(el)
            page.append((r.get("id"), m))
        items = page + items if backwards else items + page
        rset = fin.find(q(NS_RSM, "set"))
        if fin.get("complete") in ("true", "1") or not page:
            break
        first = rset.find(q(NS_RSM, "first")) if rset is not None else None
        last = rset.find(q(NS_RSM, "last")) if rset is not None else None
        cursor = (first if backwards else last).text
    return items


def collect(clients, prefix, account):
    """Every message with a body starting with `prefix` the given client incarnations received:
    [(body, archive id, delayed)] in arrival order."""
    out = []
    for c in clients:
        for t, kind, el in c.stanzas:
            if kind != "message":
                continue
            b = text_of(el)
            if b and b.startswith(prefix):
                out.append((t, b, archive_id(el, account), inner_of(el).find(q(NS_DELAY, "delay")) is not None))
    out.sort(key=lambda x: x[0])
    return [x[1:] for x in out]


async def wait_until(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


async def wait_anchor(proxy, timeout=10.0):
    """The anchor of alice is logged in upstream (it starts after her first PLAIN login)."""
    await wait_until(lambda: "anchor.ready" in proxy.log_text(), timeout, "alice's anchor in %s" % proxy.logfile)


# -------------------------------------------------------------------------------------------------
def test_offline_device_catches_up_once_in_order_with_same_ids(target, upstream_target):
    """(a) device A offline, bob sends 20 to alice's bare JID; A comes back and gets all 20 exactly
    once, in order, delayed, with the archive ids device B saw live."""
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        a = await connect(pool, target, "alice", "histA-" + run, sm=True)
        b = await connect(pool, target, "alice", "histB-" + run, sm=True)
        bob = await connect(pool, upstream_target, "bob", "hist-" + run)
        await a.disconnect()
        await asyncio.sleep(0.5)
        prefix = "a-%s-" % run
        for i in range(20):
            bob.send_xml(msg_xml(b.bare, "%s%02d" % (prefix, i)))
        await wait_until(lambda: len(collect([b], prefix, b.bare)) >= 20, 15, "20 messages on B")
        seen_b = collect([b], prefix, b.bare)
        assert [x[0] for x in seen_b] == ["%s%02d" % (prefix, i) for i in range(20)], seen_b
        ids_b = {x[0]: x[1] for x in seen_b}
        assert all(ids_b.values()) and len(set(ids_b.values())) == 20, "B: every message has its own id: %s" % seen_b
        assert sorted(ids_b.values()) == [ids_b["%s%02d" % (prefix, i)] for i in range(20)], \
            "archive ids follow arrival order"
        a2 = await connect(pool, target, "alice", "histA-" + run, sm=True)
        await wait_until(lambda: len(collect([a2], prefix, a2.bare)) >= 20, 15, "A's catch-up")
        await asyncio.sleep(1.0)  # nothing more may arrive
        seen_a = collect([a2], prefix, a2.bare)
        assert [x[0] for x in seen_a] == ["%s%02d" % (prefix, i) for i in range(20)], \
            "A gets each exactly once, in order: %s" % seen_a
        assert all(x[2] for x in seen_a), "catch-up messages carry <delay/>: %s" % seen_a
        assert {x[0]: x[1] for x in seen_a} == ids_b, "A sees the archive ids B saw"

    run_async(body, 90)


def test_sent_message_reaches_other_device_with_same_archive_id(target, upstream_target):
    """(b) alice sends from B; A (Carbons) sees it as <sent/> with the archive id MAM gives it."""
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        a = await connect(pool, target, "alice", "sentA-" + run, carbons=True)
        b = await connect(pool, target, "alice", "sentB-" + run)
        bob = await connect(pool, upstream_target, "bob", "sent-" + run)
        text = "b-%s from B" % run
        t0 = time.time()
        b.send_xml(msg_xml(bob.bare, text))
        got = await bob.wait_msg(has_body(text), 5)
        assert got.find(q(NS_SID, "origin-id")) is not None, "persistent sends get an origin-id: %s" % short(got)
        el = await a.wait_msg(lambda e: carbon_inner(e, "sent") is not None and text_of(e) == text, 5,
                              what="<sent/> copy of B's message")
        aid = archive_id(el, a.bare)
        assert aid, "the copy carries the archive id: %s" % short(el)
        assert carbon_inner(el, "sent").get("from") == b.full_jid, short(el)
        items = await mam_all(b, with_jid=bob.bare, start=iso(t0 - 5))
        hits = [i for i, m in items if body_of(m) == text]
        assert hits == [aid], "MAM has it once, under the same id: %s vs %s" % (hits, aid)
        # and it went upstream once, not again from the outbox
        await asyncio.sleep(1.0)
        assert len(bob.received("message", has_body(text))) == 1

    run_async(body, 60)


def test_kill9_while_bob_streams_300(proxy_factory, upstream_target):
    """(c) kill -9 the proxy three times while bob streams 300 numbered messages to alice: every
    device and a MAM query end up with each exactly once, under one archive id."""
    p = proxy_factory.start()
    t = p.target()
    n = 300

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        prefix = "c-%s-" % run
        first = await connect(pool, t, "alice", "killA-" + run, sm=True)  # PLAIN once: vault + anchor
        await wait_anchor(p)
        # both devices exist before the stream starts (a device that appears later starts at the
        # offline watermark: it is owed what no device has received, like offline storage)
        second = await connect(pool, t, "alice", "killB-" + run, sm=True)
        bob = await connect(pool, upstream_target, "bob", "kill-" + run)
        incarnations = {"A": [first], "B": [second]}
        stop = asyncio.Event()

        async def keep_connected(name):
            while not stop.is_set():
                cur = incarnations[name][-1] if incarnations[name] else None
                if cur is None or not cur.connected:
                    try:
                        incarnations[name].append(
                            await connect(pool, t, "alice", "kill%s-%s" % (name, run), sm=True, timeout=5))
                    except Exception:
                        await asyncio.sleep(0.3)
                        continue
                await asyncio.sleep(0.1)

        keepers = [asyncio.ensure_future(keep_connected(x)) for x in ("A", "B")]

        async def killer():
            for delay in (1.0, 1.5, 1.5):
                await asyncio.sleep(delay)
                p.kill9()
                await asyncio.sleep(0.3)
                p.restart()

        k = asyncio.ensure_future(killer())
        for i in range(n):
            bob.send_xml(msg_xml(first.bare, "%s%03d" % (prefix, i)))
            await asyncio.sleep(0.02)
        await k
        want = ["%s%03d" % (prefix, i) for i in range(n)]
        def missing():
            return {d: sorted(set(want) - set(x[0] for x in collect(incarnations[d], prefix, first.bare)))
                    for d in ("A", "B")}

        try:
            await wait_until(lambda: not any(missing().values()), 60, "both devices to have all %d" % n)
        except AssertionError as e:
            raise AssertionError("%s; missing: %s" % (e, {d: (len(m), m[:8]) for d, m in missing().items()}))
        finally:
            stop.set()
            for f in keepers:
                f.cancel()
        ids = {}
        redelivered = 0
        for d in ("A", "B"):
            seen = collect(incarnations[d], prefix, first.bare)
            per_body = {}
            for b_, aid, _ in seen:
                assert aid, "%s got %s without an archive id" % (d, b_)
                per_body.setdefault(b_, set()).add(aid)
            redelivered += len(seen) - len(per_body)
            for b_, aids in per_body.items():
                assert len(aids) == 1, "%s saw %s under two archive ids %s" % (d, b_, aids)
                ids.setdefault(b_, set()).update(aids)
            assert set(per_body) == set(want), "%s is missing %s" % (d, sorted(set(want) - set(per_body))[:10])
        assert all(len(v) == 1 for v in ids.values()), "devices disagree on archive ids"
        mam_client = await connect(pool, t, "alice", "killM-" + run)
        items = await mam_all(mam_client, with_jid=bob.bare, max_=250)
        bodies = [body_of(m) for _, m in items if (body_of(m) or "").startswith(prefix)]
        assert sorted(bodies) == want, "MAM: %d items, %d distinct, missing %s" % (
            len(bodies), len(set(bodies)), sorted(set(want) - set(bodies))[:10])
        for aid, m in items:
            if (body_of(m) or "").startswith(prefix):
                assert ids[body_of(m)] == {aid}, "MAM id differs from the delivered one for %s" % body_of(m)
        print("kill -9 x3 during %d messages: %d redeliveries of an already-seen archive id "
              "(clients deduplicate by stanza-id)" % (n, redelivered))

    run_async(body, 150)


def test_upstream_restart_mid_stream(target, upstream, upstream_target):
    """(d) the upstream server restarts while bob sends: nothing lost, nothing duplicated."""
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        prefix = "d-%s-" % run
        incarnations = [await connect(pool, target, "alice", "restartA-" + run, sm=True)]
        bob = await connect(pool, upstream_target, "bob", "restart-" + run)
        for i in range(30):
            bob.send_xml(msg_xml(incarnations[0].bare, "%s%02d" % (prefix, i)))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        await asyncio.get_running_loop().run_in_executor(None, upstream.restart)
        bob = None
        for _ in range(50):
            try:
                bob = await connect(pool, upstream_target, "bob", "restart2-" + run, timeout=5)
                break
            except Exception:
                await asyncio.sleep(0.3)
        assert bob is not None, "bob could not reconnect to the restarted upstream"
        for i in range(30, 60):
            bob.send_xml(msg_xml(incarnations[0].bare, "%s%02d" % (prefix, i)))
            await asyncio.sleep(0.01)
        want = ["%s%02d" % (prefix, i) for i in range(60)]

        async def reconnect_until_complete():
            end = time.monotonic() + 60
            while time.monotonic() < end:
                if set(x[0] for x in collect(incarnations, prefix, bob.bare.replace("bob", "alice"))) >= set(want):
                    return
                if not incarnations[-1].connected:
                    try:
                        incarnations.append(await connect(pool, target, "alice", "restartA-" + run, sm=True,
                                                          timeout=5))
                    except Exception:
                        await asyncio.sleep(0.5)
                        continue
                await asyncio.sleep(0.2)
            raise AssertionError("alice's device is missing %s" % sorted(
                set(want) - set(x[0] for x in collect(incarnations, prefix, incarnations[0].bare)))[:10])

        await reconnect_until_complete()
        account = incarnations[0].bare
        seen = collect(incarnations, prefix, account)
        per_body = {}
        for b_, aid, _ in seen:
            per_body.setdefault(b_, set()).add(aid)
        assert all(len(v) == 1 and None not in v for v in per_body.values()), per_body
        items = await mam_all(incarnations[-1], with_jid=bob.bare, max_=250)
        bodies = [body_of(m) for _, m in items if (body_of(m) or "").startswith(prefix)]
        assert sorted(bodies) == want, "MAM after the upstream restart: missing %s, duplicated %s" % (
            sorted(set(want) - set(bodies))[:10], sorted(b for b in set(bodies) if bodies.count(b) > 1)[:10])

    run_async(body, 150)


def test_message_sent_while_proxy_down_arrives_after_restart(proxy_factory, upstream_target):
    """(e) bob writes while the proxy is stopped; after the restart alice's device gets it."""
    p = proxy_factory.start()
    t = p.target()

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        prefix = "e-%s-" % run
        a = await connect(pool, t, "alice", "downA-" + run)
        await wait_anchor(p)
        await a.disconnect()
        rc, _, killed = p.stop()
        assert rc == 0 and not killed
        bob = await connect(pool, upstream_target, "bob", "down-" + run)
        for i in range(5):
            bob.send_xml(msg_xml(a.bare, "%s%d" % (prefix, i)))
        await asyncio.sleep(1.0)
        p.restart()
        a2 = await connect(pool, t, "alice", "downA-" + run)
        await wait_until(lambda: len(collect([a2], prefix, a2.bare)) >= 5, 20, "the 5 messages after restart")
        await asyncio.sleep(1.0)
        seen = collect([a2], prefix, a2.bare)
        assert [x[0] for x in seen] == ["%s%d" % (prefix, i) for i in range(5)], seen
        assert all(x[1] for x in seen) and all(x[2] for x in seen), "archived and delayed: %s" % seen

    run_async(body, 90)


def test_full_jid_message_to_gone_device_is_not_rerouted(target, upstream_target):
    """(f) ephemeral stanzas bob addresses to device A after it left never reach device B; the one
    that expects an answer bounces with service-unavailable."""
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        a = await connect(pool, target, "alice", "goneA-" + run)
        b = await connect(pool, target, "alice", "goneB-" + run, carbons=True)
        bob = await connect(pool, upstream_target, "bob", "gone-" + run)
        gone = a.full_jid
        await a.disconnect()
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        bob.send_xml("<message xmlns='jabber:client' to='%s' type='chat' id='cs-%s'><composing xmlns='%s'/>"
                     "</message>" % (gone, run, NS_CHATSTATES))
        ns_text = "f-%s no-store" % run
        bob.send_xml("<message xmlns='jabber:client' to='%s' type='normal' id='ns-%s'><body>%s</body>"
                     "<no-store xmlns='%s'/></message>" % (gone, run, ns_text, NS_HINTS))
        barrier = "f-%s barrier" % run
        bob.send_xml(msg_xml(b.bare, barrier))
        await b.wait_msg(has_body(barrier), 5)
        await asyncio.sleep(0.5)
        leaked = [short(el) for el in b.received("message", since=t0)
                  if run in (el.get("id") or "") or text_of(el) == ns_text
                  or inner_of(el).find(q(NS_CHATSTATES, "composing")) is not None]
        assert not leaked, "stanzas for %s were rerouted to %s: %s" % (gone, b.full_jid, leaked)
        err = await bob.wait_msg(lambda el: el.get("type") == "error" and el.get("id") == "ns-" + run, 5,
                                 what="the bounce of the no-store message")
        assert stanza_error(err)[1] == "service-unavailable", short(err)

    run_async(body, 60)


def test_mam_paging_over_1000_returns_each_once(target, upstream_target):
    """(g) 1000 messages, paged forwards and backwards through the proxy's MAM: each exactly once."""
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        prefix = "g-%s-" % run
        a = await connect(pool, target, "alice", "mamA-" + run)
        bob = await connect(pool, upstream_target, "bob", "mam-" + run)
        t0 = time.time()
        n = 1000
        for i in range(n):
            bob.send_xml(msg_xml(a.bare, "%s%04d" % (prefix, i)))
            if i % 100 == 99:
                await asyncio.sleep(0.05)
        await wait_until(lambda: len(collect([a], prefix, a.bare)) >= n, 60, "%d live messages" % n)
        want = ["%s%04d" % (prefix, i) for i in range(n)]
        fwd = await mam_all(a, with_jid=bob.bare, start=iso(t0 - 5), max_=100)
        bodies = [body_of(m) for _, m in fwd if (body_of(m) or "").startswith(prefix)]
        assert bodies == want, "forward paging: %d items, first missing %s" % (
            len(bodies), sorted(set(want) - set(bodies))[:5])
        ids = [i for i, m in fwd if (body_of(m) or "").startswith(prefix)]
        assert len(set(ids)) == n and ids == sorted(ids), "ids unique and ascending"
        live = {b_: aid for b_, aid, _ in collect([a], prefix, a.bare)}
        assert all(live[body_of(m)] == i for i, m in fwd if (body_of(m) or "").startswith(prefix)), \
            "MAM ids are the ids delivered live"
        # RSM <count/> is the whole result set and <first index/> the page's place in it (XEP-0059)
        counts = []
        cursor = ""
        for page in range(2):
            res = await a.iq("<query xmlns='%s'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' "
                             "type='hidden'><value>%s</value></field><field var='start'><value>%s</value></field>"
                             "</x><set xmlns='%s'><max>100</max>%s</set></query>"
                             % (NS_MAM, NS_MAM, iso(t0 - 5), NS_RSM, cursor), itype="set")
            rset = res.find("%s/%s" % (q(NS_MAM, "fin"), q(NS_RSM, "set")))
            assert rset is not None, short(res)
            counts.append((int(rset.find(q(NS_RSM, "count")).text), rset.find(q(NS_RSM, "first")).get("index")))
            cursor = "<after>%s</after>" % rset.find(q(NS_RSM, "last")).text
        assert counts[0][0] >= n and counts[1][0] == counts[0][0], "count is the whole set: %s" % counts
        assert counts[0][1] == "0" and counts[1][1] == "100", "first index is the page's place: %s" % counts
        back = await mam_all(a, with_jid=bob.bare, start=iso(t0 - 5), max_=250, backwards=True)
        bodies_back = [body_of(m) for _, m in back if (body_of(m) or "").startswith(prefix)]
        assert bodies_back == want, "backward paging: %d items" % len(bodies_back)

    run_async(body, 150)


def test_mam_refuses_other_archives_and_unknown_ids(target):
    """MAM for another account is refused; an unknown RSM id is item-not-found."""
    async def body(pool):
        a = await connect(pool, target, "alice", "mamerr-" + uuid.uuid4().hex[:6])
        bob_bare = a.bare.replace("alice@", "bob@")
        res = await a.iq("<query xmlns='%s'/>" % NS_MAM, to=bob_bare, itype="set")
        assert res.get("type") == "error" and stanza_error(res)[1] == "forbidden", short(res)
        res = await a.iq("<query xmlns='%s'><set xmlns='%s'><after>ZZZZZZZZZZZZZ</after></set></query>"
                         % (NS_MAM, NS_RSM), itype="set")
        assert res.get("type") == "error" and stanza_error(res)[1] == "item-not-found", short(res)
        res = await a.iq("<query xmlns='%s'><x xmlns='jabber:x:data' type='submit'><field var='bogus'>"
                         "<value>1</value></field></x></query>" % NS_MAM, itype="set")
        assert res.get("type") == "error" and stanza_error(res)[1] == "bad-request", short(res)

    run_async(body, 30)


def test_error_for_a_sent_message_reaches_every_device(target):
    """A bounce of what device B sent is archived with the message and reaches device A too."""
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        a = await connect(pool, target, "alice", "errA-" + run)
        b = await connect(pool, target, "alice", "errB-" + run)
        # a domain nobody serves: both servers bounce (remote-server-not-found or similar)
        nobody = "nobody@nowhere-%s.invalid" % run
        mid = "err-" + run
        b.send_xml(msg_xml(nobody, "to nobody %s" % run, mid=mid))
        on_b = await b.wait_msg(lambda el: el.get("type") == "error" and el.get("id") == mid, 5,
                                what="the bounce on the sending device")
        on_a = await a.wait_msg(lambda el: el.get("type") == "error" and el.get("id") == mid, 5,
                                what="the bounce on the other device")
        assert archive_id(on_a, a.bare) and archive_id(on_a, a.bare) == archive_id(on_b, b.bare), \
            "the error is history: same archive id on both: %s / %s" % (short(on_a), short(on_b))
        await asyncio.sleep(0.5)
        assert len(b.received("message", lambda el: el.get("id") == mid and el.get("type") == "error")) == 1

    run_async(body, 30)


def test_acknowledged_sends_survive_kill9(proxy_factory, upstream_target):
    """A message the proxy acknowledged (XEP-0198 <a/>) reaches bob even when the proxy is killed
    right after: it was committed with its outbox entry, and the restarted proxy sends it."""
    from rawxmpp import RawXMPP, XMPPTimeout
    p = proxy_factory.start()
    t = p.target()
    run = uuid.uuid4().hex[:6]
    n = 200

    async def body(pool):
        bob = await connect(pool, upstream_target, "bob", "ack-" + run)
        loop = asyncio.get_running_loop()

        def send_and_kill():
            c = RawXMPP.connect(t.host, t.starttls_port, t.domain, cafile=t.cafile)
            c.login("alice", "alicepw", resource="ackA-" + run)
            c.send("<enable xmlns='urn:xmpp:sm:3'/>")
            c.wait_for(lambda el: el.tag.endswith("}enabled"), what="<enabled/>")
            acked = 0
            for i in range(n):
                c.send(msg_xml("bob@%s" % t.domain, "h-%s-%03d" % (run, i)))
                if i % 20 == 19:
                    c.send("<r xmlns='urn:xmpp:sm:3'/>")
            c.send("<r xmlns='urn:xmpp:sm:3'/>")
            # crash the proxy as soon as it acknowledged something, while the rest is in flight
            end = time.monotonic() + 5
            while time.monotonic() < end and acked == 0:
                try:
                    el = c.next_element(timeout=0.01)
                except XMPPTimeout:
                    c.send("<r xmlns='urn:xmpp:sm:3'/>")  # acks follow commits: ask again
                    continue
                if el is not None and el.tag.endswith("}a"):
                    acked = max(acked, int(el.get("h")))
            p.kill9()
            c.close()
            return acked

        # alice's vault entry and anchor first (PLAIN once)
        first = await connect(pool, t, "alice", "ackF-" + run)
        await wait_anchor(p)
        await first.disconnect()
        acked = await loop.run_in_executor(None, send_and_kill)
        assert acked > 0, "the proxy acknowledged nothing before the kill"
        p.restart()
        want = ["h-%s-%03d" % (run, i) for i in range(acked)]
        await wait_until(lambda: set(want) <= set(body_of(el) for el in bob.received("message")), 20,
                         "bob to get the %d acknowledged messages" % acked)
        got = [body_of(el) for el in bob.received("message") if (body_of(el) or "").startswith("h-%s-" % run)]
        print("acknowledged %d of %d before kill -9; bob got %d (%d distinct)" % (acked, n, len(got), len(set(got))))

    run_async(body, 90)


def test_settled_outbox_entries_leave_the_store_before_a_stop(proxy_factory, upstream_target):
    """The upstream's acks settle outbox entries; their removals from the store are written
    together, kRemovalDelayMs later (outbox.h), not one commit each. Those still waiting when the
    proxy is stopped are written before it exits: after a restart nothing is held, searched for
    or resent, and bob has every message once."""
    from harness import free_closed_port, metric_total as total, scrape_metrics
    mport = free_closed_port()
    p = proxy_factory.start({"metrics": "127.0.0.1:%d" % mport})
    t = p.target()
    run = uuid.uuid4().hex[:6]
    n = 40

    async def body(pool):
        bob = await connect(pool, upstream_target, "bob", "rm-" + run)
        a = await connect(pool, t, "alice", "rmA-" + run)
        await wait_anchor(p)
        m0 = scrape_metrics(mport)
        for i in range(n):  # at a chat's pace: each is committed, sent and acked on its own
            a.send_xml(msg_xml(bob.bare, "rm-%s-%03d" % (run, i)))
            await asyncio.sleep(0.02)
        await wait_until(lambda: total(scrape_metrics(mport), "s2proxy_outbox_settled_total")
                         - total(m0, "s2proxy_outbox_settled_total") >= n, 20, "the upstream to ack all %d" % n)
        m1 = scrape_metrics(mport)
        # Stopped at once: the last removals are likely still waiting for their batch.
        rc, _, killed = p.stop()
        assert rc == 0 and not killed, (rc, killed)
        commits = total(m1, "s2proxy_mirror_commit_seconds_count") - total(m0, "s2proxy_mirror_commit_seconds_count")
        p.restart()
        await asyncio.sleep(3.0)  # the anchor is back and would have searched for anything held
        m2 = scrape_metrics(mport)
        assert total(m2, "s2proxy_outbox_pending") == 0, "entries held after the restart"
        assert total(m2, "s2proxy_outbox_settled_total") == 0, "entries were held and searched for after the restart"
        assert total(m2, "s2proxy_outbox_resent_total") == 0
        got = [body_of(el) for el in bob.received("message") if (body_of(el) or "").startswith("rm-%s-" % run)]
        assert sorted(got) == ["rm-%s-%03d" % (run, i) for i in range(n)], "bob: %d messages, %d distinct" % (
            len(got), len(set(got)))
        # One append per message at this pace; the removals were one commit each too (2n, measured:
        # 80 for 40), now a few per 50 ms batch.
        assert commits <= 1.6 * n, "%d commits for %d messages: removals not batched" % (commits, n)
        print("%d messages: %d commits; nothing held after stop" % (n, commits))

    run_async(body, 60)


def test_long_absence_catch_up_is_paced_by_acks(proxy_factory, upstream_target):
    """A legacy device that missed more than its SM queue holds gets everything, in order, once:
    the catch-up waits for its acks instead of overflowing the queue (here 40 stanzas)."""
    p = proxy_factory.start(opts={"sm-max-queue": 40, "mam-max-page": 20})
    t = p.target()

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        prefix = "p-%s-" % run
        a = await connect(pool, t, "alice", "paceA-" + run, sm=True)
        await wait_anchor(p)
        await a.disconnect()
        bob = await connect(pool, upstream_target, "bob", "pace-" + run)
        n = 150
        for i in range(n):
            bob.send_xml(msg_xml(a.bare, "%s%03d" % (prefix, i)))
        mam_client = await connect(pool, t, "alice", "paceM-" + run)
        await wait_until(lambda: len(collect([mam_client], prefix, a.bare)) >= n, 20, "the mirror to have all")
        await mam_client.disconnect()
        a2 = await connect(pool, t, "alice", "paceA-" + run, sm=True)
        await wait_until(lambda: len(collect([a2], prefix, a2.bare)) >= n, 30, "the paced catch-up")
        await asyncio.sleep(0.5)
        seen = collect([a2], prefix, a2.bare)
        assert [x[0] for x in seen] == ["%s%03d" % (prefix, i) for i in range(n)], "in order, once"
        assert a2.connected, "the device was not disconnected by an SM queue overflow"
        assert "sm_queue_full" not in p.log_text()

    run_async(body, 90)


def test_send_and_close_delivers_once(target, upstream_target):
    """A client that sends and closes at once (sendxmpp style): the message was committed and
    acknowledged, reaches bob, and only once — the device's link drains instead of handing
    its unacknowledged sends to the anchor."""
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        bob = await connect(pool, upstream_target, "bob", "once-" + run)
        texts = ["once-%s-%d" % (run, i) for i in range(5)]
        for text in texts:
            a = await connect(pool, target, "alice", "onceA-" + run)
            a.send_xml(msg_xml(bob.bare, text))
            await a.disconnect()
        for text in texts:
            await bob.wait_msg(has_body(text), 5)
        await asyncio.sleep(3.5)  # past the drain timeout: a resend through the anchor would be here
        counts = {t_: len(bob.received("message", has_body(t_))) for t_ in texts}
        assert all(c == 1 for c in counts.values()), "each message exactly once: %s" % counts

    run_async(body, 60)


def test_bare_jid_messages_have_one_upstream_path(target, upstream_target):
    """Device links advertise priority -1: the upstream (Prosody and ejabberd alike) delivers
    bare-JID messages to the anchor only, never to a device's link as well."""
    async def body(pool):
        run = uuid.uuid4().hex[:6]
        proc = target.proc
        a = await connect(pool, target, "alice", "pathA-" + run)
        bob = await connect(pool, upstream_target, "bob", "path-" + run)
        await asyncio.sleep(0.3)
        mark = proc.log_size()
        texts = ["path-%s-%d" % (run, i) for i in range(3)]
        for text in texts:
            bob.send_xml(msg_xml(a.bare, text))
        for text in texts:
            await a.wait_msg(has_body(text), 5)
        await asyncio.sleep(0.3)
        log = proc.log_since(mark, max_lines=1000)
        via = [ln.split(" via=")[1].split()[0] for ln in log.splitlines()
               if "hub.entering" in ln and "class=chat_body" in ln]
        assert via and all(v == "anchor" for v in via), "bare-JID messages arrived via %s" % via
        assert len(via) == len(texts), "each arrived once upstream-side: %s" % via

    run_async(body, 30)


def test_first_login_window_before_the_anchor_loses_nothing(proxy_factory, upstream_target):
    """An account's first login on a fresh proxy: its device's link is online upstream (priority
    -1) before the anchor is; bare-JID messages bob sends in between are archived upstream for
    nobody. The mirror's history starts at the account's first login, not at the anchor's first
    MAM query: every one reaches the device once, in order, and MAM through the proxy has each
    once. (Seen on ejabberd: one sent 20 ms after login never arrived.)"""
    p = proxy_factory.start()
    t = p.target()

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        prefix = "w-%s-" % run
        bob = await connect(pool, upstream_target, "bob", "win-" + run)
        bare = "alice@%s" % t.domain
        texts = ["%s%02d" % (prefix, i) for i in range(33)]

        async def stream():
            # Through the window: before the device binds, while only its link is online
            # upstream (priority -1), until the anchor's presence (tens of ms in all).
            for text in texts[:30]:
                bob.send_xml(msg_xml(bare, text))
                await asyncio.sleep(0.015)
        sender = asyncio.ensure_future(stream())
        a = await connect(pool, t, "alice", "winA-" + run)
        await sender
        await wait_anchor(p)
        for text in texts[30:]:
            bob.send_xml(msg_xml(a.bare, text))
        await wait_until(lambda: len(collect([a], prefix, a.bare)) >= len(texts), 20,
                         "the %d messages on alice's device" % len(texts))
        await asyncio.sleep(1.5)  # a late duplicate would show by now (catch-up settles in 1 s)
        seen = collect([a], prefix, a.bare)
        assert [x[0] for x in seen] == texts, seen
        assert all(x[1] for x in seen), "each carries an archive id: %s" % seen
        items = await mam_all(a, with_jid=bob.bare)
        mine = [(aid, text_of(m)) for aid, m in items if (text_of(m) or "").startswith(prefix)]
        assert [x[1] for x in mine] == texts, "MAM through the proxy: %s" % mine
        assert [x[0] for x in mine] == [x[1] for x in seen], "the archive ids the device saw"

    run_async(body, 60)


CAPS_PRESENCE = ("<presence xmlns='jabber:client'><show>chat</show><priority>5</priority>"
                 "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://s2proxy.test/%s' "
                 "ver='s2proxy-test='/></presence>")


async def watcher_and_bob(pool, upstream_target, tag):
    """A run id; alice's own resource directly on the upstream at priority -1 (it sees what the
    upstream shows of alice's other resources); bob directly on the upstream."""
    run = uuid.uuid4().hex[:6]
    watch = await connect(pool, upstream_target, "alice", "watch-" + run)
    watch.send_xml("<presence xmlns='jabber:client'><priority>-1</priority></presence>")
    bob = await connect(pool, upstream_target, "bob", "%s-%s" % (tag, run))
    return run, watch, bob


async def once_each_with_mam_ids(incarnations, prefix, texts, peer):
    """Every text reached the device (its `incarnations`, live or after a return) once, with an
    archive id; MAM through the proxy (asked on the last incarnation) holds them once each in the
    order they were sent, under the ids the device saw."""
    device = incarnations[-1]
    await wait_until(lambda: len(collect(incarnations, prefix, device.bare)) >= len(texts), 20,
                     "every message on the device, live or after its return")
    await asyncio.sleep(1.5)  # a late duplicate would show by now
    seen = collect(incarnations, prefix, device.bare)
    assert sorted(x[0] for x in seen) == texts, "each once: %s" % seen
    assert all(x[1] for x in seen), "each carries an archive id: %s" % seen
    items = await mam_all(device, with_jid=peer)
    mine = [(aid, text_of(m)) for aid, m in items if (text_of(m) or "").startswith(prefix)]
    assert [x[1] for x in mine] == texts, "MAM through the proxy, once each, in order: %s" % mine
    ids = {x[0]: x[1] for x in seen}
    assert all(ids[text] == aid for aid, text in mine), "the archive ids the device saw"


def presences_seen(watch, resource, ptype):
    """The presences from `resource` of the watcher's own account that the watcher (a direct
    resource of that account) saw, of type `ptype` (None: available)."""
    return [el for _, kind, el in watch.stanzas if kind == "presence"
            and el.get("from") == watch.bare + "/" + resource and el.get("type") == ptype]


def has_caps(presence, tag):
    c = presence.find("{http://jabber.org/protocol/caps}c")
    return c is not None and c.get("node") == "https://s2proxy.test/" + tag


def test_single_device_account_holds_one_upstream_session(proxy_factory, upstream_target):
    """Issue 12 item 3: while an account's only device is attached, its link also serves as the
    anchor, so the upstream holds one session for the account, as for a direct client. Seen from
    the upstream: another resource of alice (connected directly, priority -1) gets presence from
    the device's resource and none from the anchor's. When the device leaves, the anchor logs in a
    session of its own before the link closes (with --anchor-keeps-device-link false; the default,
    keeping the link, has its own test below); bob's messages through that hand-over all reach the
    mirror once, in order, and the device gets each once when it returns."""
    p = proxy_factory.start(opts={"anchor-keeps-device-link": "false"})
    t = p.target()
    anchor_res = "s2proxy-%d" % p.port  # the harness gives each proxy its own (conftest.py)

    async def body(pool):
        run, watch, bob = await watcher_and_bob(pool, upstream_target, "one")
        prefix = "one-%s-" % run
        a = await connect(pool, t, "alice", "oneA-" + run)
        await wait_anchor(p)
        assert "anchor.rides_device_link" in p.log_text(), "the anchor rode the device's link"

        def presences(resource, ptype):
            return presences_seen(watch, resource, ptype)

        def avail(resource):
            return presences(resource, None)

        def gone(resource):
            return presences(resource, "unavailable")

        # The device's own initial presence (slixmpp gives it an id; the anchor's own has none):
        # it leaves slixmpp's send queue, while send_xml below writes at once and could overtake
        # it, making it the last presence the watcher sees.
        await wait_until(lambda: any(el.get("id") for el in avail(a.full_jid.split("/", 1)[1])), 5,
                         "the device's presence upstream")
        # What the client puts in its presence reaches its contacts, on the ridden link too.
        a.send_xml(CAPS_PRESENCE % "one")
        await wait_until(lambda: any(has_caps(el, "one") for el in avail(a.full_jid.split("/", 1)[1])), 5,
                         "the device's own presence (caps) upstream")
        last = avail(a.full_jid.split("/", 1)[1])[-1]
        assert last.findtext("{jabber:client}priority") == "0" and last.findtext("{jabber:client}show") == "chat", \
            "the device's presence at the anchor's priority: %s" % short(last)
        texts = ["%s%02d" % (prefix, i) for i in range(40)]
        for text in texts[:10]:
            bob.send_xml(msg_xml(a.bare, text))
        await wait_until(lambda: len(collect([a], prefix, a.bare)) >= 10, 10, "the first 10 on the device")
        assert not avail(anchor_res), "no anchor session of its own while the device is attached"

        # The device leaves; bob keeps writing through the hand-over.
        async def stream():
            for text in texts[10:]:
                bob.send_xml(msg_xml(a.bare, text))
                await asyncio.sleep(0.02)
        await a.disconnect()
        await stream()
        await wait_until(lambda: avail(anchor_res), 10, "the anchor's own session upstream")
        await wait_until(lambda: gone(a.full_jid.split("/", 1)[1]), 20, "the device's link closed")

        a2 = await connect(pool, t, "alice", "oneA-" + run)
        await once_each_with_mam_ids([a, a2], prefix, texts, bob.bare)

    run_async(body, 90)


def test_returning_device_takes_the_anchor_onto_its_link(proxy_factory, upstream_target):
    """Issue 12 item 3, the reverse hand-over: an anchor with a session of its own (here after
    the device left and came back; after a restart it is the same) moves onto the link of the
    account's only device once that device has been attached for --anchor-move-after, and its own
    session ends only once the anchor is ready on the link. Seen from the upstream: the anchor's
    resource goes unavailable and the device's stays. Bob writes throughout: every message reaches
    the device once, in order, with the archive id MAM gives; none is lost or doubled. (With
    --anchor-keeps-device-link false, so that the anchor has a session of its own when the device
    comes back.)"""
    p = proxy_factory.start(opts={"anchor-move-after": 1, "anchor-keeps-device-link": "false"})
    t = p.target()
    anchor_res = "s2proxy-%d" % p.port

    async def body(pool):
        run, watch, bob = await watcher_and_bob(pool, upstream_target, "mv")
        prefix = "mv-%s-" % run

        def presences(resource, ptype):
            return presences_seen(watch, resource, ptype)

        a = await connect(pool, t, "alice", "mvA-" + run)
        await wait_anchor(p)
        device_res = a.full_jid.split("/", 1)[1]
        await a.disconnect()
        await wait_until(lambda: presences(anchor_res, None), 10, "the anchor's own session upstream")
        assert p.log_text().count("anchor.moves_to_device_link") == 0

        before = len(presences(device_res, None))
        a2 = await connect(pool, t, "alice", "mvA-" + run)
        # After the client's own initial presence, a later one with entity caps.
        await wait_until(lambda: len(presences(device_res, None)) > before, 5, "the device's presence")
        a2.send_xml(CAPS_PRESENCE % "mv")
        await wait_until(lambda: any(has_caps(el, "mv") for el in presences(device_res, None)), 5,
                         "the device's caps upstream")
        gone_before = len(presences(anchor_res, "unavailable"))
        texts = ["%s%02d" % (prefix, i) for i in range(60)]
        for text in texts:  # 3 s of bob's messages across the move (after 1 s)
            bob.send_xml(msg_xml(a2.bare, text))
            await asyncio.sleep(0.05)
        await wait_until(lambda: "anchor.moves_to_device_link" in p.log_text(), 10, "the anchor moved")
        await wait_until(lambda: len(presences(anchor_res, "unavailable")) > gone_before, 20,
                         "the anchor's own session ended upstream")
        await wait_until(lambda: len(collect([a2], prefix, a2.bare)) >= len(texts), 20,
                         "every message on the device")
        await asyncio.sleep(1.5)  # a late duplicate would show by now
        seen = collect([a2], prefix, a2.bare)
        assert [x[0] for x in seen] == texts, "each once, in order: %s" % seen
        assert all(x[1] for x in seen), "each carries an archive id: %s" % seen
        last = presences(device_res, None)[-1]
        assert last.findtext("{jabber:client}priority") == "0" and has_caps(last, "mv"), \
            "the device's own presence (caps) at the anchor's priority now: %s" % short(last)
        items = await mam_all(a2, with_jid=bob.bare)
        mine = [(aid, text_of(m)) for aid, m in items if (text_of(m) or "").startswith(prefix)]
        assert [x[1] for x in mine] == texts, "MAM through the proxy, once each, in order: %s" % mine
        ids = {x[0]: x[1] for x in seen}
        assert all(ids[text] == aid for aid, text in mine), "the archive ids the device saw"

        # The device ends again: the anchor logs in its own session before the link closes.
        await a2.disconnect()
        await wait_until(lambda: len(presences(anchor_res, None)) >= 2, 10,
                         "the anchor's own session again")

    run_async(body, 90)


def test_a_move_catches_up_from_the_handover_not_from_an_old_cursor(proxy_factory, upstream_target):
    """An account that only sends moves no sync cursor: the Carbons of what it sends carry no
    upstream archive id on Prosody 0.12. Its anchor, on a session of its own, commits them live.
    When the anchor then moves onto the link of the returning device, its catch-up starts at the
    handover (the session it leaves stayed up until then), not at the last incoming message:
    before, it re-read everything sent since, and a burst in flight made it a chase of 30 s with
    live messages held (bench_relay with the anchor moving mid-burst). What bob sends across the
    move still reaches the device once, in order, with its MAM id."""
    p = proxy_factory.start(opts={"anchor-move-after": 1, "anchor-keeps-device-link": "false"})
    t = p.target()

    async def body(pool):
        run, watch, bob = await watcher_and_bob(pool, upstream_target, "hs")
        prefix = "hs-%s-m" % run  # what crosses the move
        before = "hs-%s-x" % run  # what came before it
        a = await connect(pool, t, "alice", "hsA-" + run)
        await wait_anchor(p)
        bob.send_xml(msg_xml(a.bare, before + "first"))  # a received message: the cursor
        await wait_until(lambda: collect([a], before, a.bare), 10, "bob's first message")
        await a.disconnect()
        # anchor-keeps-device-link is off: the anchor logs in a session of its own (its second ready)
        await wait_until(lambda: p.log_text().count("anchor.ready") >= 2, 10, "the anchor's own session")
        # alice sends 250 from her direct session: the anchor commits their Carbons live
        sent = ["%ssent-%03d" % (before, i) for i in range(250)]
        for text in sent:
            watch.send_xml(msg_xml(bob.bare, text))
        await wait_until(lambda: p.log_text().count("fwd=sent") >= len(sent), 20, "the Carbons of what alice sent")
        await asyncio.sleep(3.0)  # older than the handover's slack
        mark = p.log_size()
        a2 = await connect(pool, t, "alice", "hsA-" + run)
        texts = ["%s%02d" % (prefix, i) for i in range(30)]
        for text in texts:  # across the move (after 1 s)
            bob.send_xml(msg_xml(a2.bare, text))
            await asyncio.sleep(0.05)
        await wait_until(lambda: "anchor.moves_to_device_link" in p.log_since(mark, 100000), 10, "the anchor moved")
        await wait_until(lambda: "hub.catchup_finished" in p.log_since(mark, 100000).split(
            "anchor.moves_to_device_link", 1)[-1], 20, "the catch-up after the move")
        after_move = p.log_since(mark, 100000).split("anchor.moves_to_device_link", 1)[-1]
        assert "hub.catchup_start account=%s from=handover" % a2.bare in after_move, after_move[-2000:]
        read = sum(int(m) for m in re.findall(r"hub\.catchup_answer account=\S+ ok=true items=(\d+)", after_move))
        assert read < 100, "the catch-up after the move re-read %d archived messages (250 sent before)" % read
        await once_each_with_mam_ids([a2], prefix, texts, bob.bare)

    run_async(body, 90)


def test_anchor_keeps_the_link_of_a_device_that_leaves(proxy_factory, upstream_target):
    """docs/architecture.md §26: when the account's only device leaves, the anchor, which rode its
    link, keeps that upstream session as its own: no login upstream, and the upstream shows the
    device's resource with the anchor's idle presence (priority 0, `xa`, none of the device's caps),
    never the anchor's own resource. A contact the device sent directed presence to sees it leave.
    When the device comes back and binds the same resource, it takes the session back. Bob writes
    through both hand-overs: every message reaches the device once, in order, with the archive id
    MAM gives."""
    p = proxy_factory.start()
    t = p.target()
    anchor_res = "s2proxy-%d" % p.port

    async def body(pool):
        run, watch, bob = await watcher_and_bob(pool, upstream_target, "keep")
        prefix = "keep-%s-" % run
        a = await connect(pool, t, "alice", "keepA-" + run)
        await wait_anchor(p)
        res = a.full_jid.split("/", 1)[1]
        assert "anchor.rides_device_link" in p.log_text(), "the anchor rode the device's link"

        def avail(resource):
            return presences_seen(watch, resource, None)

        def gone(resource):
            return presences_seen(watch, resource, "unavailable")

        a.send_xml(CAPS_PRESENCE % "keep")
        await wait_until(lambda: any(has_caps(el, "keep") for el in avail(res)), 5, "the device's caps upstream")
        a.send_xml("<presence xmlns='jabber:client' to=%s/>" % q_attr(bob.full_jid))
        bob_saw = lambda ptype: [el for _, kind, el in bob.stanzas if kind == "presence"
                                 and el.get("from") == a.full_jid and el.get("type") == ptype]
        await wait_until(lambda: bob_saw(None), 5, "bob got the device's directed presence")
        texts = ["%s%02d" % (prefix, i) for i in range(45)]
        for text in texts[:10]:
            bob.send_xml(msg_xml(a.bare, text))
        await wait_until(lambda: len(collect([a], prefix, a.bare)) >= 10, 10, "the first 10 on the device")
        shown = len(avail(res))

        async def stream(part):
            for text in part:
                bob.send_xml(msg_xml(a.bare, text))
                await asyncio.sleep(0.02)

        await a.disconnect()
        await stream(texts[10:30])
        await wait_until(lambda: "anchor.keeps_device_link" in p.log_text(), 10, "the anchor keeping the link")
        await wait_until(lambda: len(avail(res)) > shown, 5, "the anchor's presence on the kept link")
        last = avail(res)[-1]
        assert last.findtext("{jabber:client}priority") == "0" and last.findtext("{jabber:client}show") == "xa" \
            and not has_caps(last, "keep"), "the anchor's idle presence, without the device's caps: %s" % short(last)
        await wait_until(lambda: bob_saw("unavailable"), 5, "bob told the device left (directed presence)")

        a2 = await connect(pool, t, "alice", "keepA-" + run)
        assert a2.full_jid == a.full_jid
        await wait_until(lambda: "device.takes_kept_link" in p.log_text(), 5, "the device taking its link back")
        await stream(texts[30:])
        await once_each_with_mam_ids([a, a2], prefix, texts, bob.bare)
        # One upstream session for alice throughout: the device's resource never went offline and
        # the anchor never logged in under its own.
        assert not gone(res), "the device's session stayed up: %s" % [short(x) for x in gone(res)]
        assert not avail(anchor_res), "no anchor session of its own"

    run_async(body, 90)


@pytest.mark.parametrize("keep", [False, True], ids=["own-session", "kept-link"])
def test_lone_device_churn_keeps_every_message_once(proxy_factory, upstream_target, keep):
    """The anchor rides, leaves and moves back onto the link of a lone device that comes and goes
    every second or two (--anchor-move-after 0.3: each visit long enough for a move, most hand-overs
    overlapping the previous one's set-up). Bob writes 150 messages throughout. The mirror keeps
    each once, in bob's order, and every visit of the device that saw one saw it with that id.
    kept-link: the default, where the anchor keeps the link of the device that left and the device
    takes it back at its next bind (docs §26), so the anchor never needs a session of its own."""
    p = proxy_factory.start(opts={"anchor-move-after": 0.3, "anchor-keeps-device-link": str(keep).lower()})
    t = p.target()

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        prefix = "churn-%s-" % run
        bob = await connect(pool, upstream_target, "bob", "ch-" + run)
        texts = ["%s%03d" % (prefix, i) for i in range(150)]

        async def stream():
            for text in texts:
                bob.send_xml(msg_xml(bob.bare.replace("bob@", "alice@"), text))
                await asyncio.sleep(0.04)

        visits = []
        writer = asyncio.ensure_future(stream())
        rng = random.Random(run)
        while not writer.done():
            a = await connect(pool, t, "alice", "chA-" + run)
            visits.append(a)
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            await a.disconnect()
            await asyncio.sleep(rng.uniform(0.0, 0.4))
        await writer
        last = await connect(pool, t, "alice", "chA-" + run)
        visits.append(last)
        items = []

        async def archived():
            items[:] = [(aid, text_of(m)) for aid, m in await mam_all(last, with_jid=bob.bare)
                        if (text_of(m) or "").startswith(prefix)]
            return len(items) >= len(texts)

        end = time.monotonic() + 20
        while not await archived() and time.monotonic() < end:
            await asyncio.sleep(0.5)
        assert [x[1] for x in items] == texts, "MAM once each, in order (%d visits): %s" % (len(visits), items)
        ids = {text: aid for aid, text in items}
        for v in visits:
            got = collect([v], prefix, v.bare)
            bodies = [x[0] for x in got]
            assert len(bodies) == len(set(bodies)), "a visit saw a message twice: %s" % got
            assert all(x[1] == ids[x[0]] for x in got), "a visit saw another archive id: %s" % got
        log = p.log_text()
        moves = log.count("anchor.moves_to_device_link")
        rides = log.count("anchor.rides_device_link")
        kept, taken = log.count("anchor.keeps_device_link"), log.count("device.takes_kept_link")
        print("visits %d, rides %d, moves %d, kept %d, taken back %d" % (len(visits), rides, moves, kept, taken))
        if keep:
            assert kept >= 1 and taken >= 1, "the device took its kept link back at least once"
        else:
            assert kept == 0 and moves >= 1, "the anchor moved onto a returning device's link at least once"

    run_async(body, 120)


def proxy_segments_to_upstream(proxy):
    """TCP data segments the proxy process has sent on its connections to the upstream's c2s port,
    summed: each one is a read for the upstream."""
    return sum(segs for segs, _ in tcp_sent_to(proxy.upstream.c2s, pid=proxy.proc.pid).values())


def test_burst_toward_a_device_is_acknowledged_upstream_in_batches(proxy_factory, upstream_target):
    """Issue 12 (segments into the upstream): while bob floods alice's bare JID, the upstream asks
    the link that carries them for an ack (<r/>) again as soon as each <a/> leaves stanzas in its
    queue. Answered at once, that was an <r/>/<a/> ping-pong: a segment into the upstream every few
    stanzas. The proxy answers within 100 ms or every 128 stanzas, so 600 messages cost a handful of
    segments; each of them reaches the device once, in order."""
    p = proxy_factory.start()
    t = p.target()

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        prefix = "ack-%s-" % run
        a = await connect(pool, t, "alice", "ackA-" + run)
        await wait_anchor(p)
        bob = await connect(pool, upstream_target, "bob", "ack-" + run)
        await asyncio.sleep(1.0)  # presence and roster traffic of the log-ins settle
        texts = ["%s%03d" % (prefix, i) for i in range(600)]
        before = proxy_segments_to_upstream(p)
        t0 = time.monotonic()
        for i in range(0, len(texts), 50):
            for text in texts[i:i + 50]:
                bob.send_xml(msg_xml(a.bare, text))
            await asyncio.sleep(0.01)
        await wait_until(lambda: len(collect([a], prefix, a.bare)) >= len(texts), 30,
                         "the %d messages on alice's device" % len(texts))
        took = time.monotonic() - t0
        await asyncio.sleep(0.3)  # the last answer (within 100 ms) is part of the burst
        segments = proxy_segments_to_upstream(p) - before
        seen = [x[0] for x in collect([a], prefix, a.bare)]
        assert seen == texts, "each once, in order: %d seen" % len(seen)
        # One answer per 100 ms or per 128 stanzas, with slack for the proxy's own traffic (its
        # liveness probes, presence of the log-ins); the ping-pong took one per ~5 stanzas.
        bound = len(texts) // 128 + int((took + 0.3) / 0.1) + 4
        print("%d messages in %.2f s: %d segments from the proxy into the upstream (bound %d)" %
              (len(texts), took, segments, bound))
        assert segments <= bound, "%d segments into the upstream for %d messages in %.2f s (bound %d)" % (
            segments, len(texts), took, bound)

    run_async(body, 90)


def test_anchors_share_what_the_upstream_said_about_mam(proxy_factory, upstream_target):
    """docs §29: whether the upstream archives is asked once (disco#info of the first account's
    anchor) and shared by the other accounts' anchors for 10 minutes, which spares the upstream a
    disco#info per first login. The second account still has its history: a message bob sent it
    while it was away reaches its device by the catch-up, with an archive id, and is in its MAM."""
    p = proxy_factory.start()
    t = p.target()

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        await connect(pool, t, "alice", "mamA-" + run)
        await wait_until(lambda: p.log_text().count("anchor.ready") >= 1, 10, "alice's anchor")
        c = await connect(pool, t, "carol", "mamC-" + run)
        await wait_until(lambda: p.log_text().count("anchor.ready") >= 2, 10, "carol's anchor")
        ready = [line for line in p.log_text().splitlines() if "anchor.ready" in line]
        assert "mam=yes" in ready[0] and "mam_known_from=disco" in ready[0], ready
        assert "mam=yes" in ready[1] and "mam_known_from=shared" in ready[1], ready
        await c.disconnect()
        bob = await connect(pool, upstream_target, "bob", "mam-" + run)
        text = "while away %s" % run
        bob.send_xml(msg_xml("carol@%s" % t.domain, text))
        await asyncio.sleep(1.0)
        c2 = await connect(pool, t, "carol", "mamC2-" + run)
        await wait_until(lambda: collect([c2], text, c2.bare), 15, "the message on carol's device")
        got = collect([c2], text, c2.bare)
        assert len(got) == 1 and got[0][1], "once, with an archive id: %s" % got
        items = [(aid, text_of(m)) for aid, m in await mam_all(c2, with_jid=bob.bare) if text_of(m) == text]
        assert [x[0] for x in items] == [got[0][1]], "in carol's MAM with the id her device saw: %s" % items

    run_async(body, 60)


def _log_ms(line):
    """The proxy log line's time (its first field, ISO 8601 with milliseconds) in ms."""
    import datetime
    stamp = line.split(" ", 1)[0].rstrip("Z")
    return datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.timezone.utc).timestamp() * 1000


def test_a_catchup_reads_the_archive_end_twice_only_where_the_upstream_may_archive_late(
        proxy_factory, upstream, upstream_target):
    """docs §30: the second read of the archive's end (§21), with live messages held 1 s, is for
    an upstream that may archive after it delivered (ejabberd). Prosody 0.x archives before it
    delivers (its software version says which server it is), so its catch-up ends at the first
    read, and messages that arrive while it runs still reach the device once, in order, with
    archive ids."""
    p = proxy_factory.start()
    t = p.target()

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        bob = await connect(pool, upstream_target, "bob", "late-" + run)
        alice = await connect(pool, t, "alice", "late-" + run)
        # Sent while alice's first catch-up runs: held, and released after it.
        texts = ["during catch-up %s %02d" % (run, i) for i in range(20)]
        for x in texts:
            bob.send_xml(msg_xml("alice@%s" % t.domain, x))
        await wait_until(lambda: "hub.catchup_finished account=alice@" in p.log_text(), 15, "alice's catch-up")
        lines = p.log_text().splitlines()
        ready = [line for line in lines if "anchor.ready" in line and "account=alice@" in line]
        answers = [line for line in lines if "hub.catchup_answer" in line and "account=alice@" in line]
        finished = [line for line in lines if "hub.catchup_finished" in line and "account=alice@" in line]
        assert len(ready) == 1 and len(finished) == 1, (ready, finished)
        took = _log_ms(finished[0]) - _log_ms(ready[0])
        if upstream.kind == "prosody":
            assert "archives=before_delivery" in ready[0], ready
            assert len(answers) == 1, "one read of the archive's end: %s" % answers
            assert took < 1000, "no second of held live messages: %.0f ms" % took
        else:
            assert "archives=maybe_late" in ready[0], ready
            assert len(answers) >= 2, "the end read twice: %s" % answers
            assert took >= 1000, "the second read waits 1 s: %.0f ms" % took
        prefix = "during catch-up %s" % run
        await wait_until(lambda: len(collect([alice], prefix, alice.bare)) >= len(texts), 15,
                         "bob's messages on alice's device")
        await asyncio.sleep(0.5)  # a duplicate would come now
        got = collect([alice], prefix, alice.bare)
        assert [g[0] for g in got] == texts, "each once, in order: %s" % got
        assert all(g[1] for g in got), "each with an archive id: %s" % got

    run_async(body, 60)


def test_each_persistent_message_s_time_inside_the_proxy_is_measured(proxy_factory, upstream_target):
    """s2proxy_message_transit_seconds: every persistent message alice's device sends is observed
    once as leaving, every one bob sends her once as entering, and their mean time is under a
    second (the mirror commit is inside it). The delivery cursors share those commits instead
    of adding their own."""
    from harness import free_closed_port, metric_total as total, scrape_metrics
    mport = free_closed_port()
    p = proxy_factory.start({"metrics": "127.0.0.1:%d" % mport})
    t = p.target()
    run = uuid.uuid4().hex[:6]
    n = 12

    def series(m, direction, part):
        return m.get('s2proxy_message_transit_seconds_%s{direction="%s"}' % (part, direction), 0.0)

    async def body(pool):
        bob = await connect(pool, upstream_target, "bob", "tr-" + run)
        a = await connect(pool, t, "alice", "trA-" + run)
        await wait_anchor(p)
        await asyncio.sleep(1.5)  # the first catch-up is over: nothing held
        m0 = scrape_metrics(mport)
        for i in range(n):
            a.send_xml(msg_xml(bob.bare, "tr-out-%s-%02d" % (run, i)))
            bob.send_xml(msg_xml(a.bare, "tr-in-%s-%02d" % (run, i)))
            await asyncio.sleep(0.05)
        await wait_until(lambda: len([1 for el in bob.received("message")
                                      if (body_of(el) or "").startswith("tr-out-%s" % run)]) >= n, 15, "bob's messages")
        await wait_until(lambda: len(collect([a], "tr-in-%s" % run, a.bare)) >= n, 15, "alice's messages")
        await asyncio.sleep(0.3)
        m1 = scrape_metrics(mport)
        for direction in ("leaving", "entering"):
            count = series(m1, direction, "count") - series(m0, direction, "count")
            took = series(m1, direction, "sum") - series(m0, direction, "sum")
            assert count == n, "%s: %d observed for %d messages" % (direction, count, n)
            assert 0 < took / count < 1.0, "%s: mean %.6f s" % (direction, took / count)
            print("%s: %d messages, mean %.3f ms inside the proxy" % (direction, count, 1000 * took / count))
        # One commit per message and direction, plus the outbox removals (batched per account);
        # the delivery cursors ride them (writer.h, deferrable) instead of a commit each (~3.5
        # commits per pair before, ~2.4 now).
        commits = total(m1, "s2proxy_mirror_commit_seconds_count") - total(m0, "s2proxy_mirror_commit_seconds_count")
        print("%d commits for %d messages each way" % (commits, n))
        assert 0 < commits <= 3 * n, "%d commits for %d messages each way" % (commits, n)

    run_async(body, 60)
