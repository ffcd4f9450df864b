#!/usr/bin/python3
"""What s2proxy costs on the relay path: the same client through the proxy vs straight to Prosody,
in the same run, on loopback (no delay relay).

    /usr/bin/python3 bench/relay/bench_relay.py [--json out.json] [--pings 500] [--msgs 5000] [--sessions 200]

Starts a private Prosody 0.12 (test bed script, TB_PROSODY_LOAD_USERS=200, 127.0.0.1:55222) and
s2proxy (127.0.0.1:56222, log level info) through tests/integration/harness.py, then measures:

  (i)   login time to a bound session: SASL1 PLAIN + bind (STARTTLS) direct vs via the proxy, and
        for reference SASL2 PLAIN / FAST + Bind2 + inline SM via the proxy (raw blocking clients of
        bench/login/bench_login.py), interleaved;
  (ii)  message round trip alice -> bob -> alice: bob is an echo bot straight on Prosody; alice
        (SASL1 PLAIN) once direct and once via the proxy, 500 sequential pings each, interleaved
        in blocks of 50;
  (iii) throughput: 5000 messages pipelined alice -> bob (one way, bob only counts), msgs/s from
        the first write to the last arrival; direct, proxy, proxy, direct (ABBA against drift),
        with the CPU time the proxy and Prosody used meanwhile; once with messages that carry no
        <origin-id/> (the proxy adds one) and once with messages that carry their own;
  (iv)  RSS (VmRSS) of s2proxy and Prosody idle, with 200 concurrent logged-in sessions through the
        proxy (user1..user200, asyncio raw clients), and after they logged out.
"""
import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "login"))
import s2bench  # noqa: E402  (bench/login/s2bench.py; puts tests/integration on sys.path)
import bench_login as bl  # noqa: E402
from axmpp import NS_CLIENT, AXmpp, XmppError, q  # noqa: E402
from harness import tcp_sent_to  # noqa: E402  (tests/integration)

DOMAIN = s2bench.DOMAIN
HOST = s2bench.HOST
NS_BODY = q(NS_CLIENT, "body")
NS_MESSAGE = q(NS_CLIENT, "message")


def segments_delta(before, after):
    """(all segments, segments of the socket that sent the most bytes) between two tcp_sent_to()
    results: through the proxy, the latter is the device's link that carried the messages, the
    rest the other upstream sessions' (the account's anchor answering Prosody's SM <r/>)."""
    if before is None or after is None:
        return None, None
    deltas = [(a[1] - before.get(k, (0, 0))[1], a[0] - before.get(k, (0, 0))[0]) for k, a in after.items()]
    if not deltas:
        return 0, 0
    return sum(d[1] for d in deltas), max(deltas)[1]


def msg(to, body, mid, origin_id=False):
    """A chat message; with origin_id, an <origin-id/> of its own (XEP-0359), as Conversations, Dino,
    Gajim and Monal send, so the proxy adds none."""
    oid = "<origin-id xmlns='urn:xmpp:sid:0' id=%s/>" % quoteattr(uuid.uuid4().hex) if origin_id else ""
    return "<message to=%s type='chat' id=%s><body>%s</body>%s</message>" % (quoteattr(to), quoteattr(mid), escape(body), oid)


# =====================================================================================================
# (i) login time: blocking raw clients, no relay
# =====================================================================================================
def sasl1_plain_login(port, cafile):
    c = bl.open_conn(port, cafile, False)
    bl.starttls(c, pipelined=False)
    c.open_stream(header=bl.header())
    c.read_features()
    result, cond, text, _ = c.auth_plain("alice", "alicepw")
    if result != "success":
        raise bl.BenchError("PLAIN failed: %s %s" % (cond, text))
    c.open_stream(header=bl.header())
    c.read_features()
    c.bind("login-" + uuid.uuid4().hex[:4])
    t = (bl.now() - c.t0) * 1000
    c.close_stream()
    return t


