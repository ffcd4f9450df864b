"""Flood control per client connection (issue 13 item 2), on a proxy with small limits.

* --client-read-rate: a client sending faster is paced (reading pauses), not cut: 512 KiB of
  whitespace at 64 KiB/s takes ~7 s to be read, and the stream is fine afterwards.
* --client-stanza-rate: a client that sends tiny stanzas without pause (SM <r/>, which the proxy
  answers itself, so only the proxy is loaded) gets policy-violation with a <text/>.
* Meanwhile alice's messages to bob are measured: the flood delays them by no more than a few ms.
"""
import asyncio
import os
import select
import threading
import time
import uuid

from rawxmpp import NS_STREAMS, RawXMPP, XMPPTimeout, assert_stream_error, q  # noqa: F401
from test_history import connect
from xmppclient import PASSWORDS, body_of, msg_xml, run_async

NS_SM = "urn:xmpp:sm:3"
SANITIZED = os.environ.get("S2_SANITIZED") == "1"
LIMITS = {"client-read-rate": 65536, "client-read-burst": 65536, "client-stanza-rate": 100,
          "client-stanza-window": 5}


def raw_login(target, user, resource):
    c = RawXMPP.connect(target.host, target.starttls_port, target.domain, cafile=target.cafile, timeout=15)
    c.login(user, PASSWORDS[user], resource=resource)
    return c


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else float("nan")


def test_read_rate_paces_without_cutting(proxy_factory):
    p = proxy_factory.start(opts=LIMITS)
    t = p.target()
    c = raw_login(t, "carol", "pace-" + uuid.uuid4().hex[:6])
    c.send("<enable xmlns='%s'/>" % NS_SM)
    c.wait_for(lambda e: e.tag == q(NS_SM, "enabled"), timeout=10, what="<enabled/>")
    blob = b" " * (512 * 1024)  # whitespace between stanzas: bytes, no stanzas
    t0 = time.monotonic()
    sender = threading.Thread(target=lambda: c.sock.sendall(blob), daemon=True)
    sender.start()
    sender.join(60)
    c.send("<r xmlns='%s'/>" % NS_SM)
    c.wait_for(lambda e: e.tag == q(NS_SM, "a"), timeout=60, what="<a/> after the paced bytes")
    took = time.monotonic() - t0
    # 64 KiB pass at once, the other 448 KiB at 64 KiB/s: ~7 s.
    assert took >= 5.0, "512 KiB were read in %.2f s: not paced" % took
    assert not c.closed, "paced, not cut"
    c.send("<r xmlns='%s'/>" % NS_SM)
    c.wait_for(lambda e: e.tag == q(NS_SM, "a"), timeout=5, what="<a/> once the burst is read")
    c.close()
    assert "client.flood" not in p.log_text()
    print("512 KiB at --client-read-rate 64 KiB/s read in %.1f s, stream intact" % took)


def test_stanza_flood_ends_with_policy_violation_and_others_are_not_delayed(proxy_factory, upstream_target):
    # The flooder's <r/> are paced to ~2,500/s by the byte limit; a ceiling of 1,000/s over 10 s
    # lets the flood run for ~4 s before it ends the stream, long enough to measure alice meanwhile.
    p = proxy_factory.start(opts=dict(LIMITS, **{"client-stanza-rate": 1000, "client-stanza-window": 10}))
    t = p.target()
    lat = {"before": [], "during": []}

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        alice = await connect(pool, t, "alice", "flood-" + run)
        bob = await connect(pool, upstream_target, "bob", "flood-" + run)
        sent = {}

        arrived = {}

        def scan_bob():
            # the client stamps each stanza with its arrival time (monotonic, same clock)
            for at, kind, el in bob.stanzas:
                if kind != "message":
                    continue
                b = body_of(el)
                if b and b in sent and b not in arrived:
                    arrived[b] = at

        async def probe(phase, n):
            for i in range(n):
                b = "fl-%s-%s-%d" % (run, phase, i)
                sent[b] = time.monotonic()
                alice.send_xml(msg_xml(bob.full_jid, b))
                await asyncio.sleep(0.05)
            end = time.monotonic() + 10
            while time.monotonic() < end and any(k not in arrived for k in sent if ("-%s-" % phase) in k):
                scan_bob()
                await asyncio.sleep(0.02)
            scan_bob()
            for k in sent:
                if ("-%s-" % phase) in k and k in arrived:
                    lat[phase].append((arrived[k] - sent[k]) * 1000.0)

        await probe("before", 30)
        flood_result = {}

        def flood():
            c = raw_login(t, "carol", "flood-" + run)
            c.send("<enable xmlns='%s'/>" % NS_SM)
            c.wait_for(lambda e: e.tag == q(NS_SM, "enabled"), timeout=10, what="<enabled/>")
            chunk = ("<r xmlns='%s'/>" % NS_SM).encode() * 500
            t0 = time.monotonic()
            try:
                # Sends as fast as the proxy takes it, reading what comes back between chunks as
                # any client does (one that never reads cannot see a stream error before the
                # kernel resets the connection it keeps writing to).
                while time.monotonic() - t0 < 20 and not c.close_tag and not c.closed:
                    c.sock.sendall(chunk)
                    while select.select([c.sock], [], [], 0)[0] or c.sock.pending():
                        c._recv_some(time.monotonic() + 0.05)
                        if c.close_tag or c.closed:
                            break
            except (OSError, XMPPTimeout):
                pass  # the proxy ended the stream
            flood_result["res"] = c.read_stream_end(timeout=10)
            flood_result["conn"] = c
            flood_result["seconds"] = time.monotonic() - t0

        th = threading.Thread(target=flood, daemon=True)
        th.start()
        await asyncio.sleep(0.3)
        await probe("during", 20)
        await asyncio.get_running_loop().run_in_executor(None, th.join, 40)
        res = flood_result.get("res")
        assert res is not None, "the flooder never finished"
        assert_stream_error(res, "policy-violation", flood_result["conn"])
        assert "too many stanzas" in (res.text or ""), res.text
        assert flood_result["seconds"] < 15, "ended within the window, not after the flood stopped"
        assert flood_result["seconds"] > 0.3 + 20 * 0.05, \
            "the flood lasted %.2f s: the probe did not run during it" % flood_result["seconds"]

    run_async(body, 120)
    assert len(lat["before"]) == 30 and len(lat["during"]) == 20, "every probe message arrived: %s" % {
        k: len(v) for k, v in lat.items()}
    before, during = median(lat["before"]), median(lat["during"])
    print("alice -> bob latency median: %.2f ms before, %.2f ms while carol floods (p max %.2f ms)" % (
        before, during, max(lat["during"])))
    assert "client.flood" in p.log_text()
    if not SANITIZED:
        assert during - before < 5.0, "the flood delayed other accounts by %.2f ms (median)" % (during - before)
