#!/usr/bin/python3
"""Password-login storm through s2proxy: throughput, latency, and the proxy's event-loop stall.

    /usr/bin/python3 bench/login/bench_storm.py [--users 200] [--rounds 3] [--concurrency 8] [--json out.json]

Starts a private Prosody 0.12 (test bed script, TB_PROSODY_LOAD_USERS=--users) and one s2proxy in
front of it (s2bench.BenchEnv: 127.0.0.1:55222 / 56222, don't run it together with the other benches).

* Storm: --rounds rounds; each round logs every user1..userN in once through the proxy with SASL1
  PLAIN (STARTTLS, PLAIN, restart, bind; then </stream:stream>), --concurrency logins at a time
  (asyncio clients, bench/relay/axmpp.py). Round 1 is each account's first login (the proxy builds its
  vault entry); later rounds are returning logins with the same password. Per round: logins/s, login
  time p50/p90/p99/max (TCP connect to bind result), failures, CPU seconds of s2proxy and Prosody.
* Loop stall: before the storm, a probe client (its own process, blocking socket) logs in as alice,
  enables XEP-0198 and then sends <r/> every --probe-interval-ms; the proxy answers <a/> itself (the
  client-side SM state lives in the proxy), so the round trip is the proxy's event-loop latency plus
  the loopback, not Prosody's. Reported: probe RTT p50/p99/max before the storm (idle) and during
  each round.
"""
import argparse
import asyncio
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "relay"))
import s2bench  # noqa: E402  (puts tests/integration on sys.path)
from s2bench import DOMAIN, HOST, percentile  # noqa: E402

NS_SM = "urn:xmpp:sm:3"


# ---- probe (child process) ------------------------------------------------------------------------
def probe_main(args):
    """Logs in as alice, enables SM, then <r/> → <a/> round trips until stdin closes. Prints one
    JSON line per sample: [t_send_monotonic, rtt_ms]."""
    from rawxmpp import RawXMPP, q  # tests/integration
    c = RawXMPP.connect(HOST, s2bench.PROXY_PORT, DOMAIN, cafile=args.cafile, timeout=15)
    c.login("alice", s2bench.PASSWORDS["alice"], resource="probe")
    c.send("<enable xmlns='%s'/>" % NS_SM)
    c.wait_for(lambda e: e.tag == q(NS_SM, "enabled"), timeout=10, what="<enabled/>")
    print("ready", flush=True)
    interval = args.probe_interval_ms / 1000.0
    while True:
        r, _, _ = select.select([sys.stdin], [], [], interval)
        if r and not sys.stdin.readline():
            break
        t0 = time.monotonic()
        c.send("<r xmlns='%s'/>" % NS_SM)
        c.wait_for(lambda e: e.tag == q(NS_SM, "a"), timeout=30, what="<a/>")
        print(json.dumps([t0, (time.monotonic() - t0) * 1000.0]), flush=True)
    c.close()