def bench_logins(env, n):
    dev_c = bl.Device("relay-bench-c")
    dev_d = bl.Device("relay-bench-d")
    rows = {
        "SASL1 PLAIN + bind, direct to Prosody": lambda: sasl1_plain_login(s2bench.PROSODY_C2S, env.prosody_ca),
        "SASL1 PLAIN + bind, via s2proxy": lambda: sasl1_plain_login(s2bench.PROXY_PORT, env.proxy_ca),
    }

    def sasl2(dev, mode, cut=False):
        c, r = bl.sasl2_login(dev, s2bench.PROXY_PORT, env.proxy_ca, False, mode)
        bl.finish(c, dev, cut=cut)
        return r["total_ms"]

    rows["SASL2 PLAIN + Bind2 + SM + token, via s2proxy"] = lambda: sasl2(dev_c, "password")
    rows["FAST + Bind2 + SM, via s2proxy"] = lambda: sasl2(dev_c, "fast")
    rows["SASL2 SM resume (FAST), via s2proxy"] = lambda: sasl2(dev_d, "resume", cut=True)
    # device d: token, then a session with SM that is cut
    sasl2(dev_d, "password")
    sasl2(dev_d, "fast", cut=True)
    time.sleep(0.1)
    samples = {k: [] for k in rows}
    for i in range(n + 1):  # first round: warm-up
        for k, fn in rows.items():
            t = fn()
            if i:
                samples[k].append(t)
            time.sleep(0.02)
    return samples


# =====================================================================================================
# (ii)-(iv): asyncio
# =====================================================================================================
class Echo:
    """bob straight on Prosody: echoes 'ping' bodies to the sender, counts 'tp' bodies."""

    def __init__(self, client):
        self.c = client
        self.count = 0
        self.want = 0
        self.done = None
        self.t_last = None

    def on_element(self, el):
        if el.tag != NS_MESSAGE:
            return
        body = el.findtext(NS_BODY) or ""
        if body.startswith("ping"):
            self.c.send(msg(el.get("from"), body, el.get("id") or ""))
        elif body.startswith("tp"):
            self.count += 1
            if self.count >= self.want and self.done is not None and not self.done.done():
                self.t_last = time.perf_counter()
                self.done.set_result(True)


