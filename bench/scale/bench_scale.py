#!/usr/bin/python3
"""N devices held at once, directly on Prosody and through s2proxy, in the same run (issue 12).

    /usr/bin/python3 bench/scale/bench_scale.py --devices 1000 [--per-account 5] [--addresses 250]
        [--concurrency 50] [--load-rate 100] [--load-seconds 20] [--json out.json]

Starts a private Prosody 0.12 (test bed script; the bench registers ceil(N / per-account) accounts
user1..userA in bulk through it) and one s2proxy in front of it (bench/login/s2bench.py; ports
127.0.0.1:55222 / 56222 — do not run it together with the other benches). Raises its own
RLIMIT_NOFILE to the hard limit first (as root: to what N needs), which Prosody and s2proxy inherit;
s2proxy sizes --max-clients from it.

Then, for each target — Prosody directly first, then s2proxy (so the direct run never shares the
upstream with the proxy's sessions) — the same work:
1. log N devices in: device i is account 1 + i % A with resource d<i // A>, from source address
   127.0.0.<1 + i % addresses>, --concurrency logins at a time (STARTTLS, SASL PLAIN, bind,
   initial presence); login time is TCP connect to bind result;
2. hold them idle for --settle seconds (12) and read RSS: per device = (RSS then - RSS before) / N,
   for the target and,
   through s2proxy, for Prosody behind it (the upstream sessions the proxy holds);
3. background load: --load-rate messages/s for --load-seconds, each from a random device to the bare
   JID of a random other account (persistent, fanned out to its devices); latency is the time from
   the send to the first of the recipient's devices receiving it (one clock: the bench's);
   a message no device of the recipient received within 10 s is counted lost; through a single
   s2proxy node, its /metrics are read before and after the load, and the report says how long the
   messages spent inside it (s2proxy_message_transit_seconds: leaving, device to upstream link;
   entering, upstream to devices; each with its mirror commit) and what the commits took;
4. close every device.
With --rounds R, s2proxy's run repeats R times, --away seconds apart: from round 2 on, the devices
return to accounts whose anchors hold sessions of their own (as after a restart). "sessions in
Prosody" counts the established connections into Prosody's c2s ports when RSS is read. With --sasl2
the devices log in to s2proxy with session2: SASL2 PLAIN + Bind2 asking for a FAST token in round 1,
FAST (HT-SHA-256-NONE) from round 2 on — returning devices.

CPU: seconds of the target (and of Prosody behind s2proxy) during the logins, per login; the bench's
own CPU share during the logins is reported too, to show the load client was not the bottleneck.

Load client: asyncio + Python's ssl (bench/relay/axmpp.py), one process. It is the same client
against both targets, costs ~1-2 ms of CPU per login and sits idle while holding connections, so at
the login rates measured here (~100/s) it keeps well under one core; the report prints its CPU share
so a run where it was the bottleneck is visible.

Several nodes (issue 14): `--store postgresql --nodes 2` runs s2proxy as a cluster of two nodes on one
throwaway PostgreSQL 15 (tests/integration/pgserver.py), node k listening on 56222 + 2k; the devices of
account a log in on node (a - 1) % nodes, as a load balancer that knows the owners would send them
(a device sent to the other node is redirected with see-other-host: test_cluster.py). RSS and CPU
are the sum over the nodes. Each node is its own process with its own RLIMIT_NOFILE, which is how
10,000 devices fit on a machine whose hard limit is 20,000 descriptors (~2.2 per device in one
process: client, device link, a share of the anchors).

Exit status 1 if any login failed or any message was lost (CI runs this at 200 devices).
"""
import argparse
import asyncio
import json
import math
import random
import resource
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "login"))
sys.path.insert(0, str(HERE.parent / "relay"))
import s2bench  # noqa: E402  (puts tests/integration on sys.path)
from s2bench import DOMAIN, HOST, parse_proxy_opts, percentile  # noqa: E402
from axmpp import AXmpp  # noqa: E402
from rawxmpp import NS_CLIENT, q  # noqa: E402
from harness import scrape_metrics  # noqa: E402

LOST_AFTER_S = 10.0


def raise_nofile(devices):
    """Soft (and, as root, hard) RLIMIT_NOFILE high enough for N devices: s2proxy needs ~3
    descriptors per device, Prosody ~2 through the proxy, the bench 1."""
    want = max(4096, 4 * devices + 1024)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            want = hard
    new_soft = want if hard == resource.RLIM_INFINITY else min(max(soft, want), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
    return new_soft


def stats(xs):
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "p50": percentile(xs, 50), "p99": percentile(xs, 99), "max": max(xs)}