class Probe:
    def __init__(self, cafile, interval_ms):
        self.proc = subprocess.Popen([sys.executable, __file__, "--probe", "--cafile", cafile,
                                      "--probe-interval-ms", str(interval_ms)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise SystemExit("probe did not log in: %r" % line)
        self.lines = []
        # Read as it comes: a full pipe would block the probe and show up as a stall.
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def stop(self):
        """Ends the probe; returns [(t, rtt_ms)]."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(timeout=30)
        self.reader.join(10)
        return [tuple(json.loads(x)) for x in self.lines if x.startswith("[")]


def stats(xs):
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "p50": percentile(xs, 50), "p90": percentile(xs, 90), "p99": percentile(xs, 99),
            "max": max(xs)}


# ---- storm ----------------------------------------------------------------------------------------
async def storm_round(env, users, concurrency):
    from axmpp import AXmpp
    sem = asyncio.Semaphore(concurrency)
    times, failures = [], []

    async def one(i):
        async with sem:
            c = AXmpp(DOMAIN, env.proxy_ca, "user%d" % i)
            try:
                times.append(await c.login_plain(HOST, s2bench.PROXY_PORT, "user%d" % i, "pass%d" % i,
                                                 resource="storm") * 1000.0)
            except Exception as e:  # noqa: BLE001 — counted and reported
                failures.append("user%d: %s" % (i, e))
            finally:
                await c.close()

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(1, users + 1)))
    return time.monotonic() - t0, times, failures


def fmt(x):
    return "%.1f" % x if isinstance(x, float) else str(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--probe-interval-ms", type=float, default=5.0)
    ap.add_argument("--idle-s", type=float, default=2.0, help="probe alone before the storm")
    ap.add_argument("--binary", default=str(s2bench.DEFAULT_BINARY))
    ap.add_argument("--json")
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cafile", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        probe_main(args)
        return 0

    s2bench.install_deadline(args.budget)
    started = time.monotonic()
    env = s2bench.BenchEnv(args.binary, load_users=args.users)
    binfo = s2bench.binary_info(args.binary)
    result = {"binary": binfo, "machine": s2bench.machine_info(), "users": args.users,
              "concurrency": args.concurrency, "rounds": []}
    probe = None
    try:
        env.start()
        probe = Probe(env.proxy_ca, args.probe_interval_ms)
        time.sleep(args.idle_s)
        windows = [("idle", time.monotonic() - args.idle_s, time.monotonic())]
        for r in range(1, args.rounds + 1):
            cpu0 = (s2bench.cpu_seconds(env.proxy_pid()), s2bench.cpu_seconds(env.prosody_pid()))
            t_start = time.monotonic()
            took, times, failures = asyncio.run(storm_round(env, args.users, args.concurrency))
            t_end = time.monotonic()
            cpu1 = (s2bench.cpu_seconds(env.proxy_pid()), s2bench.cpu_seconds(env.prosody_pid()))
            windows.append(("round %d" % r, t_start, t_end))
            result["rounds"].append({
                "round": r, "kind": "first login" if r == 1 else "returning", "seconds": took,
                "logins": len(times), "logins_per_s": len(times) / took if took else 0.0,
                "login_ms": stats(times), "failures": failures[:10], "failed": len(failures),
                "proxy_cpu_s": cpu1[0] - cpu0[0], "prosody_cpu_s": cpu1[1] - cpu0[1]})
            time.sleep(0.5)
        samples = probe.stop()
        probe = None
        result["probe"] = {}
        for name, a, b in windows:
            result["probe"][name] = stats([rtt for t, rtt in samples if a <= t < b])
    finally:
        if probe is not None:
            try:
                probe.stop()
            except Exception:  # noqa: BLE001
                probe.proc.kill()
        env.stop()
        s2bench.cancel_deadline()

    print("Binary: %s\n" % s2bench.binary_line(binfo))
    rows = []
    for rd in result["rounds"]:
        lm = rd["login_ms"]
        pr = result["probe"].get("round %d" % rd["round"], {})
        rows.append([rd["round"], rd["kind"], "%d/%d" % (rd["logins"], rd["logins"] + rd["failed"]),
                     "%.1f" % rd["logins_per_s"], fmt(lm.get("p50", "-")), fmt(lm.get("p99", "-")),
                     fmt(lm.get("max", "-")), "%.2f" % rd["proxy_cpu_s"],
                     "%.2f" % (1000.0 * rd["proxy_cpu_s"] / max(rd["logins"], 1)), "%.2f" % rd["prosody_cpu_s"],
                     fmt(pr.get("p50", "-")), fmt(pr.get("p99", "-")), fmt(pr.get("max", "-"))])
    print(s2bench.md_table(["round", "logins", "ok", "logins/s", "login p50 ms", "login p99 ms", "login max ms",
                            "s2proxy CPU s", "s2proxy CPU ms/login", "Prosody CPU s",
                            "probe RTT p50 ms", "probe p99", "probe max"], rows))
    idle = result["probe"].get("idle", {})
    print("\nProbe <r/>→<a/> round trip with no storm (idle): n=%s p50 %s p99 %s max %s ms" % (
        idle.get("n"), fmt(idle.get("p50", "-")), fmt(idle.get("p99", "-")), fmt(idle.get("max", "-"))))
    for rd in result["rounds"]:
        if rd["failures"]:
            print("round %d failures: %s" % (rd["round"], rd["failures"]))
    print("_run took %.0f s_" % (time.monotonic() - started))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0 if all(rd["failed"] == 0 for rd in result["rounds"]) else 1


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