class Pinger:
    def __init__(self, client):
        self.c = client
        self.waiting = {}

    def on_element(self, el):
        if el.tag == NS_MESSAGE:
            fut = self.waiting.pop(el.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(time.perf_counter())

    async def ping(self, to, i):
        mid = "p%s-%d" % (uuid.uuid4().hex[:6], i)
        fut = asyncio.get_running_loop().create_future()
        self.waiting[mid] = fut
        t0 = time.perf_counter()
        self.c.send(msg(to, "ping %d" % i, mid))
        t1 = await asyncio.wait_for(fut, 5.0)
        return (t1 - t0) * 1000


async def bench_async(env, args, out):
    bob = AXmpp(DOMAIN, env.prosody_ca, "bob")
    await bob.login_plain(HOST, s2bench.PROSODY_C2S, "bob", "bobpw", resource="echo")
    echo = Echo(bob)
    bob.start_reader(echo.on_element)
    bob.send("<presence/>")
    alices = {}
    for path, port, ca in (("direct", s2bench.PROSODY_C2S, env.prosody_ca), ("proxy", s2bench.PROXY_PORT, env.proxy_ca)):
        a = AXmpp(DOMAIN, ca, "alice-" + path)
        await a.login_plain(HOST, port, "alice", "alicepw", resource="rtt-" + path)
        p = Pinger(a)
        a.start_reader(p.on_element)
        alices[path] = (a, p)
    bob_jid = bob.jid

    # ---- (ii) RTT ----------------------------------------------------------------------------
    rtt = {"direct": [], "proxy": []}
    for path in ("direct", "proxy"):  # warm-up
        for i in range(20):
            await alices[path][1].ping(bob_jid, i)
    block = 50
    i = 0
    while len(rtt["proxy"]) < args.pings:
        for path in ("direct", "proxy"):
            for _ in range(min(block, args.pings - len(rtt[path]))):
                rtt[path].append(await alices[path][1].ping(bob_jid, i))
                i += 1
    out["rtt_ms"] = rtt

    # ---- (iii) throughput ----------------------------------------------------------------------
    tput = []
    ppid, prpid = env.proxy_pid(), env.prosody_pid()
    # Each ABBA round twice: the client's messages without an <origin-id/> (the proxy adds one to
    # every message it sends, its dedup key: one more element for Prosody to parse, carbon-copy and
    # archive), and with one of their own, as modern clients send (the proxy adds nothing).
    runs = [(path, oid) for oid in (False, True) for path in ("direct", "proxy", "proxy", "direct")]
    for path, oid in runs * args.tput_rounds:
        a = alices[path][0]
        echo.count, echo.want = 0, args.msgs
        echo.done = asyncio.get_running_loop().create_future()
        cpu0 = (s2bench.cpu_seconds(ppid), s2bench.cpu_seconds(prpid))
        seg_args = {"pid": ppid} if path == "proxy" else {
            "local_port": a.writer.get_extra_info("sockname")[1]}
        seg0 = tcp_sent_to(s2bench.PROSODY_C2S, **seg_args)
        tag = uuid.uuid4().hex[:6]
        t0 = time.perf_counter()
        for k in range(0, args.msgs, 100):
            a.send("".join(msg(bob_jid, "tp %d" % j, "t%s-%d" % (tag, j), oid) for j in range(k, min(k + 100, args.msgs))))
            await a.drain()
        t_sent = time.perf_counter()
        try:
            await asyncio.wait_for(echo.done, 60.0)
            t_end = echo.t_last
        except asyncio.TimeoutError:
            t_end = time.perf_counter()
            print("throughput run %s (origin-id %s, tag %s): %d of %d delivered within 60 s" % (
                path, oid, tag, echo.count, args.msgs), file=sys.stderr, flush=True)
        cpu1 = (s2bench.cpu_seconds(ppid), s2bench.cpu_seconds(prpid))
        seg1 = tcp_sent_to(s2bench.PROSODY_C2S, **seg_args)
        seg_all, seg_carrier = segments_delta(seg0, seg1)
        tput.append({"path": path, "origin_id": oid, "delivered": echo.count, "sent": args.msgs,
                     "seconds": t_end - t0, "send_seconds": t_sent - t0,
                     "msgs_per_s": echo.count / (t_end - t0),
                     "proxy_cpu_s": cpu1[0] - cpu0[0], "prosody_cpu_s": cpu1[1] - cpu0[1],
                     "segments_to_prosody": seg_all, "segments_to_prosody_carrier": seg_carrier})
        await asyncio.sleep(0.5)  # let Prosody finish archiving before the next run
    out["throughput"] = tput
    for a, _ in alices.values():
        await a.close()
    await bob.close()

    # ---- (iv) RSS with N concurrent sessions through the proxy ---------------------------------------
    await asyncio.sleep(1.0)
    mem = {"before_sessions": {"proxy_kib": s2bench.rss_kib(ppid), "prosody_kib": s2bench.rss_kib(prpid)}}
    sem = asyncio.Semaphore(8)  # the proxy admits 8 logins in flight per source address
    clients = []
    failures = []

    async def one(i):
        c = AXmpp(DOMAIN, env.proxy_ca, "user%d" % i)
        clients.append(c)
        async with sem:
            try:
                await c.login_plain(HOST, s2bench.PROXY_PORT, "user%d" % i, "pass%d" % i, resource="load")
                c.start_reader(lambda el: None)
            except (XmppError, OSError, asyncio.TimeoutError) as e:
                failures.append("user%d: %s" % (i, e))

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(1, args.sessions + 1)))
    t_login = time.perf_counter() - t0
    await asyncio.sleep(1.0)
    ok = sum(1 for c in clients if c.jid and not c.closed)
    mem["with_sessions"] = {"proxy_kib": s2bench.rss_kib(ppid), "prosody_kib": s2bench.rss_kib(prpid),
                            "sessions": ok, "login_all_s": t_login, "failures": failures[:5]}
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    await asyncio.sleep(1.5)
    mem["after_logout"] = {"proxy_kib": s2bench.rss_kib(ppid), "prosody_kib": s2bench.rss_kib(prpid)}
    out["memory"] = mem


