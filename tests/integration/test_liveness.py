"""A network cut between s2proxy and the upstream, without FIN (issue 13: chaos, network cut).

The proxy reaches the upstream through a relay the test controls (cutrelay.py). The relay goes
silent both ways: no FIN, no RST, the bytes vanish. With --upstream-ping-interval 1 the proxy
notices within ~2 s (upstream.silent), gives the dead sessions up and reconnects once the path is
back; what bob sent meanwhile reaches alice's device exactly once, from the upstream's archive.
"""
import asyncio
import uuid

from cutrelay import CutRelay
from test_history import collect, connect, wait_anchor, wait_until
from xmppclient import msg_xml, run_async


def test_cut_without_fin_is_noticed_and_nothing_is_lost(proxy_factory, upstream, upstream_target):
    relay = CutRelay(upstream.c2s).start()
    try:
        p = proxy_factory.start(opts={"upstream": "127.0.0.1:%d" % relay.port, "upstream-ping-interval": 1})
        t = p.target()
        report = {}

        async def body(pool):
            run = uuid.uuid4().hex[:6]
            prefix = "cut-%s-" % run
            first = await connect(pool, t, "alice", "cut-" + run, sm=True)
            await wait_anchor(p)
            bob = await connect(pool, upstream_target, "bob", "cut-" + run)
            incarnations = [first]
            stop = asyncio.Event()

            async def keep_connected():
                while not stop.is_set():
                    if not incarnations[-1].connected:
                        try:
                            incarnations.append(await connect(pool, t, "alice", "cut-" + run, sm=True, timeout=5))
                        except Exception:
                            await asyncio.sleep(0.5)
                            continue
                    await asyncio.sleep(0.2)

            keeper = asyncio.ensure_future(keep_connected())
            bob.send_xml(msg_xml(first.bare, prefix + "before"))
            await wait_until(lambda: len(collect(incarnations, prefix, first.bare)) >= 1, 10, "the first message")
            log_at = p.log_size()
            relay.cut()
            await asyncio.sleep(0.3)
            want = [prefix + "before"] + ["%sduring-%d" % (prefix, i) for i in range(5)]
            for b in want[1:]:
                bob.send_xml(msg_xml(first.bare, b))
            await wait_until(lambda: "upstream.silent" in p.log_text()[log_at:], 8, "upstream.silent in the log")
            report["noticed"] = True
            await asyncio.sleep(1.0)
            relay.heal()
            for b in ["%safter-%d" % (prefix, i) for i in range(3)]:
                bob.send_xml(msg_xml(first.bare, b))
                want.append(b)
            try:
                await wait_until(lambda: set(want) <= {x[0] for x in collect(incarnations, prefix, first.bare)},
                                 40, "every message on alice's device after the cut")
            finally:
                stop.set()
                keeper.cancel()
            seen = collect(incarnations, prefix, first.bare)
            ids = {}
            for b, aid, _ in seen:
                assert aid, "%s without an archive id" % b
                ids.setdefault(b, set()).add(aid)
            assert all(len(v) == 1 for v in ids.values()), "one archive id per message: %s" % ids
            report["incarnations"] = len(incarnations)
            report["redelivered"] = len(seen) - len(ids)

        run_async(body, 120)
        print("network cut without FIN: noticed by liveness, %d device incarnations, %d redeliveries "
              "under the same archive id" % (report["incarnations"], report["redelivered"]))
    finally:
        relay.stop()