class Fleet:
    """The N connected devices of one target and the messages they saw."""

    def __init__(self, name, ports, cafile, args, accounts, fast=None):
        self.name = name
        # --sasl2: {device index: [user-agent id, FAST token, count]}, kept across rounds; a device
        # with a token logs in with FAST, one without with SASL2 PLAIN asking for one.
        self.fast = fast
        self.fast_logins = 0
        self.ports = ports  # several s2proxy nodes: account a logs in on node (a - 1) % len(ports)
        self.cafile = cafile
        self.args = args
        self.accounts = accounts
        self.devices = []  # (account index, AXmpp)
        self.by_account = {}
        self.sent = {}  # msg id -> send time
        self.route = {}  # msg id -> (sender account, recipient account)
        # Unique per run: a round's devices may be sent an earlier round's messages (catch-up).
        self.tag = "r%d" % random.randrange(1 << 30)
        self.first_seen = {}  # msg id -> latency (ms) at the first device of the recipient
        self.deliveries = 0
        self.login_ms = []
        self.failures = []

    def _on_element(self, el):
        if el.tag != q(NS_CLIENT, "message"):
            return
        body = el.find(q(NS_CLIENT, "body"))
        if body is None or not body.text or not body.text.startswith("s2scale "):
            return
        mid = body.text.split(" ", 2)[1]
        self.deliveries += 1
        t0 = self.sent.get(mid)
        if t0 is not None and mid not in self.first_seen:
            self.first_seen[mid] = (time.monotonic() - t0) * 1000.0

    async def login_all(self):
        sem = asyncio.Semaphore(self.args.concurrency)
        n, a = self.args.devices, self.accounts

        async def one(i):
            acct = 1 + i % a
            src = "127.0.0.%d" % (1 + i % self.args.addresses)
            c = AXmpp(DOMAIN, self.cafile, "user%d/d%d" % (acct, i // a))
            async with sem:
                try:
                    port = self.ports[(acct - 1) % len(self.ports)]
                    if self.fast is not None:
                        st = self.fast.setdefault(i, [str(uuid.uuid4()), None, 0])
                        if st[1]:
                            st[2] += 1
                            self.fast_logins += 1
                        took, tok = await c.login_sasl2(HOST, port, "user%d" % acct, password="pass%d" % acct,
                                                        token=st[1], count=st[2], ua_id=st[0],
                                                        tag="d%d" % (i // a), local_addr=src, timeout=120.0)
                        if tok:
                            st[1], st[2] = tok, 0
                    else:
                        took = await c.login_plain(HOST, port, "user%d" % acct, "pass%d" % acct,
                                                   resource="d%d" % (i // a), local_addr=src, timeout=120.0)
                    c.send("<presence/>")
                    self.login_ms.append(took * 1000.0)
                except Exception as e:  # noqa: BLE001 — counted and reported
                    self.failures.append("user%d/d%d: %s" % (acct, i // a, e))
                    try:
                        c.writer and c.writer.close()
                    except Exception:  # noqa: BLE001
                        pass
                    return
            c.start_reader(self._on_element)
            self.devices.append((acct, c))
            self.by_account.setdefault(acct, []).append(c)

        await asyncio.gather(*(one(i) for i in range(n)))

    async def load(self):
        rng = random.Random(12)
        interval = 1.0 / self.args.load_rate
        end = time.monotonic() + self.args.load_seconds
        nxt = time.monotonic()
        k = 0
        accounts = sorted(self.by_account)
        while time.monotonic() < end and len(accounts) > 1:
            acct, sender = self.devices[rng.randrange(len(self.devices))]
            to = rng.choice(accounts)
            while to == acct:
                to = rng.choice(accounts)
            mid = "%s-%d" % (self.tag, k)  # no spaces: the body is split on them
            k += 1
            self.sent[mid] = time.monotonic()
            self.route[mid] = (acct, to)
            sender.send("<message to='user%d@%s' type='chat' id='%s'><body>s2scale %s x</body></message>" % (
                to, DOMAIN, mid, mid))
            nxt += interval
            delay = nxt - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        deadline = time.monotonic() + LOST_AFTER_S
        while len(self.first_seen) < len(self.sent) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    async def close_all(self):
        sem = asyncio.Semaphore(200)

        async def one(c):
            async with sem:
                await c.close(timeout=5.0)

        await asyncio.gather(*(one(c) for _, c in self.devices))


def upstream_sessions():
    """Established client connections into Prosody (its c2s ports): the direct devices, or the
    device links and anchors s2proxy holds."""
    n = 0
    for port in (s2bench.PROSODY_C2S, s2bench.PROSODY_C2S_TLS):
        out = subprocess.run(["ss", "-Htn", "state", "established", "( dport = :%d )" % port],
                             capture_output=True, text=True, check=False).stdout
        n += sum(1 for line in out.splitlines() if line.strip())
    return n


def rss(pids):
    return sum(s2bench.rss_kib(p) for p in pids if p)


def cpu(pids):
    return sum(s2bench.cpu_seconds(p) for p in pids if p)


def scrape(mport):
    """s2proxy's /metrics as {series: value}; {} without a metrics port or when it does not answer."""
    if not mport:
        return {}
    try:
        return scrape_metrics(mport)
    except OSError:
        return {}


def histogram_delta(m0, m1, name, labels=""):
    """What a Prometheus histogram observed between two scrapes: count, mean (ms) and p50/p99 (ms,
    interpolated inside the bucket)."""
    def key(suffix, extra=""):
        inner = ",".join(x for x in (labels, extra) if x)
        return "%s_%s%s" % (name, suffix, "{%s}" % inner if inner else "")
    count = m1.get(key("count"), 0) - m0.get(key("count"), 0)
    if count <= 0:
        return None
    total = m1.get(key("sum"), 0) - m0.get(key("sum"), 0)
    buckets = []
    for k in m1:
        if k.startswith(name + "_bucket{") and (not labels or labels in k):
            le = k.rsplit('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets.append((bound, m1[k] - m0.get(k, 0)))
    buckets.sort()

    def quantile(q):
        want, low, below = q * count, 0.0, 0.0
        for bound, cum in buckets:
            if cum >= want:
                if bound == float("inf"):
                    return low * 1000
                inside = cum - below
                return 1000 * (low + (bound - low) * ((want - below) / inside if inside else 1.0))
            low, below = bound, cum
        return None
    return {"count": int(count), "mean_ms": 1000 * total / count, "p50_ms": quantile(0.5), "p99_ms": quantile(0.99)}


async def run_target(name, ports, cafile, args, accounts, target_pids, prosody_pid, fast=None, mport=None):
    """`target_pids`: the processes whose RSS and CPU are the target's (every s2proxy node);
    `mport`: s2proxy's metrics port, read around the load for where a message's time goes inside it."""
    prosody_pids = [prosody_pid]
    fleet = Fleet(name, ports, cafile, args, accounts, fast)
    r0 = {"target": rss(target_pids), "prosody": rss(prosody_pids)}
    c0 = {"target": cpu(target_pids), "prosody": cpu(prosody_pids), "self": time.process_time()}
    t0 = time.monotonic()
    await fleet.login_all()
    took = time.monotonic() - t0
    c1 = {"target": cpu(target_pids), "prosody": cpu(prosody_pids), "self": time.process_time()}
    # Held idle --settle seconds before RSS is read: the upstream sessions and anchors settle, and
    # s2proxy frees what an idle connection does not need (its idle sweep runs every 5 s).
    await asyncio.sleep(args.settle)
    r1 = {"target": rss(target_pids), "prosody": rss(prosody_pids)}
    sessions = upstream_sessions()
    t_load = time.monotonic()
    m0 = scrape(mport)
    await fleet.load()
    m1 = scrape(mport)
    load_took = time.monotonic() - t_load
    inside = {}
    if m0 and m1:
        for what, series, labels in (("leaving", "s2proxy_message_transit_seconds", 'direction="leaving"'),
                                     ("entering", "s2proxy_message_transit_seconds", 'direction="entering"'),
                                     ("commit", "s2proxy_mirror_commit_seconds", "")):
            inside[what] = histogram_delta(m0, m1, series, labels)
    await fleet.close_all()
    ok = len(fleet.login_ms)
    lat = list(fleet.first_seen.values())
    res = {
        "target": name, "devices": args.devices, "accounts": accounts, "logged_in": ok,
        "failed": len(fleet.failures), "failures": fleet.failures[:10],
        "login_seconds": took, "logins_per_s": ok / took if took else 0.0,
        "login_ms": stats(fleet.login_ms),
        "rss_kib_before": r0, "rss_kib_after": r1,
        "rss_kib_per_device": (r1["target"] - r0["target"]) / max(ok, 1),
        "cpu_ms_per_login": 1000.0 * (c1["target"] - c0["target"]) / max(ok, 1),
        "client_cpu_share": (c1["self"] - c0["self"]) / took if took else 0.0,
        "sent": len(fleet.sent), "received": len(fleet.first_seen),
        "lost": len(fleet.sent) - len(fleet.first_seen), "deliveries": fleet.deliveries,
        "lost_first": sorted("%s user%d->user%d" % (m, *fleet.route[m]) for m in fleet.sent
                             if m not in fleet.first_seen)[:20],
        "latency_ms": stats(lat),
        "nodes": len(ports),
        "upstream_sessions": sessions,
        "fast_logins": fleet.fast_logins,
        "delivered_per_s": len(fleet.first_seen) / load_took if load_took else 0.0,
        "inside_proxy_during_load": inside,
    }
    if prosody_pid and prosody_pid not in target_pids:
        res["prosody_rss_kib_per_device"] = (r1["prosody"] - r0["prosody"]) / max(ok, 1)
        res["prosody_cpu_ms_per_login"] = 1000.0 * (c1["prosody"] - c0["prosody"]) / max(ok, 1)
    return res


def fmt(x, digits=1):
    return ("%%.%df" % digits) % x if isinstance(x, float) else str(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--per-account", type=int, default=5, help="devices per account (accounts = N / this)")
    ap.add_argument("--addresses", type=int, default=250, help="source addresses 127.0.0.1..x")
    ap.add_argument("--concurrency", type=int, default=50, help="logins in flight")
    ap.add_argument("--load-rate", type=float, default=100.0, help="messages/s during the hold")
    ap.add_argument("--load-seconds", type=float, default=20.0)
    ap.add_argument("--targets", default="prosody,s2proxy")
    ap.add_argument("--settle", type=float, default=12.0,
                    help="seconds the devices are held idle before RSS is read")
    ap.add_argument("--upstream-login-rate", type=float, default=None,
                    help="s2proxy's --upstream-login-rate (default: the daemon's own, 150/s; 0 = unpaced)")
    ap.add_argument("--store", default="lmdb", choices=["lmdb", "postgresql"],
                    help="s2proxy's store: its embedded LMDB, or a throwaway PostgreSQL 15 (tests/integration/pgserver.py)")
    ap.add_argument("--nodes", type=int, default=1,
                    help="s2proxy nodes of one cluster (needs --store postgresql); the devices of account a "
                         "log in on node (a - 1) %% nodes, so none is redirected")
    ap.add_argument("--log-level", default="warn", help="s2proxy's --log-level (logs in /tmp/s2bench-logs)")
    ap.add_argument("--binary", default=str(s2bench.DEFAULT_BINARY))
    ap.add_argument("--json")
    ap.add_argument("--budget", type=int, default=3600, help="hard deadline for the whole run, seconds")
    ap.add_argument("--rounds", type=int, default=1,
                    help="s2proxy: log the same devices in this many times, each round after the last "
                         "one closed (round 2 on: returning devices, whose accounts' anchors hold "
                         "sessions of their own)")
    ap.add_argument("--sasl2", action="store_true",
                    help="s2proxy: devices log in with session2 (SASL2 PLAIN + Bind2, asking for a FAST "
                         "token; from round 2 on with FAST HT-SHA-256-NONE); Prosody directly: SASL1 PLAIN")
    ap.add_argument("--away", type=float, default=15.0,
                    help="seconds between rounds (the anchors log in their own sessions meanwhile)")
    ap.add_argument("--proxy-opt", action="append", default=[], metavar="FLAG=VALUE",
                    help="another s2proxy flag, e.g. anchor-on-device-link=false (repeatable)")
    args = ap.parse_args()
    args.addresses = max(1, min(args.addresses, 254))
    accounts = max(2, math.ceil(args.devices / max(1, args.per_account)))

    nofile = raise_nofile(args.devices)
    s2bench.install_deadline(args.budget)
    started = time.monotonic()
    binfo = s2bench.binary_info(args.binary)
    proxy_opts = {}
    if args.upstream_login_rate is not None:
        proxy_opts["upstream-login-rate"] = args.upstream_login_rate
    proxy_opts.update(parse_proxy_opts(args.proxy_opt))
    if args.nodes > 1 and args.store != "postgresql":
        raise SystemExit("--nodes %d needs --store postgresql" % args.nodes)
    mport = None
    if args.nodes == 1 and "metrics" not in proxy_opts:
        # Where a message's time goes inside the proxy during the load (s2proxy_message_transit_seconds).
        import socket
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            mport = sock.getsockname()[1]
        proxy_opts["metrics"] = "127.0.0.1:%d" % mport
    env = s2bench.BenchEnv(args.binary, load_users=accounts, log_level=args.log_level, proxy_opts=proxy_opts,
                           store=args.store, nodes=args.nodes)
    result = {"binary": binfo, "machine": s2bench.machine_info(), "nofile": nofile,
              "args": vars(args), "runs": []}
    try:
        t = time.monotonic()
        env.start()
        result["setup_seconds"] = time.monotonic() - t
        for target in [x.strip() for x in args.targets.split(",") if x.strip()]:
            if target == "prosody":
                res = asyncio.run(run_target("prosody", [s2bench.PROSODY_C2S], env.prosody_ca, args, accounts,
                                             [env.prosody_pid()], env.prosody_pid()))
            elif target == "s2proxy":
                name = "s2proxy" if args.nodes == 1 else "s2proxy x%d" % args.nodes
                if args.store == "postgresql":
                    name += " (PostgreSQL)"
                fast = {} if args.sasl2 else None
                if args.sasl2:
                    name += ", SASL2"
                for k in range(args.rounds - 1):  # earlier rounds: the devices come back after these
                    res = asyncio.run(run_target("%s, round %d" % (name, k + 1), env.node_ports(), env.proxy_ca,
                                                 args, accounts, env.node_pids(), env.prosody_pid(), fast))
                    result["runs"].append(res)
                    time.sleep(args.away)
                if args.rounds > 1:
                    name += ", devices returning%s (round %d)" % (" with FAST" if args.sasl2 else "", args.rounds)
                res = asyncio.run(run_target(name, env.node_ports(), env.proxy_ca, args, accounts,
                                             env.node_pids(), env.prosody_pid(), fast, mport))
            else:
                raise SystemExit("unknown target %r" % target)
            result["runs"].append(res)
            time.sleep(1.0)
        with open("/proc/loadavg") as f:
            result["loadavg"] = f.read().split()[:3]
    finally:
        env.stop()
        s2bench.cancel_deadline()

    print("Binary: %s" % s2bench.binary_line(binfo))
    print("%d devices (%d accounts x %d, %d source addresses, %d logins in flight), load %.0f msg/s for %.0f s, "
          "RLIMIT_NOFILE %d, s2proxy: %d node(s) on %s, --upstream-login-rate %s, load average %s\n" % (
              args.devices, accounts, args.per_account, args.addresses, args.concurrency, args.load_rate,
              args.load_seconds, nofile, args.nodes, args.store, "default (150)" if args.upstream_login_rate is None
              else "%g" % args.upstream_login_rate, " ".join(result.get("loadavg", []))))
    rows = []
    for r in result["runs"]:
        lm, lat = r["login_ms"], r["latency_ms"]
        rows.append([r["target"], "%d/%d" % (r["logged_in"], r["devices"]), fmt(r["logins_per_s"]),
                     fmt(lm.get("p50", "-"), 0), fmt(lm.get("p99", "-"), 0), fmt(r["cpu_ms_per_login"], 2),
                     fmt(r.get("prosody_cpu_ms_per_login", "-"), 2), fmt(r["rss_kib_per_device"]),
                     fmt(r.get("prosody_rss_kib_per_device", "-")), r["upstream_sessions"],
                     "%d/%d" % (r["received"], r["sent"]),
                     fmt(r["delivered_per_s"]), fmt(lat.get("p50", "-"), 2), fmt(lat.get("p99", "-"), 2),
                     "%.0f %%" % (100.0 * r["client_cpu_share"])])
    print(s2bench.md_table(["target", "logged in", "logins/s", "login p50 ms", "login p99 ms", "CPU ms/login",
                            "Prosody behind: CPU ms/login", "RSS KiB/device", "Prosody behind: RSS KiB/device", "sessions in Prosody",
                            "messages", "messages/s", "latency p50 ms", "latency p99 ms", "bench CPU"], rows))
    for r in result["runs"]:
        inside = r.get("inside_proxy_during_load") or {}
        if any(inside.values()):
            parts = []
            for what in ("leaving", "entering", "commit"):
                h = inside.get(what)
                if h:
                    parts.append("%s %d, mean %.2f ms, p50 %s ms, p99 %s ms" % (
                        what, h["count"], h["mean_ms"], fmt(h["p50_ms"], 2), fmt(h["p99_ms"], 2)))
            print("%s, inside the proxy during the load (s2proxy_message_transit_seconds, the leaving and "
                  "entering ones with their commit; s2proxy_mirror_commit_seconds): %s" % (r["target"], "; ".join(parts)))
    for r in result["runs"]:
        if r["failures"]:
            print("%s failures (first %d of %d): %s" % (r["target"], len(r["failures"]), r["failed"], r["failures"]))
    print("_run took %.0f s_" % (time.monotonic() - started))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    bad = [r for r in result["runs"] if r["failed"] or r["lost"]]
    return 1 if bad or not result["runs"] else 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