# =====================================================================================================
def report(out, args):
    med, pct = s2bench.median, s2bench.percentile
    lines = ["### Relay path: direct to Prosody vs through s2proxy (same run, loopback, %d cores)\n" % os.cpu_count(),
             "Binary: %s.\n" % s2bench.binary_line(out["binary"])]
    if out["logins_ms"]:
        rows = [[k, "%.1f" % med(v), "%.1f" % pct(v, 90), "%.1f" % max(v)] for k, v in out["logins_ms"].items()]
        lines.append("(i) Login to a bound session, STARTTLS, N=%d each (ms):\n" % args.n)
        lines.append(s2bench.md_table(["login", "median", "p90", "max"], rows))
    else:
        lines.append("(i) Logins not measured (-n 0).\n")
    r = out["rtt_ms"]
    rows = []
    for path in ("direct", "proxy"):
        v = r[path]
        rows.append([path if path == "direct" else "via s2proxy", len(v), "%.2f" % med(v), "%.2f" % pct(v, 90),
                     "%.2f" % pct(v, 99), "%.2f" % (sum(v) / len(v)), sum(1 for x in v if x > 30)])
    d = med(r["proxy"]) - med(r["direct"])
    lines.append("\n(ii) Message round trip alice → bob (echo, on Prosody) → alice, sequential (ms); the "
                 "proxy is crossed twice per round trip, median added %.2f ms:\n" % d)
    lines.append(s2bench.md_table(["alice", "n", "median", "p90", "p99", "mean", "> 30 ms"], rows))
    rows = []
    for (path, oid) in ((p, o) for o in (False, True) for p in ("direct", "proxy")):
        ts = [t for t in out["throughput"] if t["path"] == path and t.get("origin_id", False) == oid]
        if not ts:
            continue
        delivered = sum(t["delivered"] for t in ts)
        sent = sum(t["sent"] for t in ts)
        rows.append([("with" if oid else "without") + " own origin-id, " + ("direct" if path == "direct" else "via s2proxy"),
                     " / ".join("%.0f" % t["msgs_per_s"] for t in ts),
                     "%.0f" % med([t["msgs_per_s"] for t in ts]), "%d/%d" % (delivered, sent),
                     "%.1f" % (1e6 * sum(t["proxy_cpu_s"] for t in ts) / max(delivered, 1)),
                     "%.0f" % (1e6 * sum(t["prosody_cpu_s"] for t in ts) / max(delivered, 1)),
                     "%.1f (%.1f)" % tuple(sum(t.get(k) or 0 for t in ts) / max(1, sum(t["sent"] for t in ts)) * 100
                                          for k in ("segments_to_prosody", "segments_to_prosody_carrier"))])
    lines.append("\n(iii) Throughput, %d messages pipelined alice → bob, one way; runs in the order direct, proxy, "
                 "proxy, direct (x%d), first with messages that carry no <origin-id/> (the proxy adds one), then with "
                 "messages that carry their own; CPU = process CPU time during the runs / messages:\n" % (args.msgs, args.tput_rounds))
    lines.append(s2bench.md_table(["alice", "runs, msgs/s", "median msgs/s", "delivered", "s2proxy CPU µs/msg",
                                   "Prosody CPU µs/msg", "TCP segments into Prosody per 100 msgs, all (the link that carried them)"], rows))
    m = out["memory"]
    w = m["with_sessions"]
    n = w["sessions"] or 1

    def mib(k):
        return "%.1f" % (k / 1024.0) if k else "?"

    rows = [["s2proxy", mib(out["idle"]["proxy_kib"]), mib(m["before_sessions"]["proxy_kib"]), mib(w["proxy_kib"]),
             "%.0f" % ((w["proxy_kib"] - m["before_sessions"]["proxy_kib"]) / n), mib(m["after_logout"]["proxy_kib"])],
            ["Prosody 0.12", mib(out["idle"]["prosody_kib"]), mib(m["before_sessions"]["prosody_kib"]),
             mib(w["prosody_kib"]), "%.0f" % ((w["prosody_kib"] - m["before_sessions"]["prosody_kib"]) / n),
             mib(m["after_logout"]["prosody_kib"])]]
    lines.append("\n(iv) RSS (MiB): idle = after start; then before / with %d concurrent SASL1 sessions through the "
                 "proxy (Prosody holds their %d upstream legs; all logged in in %.1f s, 25 at a time) / after they "
                 "logged out:\n" % (w["sessions"], w["sessions"], w["login_all_s"]))
    lines.append(s2bench.md_table(["process", "idle", "before", "with sessions", "KiB per session", "after logout"],
                                  rows))
    if w["failures"]:
        lines.append("\nlogin failures (first 5): %s" % w["failures"])
    lines.append("\n_run took %.0f s_" % out["elapsed_s"])
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20, help="logins per row in (i) (default 20; 0 skips (i))")
    ap.add_argument("--pings", type=int, default=500)
    ap.add_argument("--msgs", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--tput-rounds", type=int, default=2, help="ABBA rounds of the throughput test (default 2)")
    ap.add_argument("--binary", default=str(s2bench.DEFAULT_BINARY))
    ap.add_argument("--proxy-opt", action="append", default=[], metavar="FLAG=VALUE",
                    help="an s2proxy option for this run (repeatable), e.g. anchor-move-after=5")
    ap.add_argument("--log-level", default="info", help="s2proxy's --log-level (logs in /tmp/s2bench-logs)")
    ap.add_argument("--json", help="write raw samples and summaries here")
    ap.add_argument("--budget", type=int, default=175, help="hard time limit in seconds (default 175)")
    ap.add_argument("--prosody-nagle", choices=("on", "off"), default="on",
                    help="diagnostic: 'off' restarts the test bed Prosody with network_settings = { nagle = false }")
    args = ap.parse_args()

    s2bench.install_deadline(args.budget)
    t_start = time.monotonic()
    env = s2bench.BenchEnv(args.binary, load_users=max(args.sessions, 1), prosody_nagle=args.prosody_nagle == "on",
                           log_level=args.log_level, proxy_opts=s2bench.parse_proxy_opts(args.proxy_opt))
    out = {"bench": "relay", "machine": s2bench.machine_info(), "binary": s2bench.binary_info(args.binary),
           "prosody_nagle": args.prosody_nagle}
    try:
        env.start()
        time.sleep(1.0)
        out["idle"] = {"proxy_kib": s2bench.rss_kib(env.proxy_pid()), "prosody_kib": s2bench.rss_kib(env.prosody_pid())}
        out["logins_ms"] = bench_logins(env, args.n) if args.n > 0 else {}
        asyncio.run(bench_async(env, args, out))
        out["elapsed_s"] = time.monotonic() - t_start
        print(report(out, args))
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
        return 0
    except (bl.BenchError, XmppError, AssertionError, OSError, asyncio.TimeoutError) as e:
        print("bench failed: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        if env.proxy is not None:
            print(env.proxy.log_tail(30), file=sys.stderr)
        return 1
    finally:
        s2bench.cancel_deadline()
        env.stop()


if __name__ == "__main__":
    sys.exit(main())
