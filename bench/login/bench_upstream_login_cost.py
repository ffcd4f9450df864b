#!/usr/bin/python3
"""Where Prosody's CPU goes in an account's first login through s2proxy: Prosody's CPU per login
for a direct client (SASL1 PLAIN + bind + presence), and for the same with, one group at a time,
what the proxy's upstream session sends at an account's first login (docs/architecture.md §29):

    /usr/bin/python3 bench/login/bench_upstream_login_cost.py [--logins 200] [VARIANT ...]

VARIANT is `plain` or `scram` (the mechanism; the proxy logs in upstream with SCRAM-SHA-1), then
any of `+sm` (SM enable and Carbons enable), `+disco` (disco#info of the account and its PEP
bookmarks), `+bm` (the bookmarks alone), `+mam` (the anchor's two MAM queries for the archive's end, §21). Default: the ladder
from a direct client to the proxy's first login. 20 logins in flight, a fresh range of accounts
per variant; private Prosody of the bench (bench/login/s2bench.py, 127.0.0.1:55222).
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "relay"))
import s2bench  # noqa: E402  (puts tests/integration on sys.path)
from axmpp import AXmpp, NS_BIND, NS_CLIENT, NS_SASL, XmppError, local, ns_of, q  # noqa: E402

PORT = s2bench.PROSODY_C2S
CA = PID = None
DEFAULT_LADDER = ["plain", "scram", "scram+sm", "scram+sm+disco", "scram+sm+disco+mam", "plain"]

async def iq(c, itype, body, ito=None):
    i = "i-" + uuid.uuid4().hex[:8]
    c.send("<iq type='%s' id='%s'%s>%s</iq>" % (itype, i, (" to='%s'" % ito) if ito else "", body))
    await c.expect(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == i, "iq " + i)

async def scram_login(c, user, pw, resource):
    await c.connect("127.0.0.1", PORT); await c.starttls(); await c.open_stream()
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (user, nonce)
    c.send("<auth xmlns='%s' mechanism='SCRAM-SHA-1'>%s</auth>" % (NS_SASL, base64.b64encode(("n,," + first_bare).encode()).decode()))
    el = await c.expect(lambda e: ns_of(e.tag) == NS_SASL, "challenge")
    chal = base64.b64decode(el.text).decode(); d = dict(kv.split("=", 1) for kv in chal.split(","))
    salted = hashlib.pbkdf2_hmac("sha1", pw.encode(), base64.b64decode(d["s"]), int(d["i"]))
    ck = hmac.new(salted, b"Client Key", hashlib.sha1).digest(); sk = hashlib.sha1(ck).digest()
    final = "c=biws,r=%s" % d["r"]; auth = "%s,%s,%s" % (first_bare, chal, final)
    sig = hmac.new(sk, auth.encode(), hashlib.sha1).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(ck, sig))).decode()
    c.send("<response xmlns='%s'>%s</response>" % (NS_SASL, base64.b64encode(("%s,p=%s" % (final, proof)).encode()).decode()))
    el = await c.expect(lambda e: ns_of(e.tag) == NS_SASL, "outcome")
    if local(el.tag) != "success": raise XmppError("scram failed")
    await c.open_stream()
    await iq(c, "set", "<bind xmlns='%s'><resource>%s</resource></bind>" % (NS_BIND, resource))

async def one(variant, i):
    user = "user%d" % i; c = AXmpp("legacy.test", CA, user)
    if "scram" in variant: await scram_login(c, user, "pass%d" % i, "r")
    else: await c.login_plain("127.0.0.1", PORT, user, "pass%d" % i, resource="r")
    if "sm" in variant:
        c.send("<enable xmlns='urn:xmpp:sm:3'/>"); await c.expect(lambda e: local(e.tag) == "enabled", "enabled")
        await iq(c, "set", "<enable xmlns='urn:xmpp:carbons:2'/>")
    c.send("<presence><show>xa</show><priority>0</priority></presence>")
    if "disco" in variant:
        await iq(c, "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>", user + "@legacy.test")
    if "disco" in variant or "+bm" in variant:
        await iq(c, "get", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub>", user + "@legacy.test")
    if "mam" in variant:
        for _ in range(2):
            await iq(c, "set", "<query xmlns='urn:xmpp:mam:2' queryid='q1'><x xmlns='jabber:x:data' type='submit'><field type='hidden' var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field><field var='start'><value>2026-12-05T21:04:55.435Z</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>100</max></set></query>")
    return c

async def run(variants, N):
    base = 1
    for variant in variants:
        sem = asyncio.Semaphore(20); clients = []
        async def go(i):
            async with sem: clients.append(await one(variant, i))
        c0 = s2bench.cpu_seconds(PID); t0 = time.perf_counter()
        await asyncio.gather(*(go(i) for i in range(base, base + N)))
        await asyncio.sleep(0.5)
        c1 = s2bench.cpu_seconds(PID)
        print("%-22s Prosody CPU %.2f ms/login, %.0f logins/s" % (variant, 1000 * (c1 - c0) / N,
                                                                 N / (time.perf_counter() - t0 - 0.5)), flush=True)
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        await asyncio.sleep(1); base += N
def main():
    global CA, PID
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("variants", nargs="*", default=DEFAULT_LADDER)
    ap.add_argument("--logins", type=int, default=200, help="logins per variant (default 200)")
    args = ap.parse_args()
    env = s2bench.BenchEnv(s2bench.DEFAULT_BINARY, load_users=args.logins * len(args.variants))
    try:
        env.start()
        CA, PID = env.prosody_ca, env.prosody_pid()
        print("Prosody CPU per login, %d logins per variant, 20 in flight:" % args.logins)
        asyncio.run(run(args.variants, args.logins))
    finally:
        env.stop()


if __name__ == "__main__":
    main()
