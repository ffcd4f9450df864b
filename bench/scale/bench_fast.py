#!/usr/bin/python3
"""Returning devices with FAST, at rates the Python load client cannot drive.

    /usr/bin/python3 bench/scale/bench_fast.py [--devices 1000] [--concurrency 20] [--away 15]
        [--concurrency-list 10,20,50] [--rate R] [--hold 2] [--json out.json]

The load client is login_load (bench/scale/login_load.cpp: C++, libuv, OpenSSL memory BIOs, one
thread), so the client is not what limits the login rate. Build it with
`cmake --build build --target login_load` (or pass --login-load PATH).

Starts a private Prosody 0.12 with accounts user1..userN (password passK) and one s2proxy in front
of it (bench/login/s2bench.py; ports 127.0.0.1:55222 / 56222 — do not run it together with the other
benches). One device per account, device i from source address 127.0.0.<1 + i % --addresses>.
Phases, each with --concurrency logins in flight (and --rate starts/s if given):
  (a) Prosody directly: STARTTLS, SASL1 PLAIN, bind (legacy-plain);
  (b) through s2proxy, round 1: SASL2 PLAIN + Bind2 asking for a FAST token (sasl2-plain);
  (c) through s2proxy, round 2: the same devices return with FAST HT-SHA-256-NONE (count 1),
      --away seconds after round 1's devices closed;
  (c') with --concurrency-list: round (c) again at each concurrency, each after the devices
      closed and --away seconds (tokens rotate: a <success/> with a new token resets the count).
In every phase each device sends <presence/> after its login and stays connected until all are
logged in and --hold seconds more, then closes (</stream:stream> + TLS close_notify).

Per phase: logins/s (ok logins / time from the first connect to the last login), login time p50 /
p90 / p99 (TCP connect to <success/> or the bind result), CPU ms per login of s2proxy, of Prosody
and of the load client (each process's CPU between the first connect and the last login, / N), the
client's share of one core, failures, and the established connections into Prosody while the
devices are held. Exit status 1 if any login failed.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "login"))
import s2bench  # noqa: E402  (puts tests/integration on sys.path)
from bench_scale import cpu, fmt, raise_nofile, upstream_sessions  # noqa: E402
from s2bench import parse_proxy_opts  # noqa: E402

GOAL_RATE = 500.0
GOAL_P99_MS = 50.0


def find_login_load(explicit):
    """--login-load, else the one the README's build makes."""
    candidates = [Path(explicit)] if explicit else [s2bench.REPO / "build" / "bench" / "scale" / "login_load"]
    for c in candidates:
        if c.exists():
            return c
    raise SystemExit("login_load not found (%s): cmake --build build --target login_load -j2" %
                     ", ".join(str(c) for c in candidates))


class Devices:
    """One device per account, with its user-agent id and FAST state kept across rounds."""

    def __init__(self, n, addresses):
        self.rows = [{"addr": "127.0.0.%d" % (1 + i % addresses), "user": "user%d" % (i + 1),
                      "password": "pass%d" % (i + 1), "tag": "d0", "ua": str(uuid.uuid4()),
                      "token": None, "count": 0} for i in range(n)]

    def write(self, path, fast):
        """The device file of login_load; for a FAST round each token's count goes up by one."""
        with open(path, "w") as f:
            for d in self.rows:
                if fast and d["token"]:
                    d["count"] += 1
                f.write("\t".join([d["addr"], d["user"], d["password"], d["tag"], d["ua"],
                                   d["token"] or "-", str(d["count"])]) + "\n")

    def take_tokens(self, path):
        """A <success/> that carried a token replaces the device's token (count from 0)."""
        for line in Path(path).read_text().splitlines():
            idx, _ok, _ms, token, _err = (line.split("\t") + [""] * 5)[:5]
            if token and token != "-":
                self.rows[int(idx)].update(token=token, count=0)


METRICS_PORT = 56290  # s2proxy's --metrics (unless --proxy-opt metrics=... says otherwise)


def upstream_logins(metrics_port):
    """s2proxy's upstream logins so far (every result), or None without metrics: a returning
    device that takes back the link its anchor kept (docs/architecture.md §26) adds none."""
    if not metrics_port:
        return None
    from harness import metric_total, scrape_metrics  # tests/integration, on sys.path via s2bench
    try:
        m = scrape_metrics(metrics_port)
    except OSError:
        return None
    return int(metric_total(m, "s2proxy_upstream_logins_total"))


def run_phase(name, mode, port, cafile, devices, args, concurrency, env, workdir):
    """One login_load run; the servers' CPU is sampled when it reports the last login done."""
    dev_file = os.path.join(workdir, "devices-%s.tsv" % mode)
    out_file = os.path.join(workdir, "results-%s.tsv" % mode)
    devices.write(dev_file, fast=(mode == "fast"))
    cmd = [str(args.login_load), "--devices", dev_file, "--mode", mode, "--host", s2bench.HOST,
           "--port", str(port), "--domain", s2bench.DOMAIN, "--cafile", cafile,
           "--concurrency", str(concurrency), "--hold", str(args.hold), "--timeout", str(args.timeout),
           "--out", out_file]
    if args.rate:
        cmd += ["--rate", str(args.rate)]
    proxy_pids, prosody_pids = env.node_pids(), [env.prosody_pid()]
    metrics_port = args.metrics_port if mode != "legacy-plain" else None
    logins0 = upstream_logins(metrics_port)
    c0 = {"proxy": cpu(proxy_pids), "prosody": cpu(prosody_pids)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        summary_line = proc.stdout.readline()
        c1 = {"proxy": cpu(proxy_pids), "prosody": cpu(prosody_pids)}
        sessions = upstream_sessions()  # while the devices are held
        closed_line = proc.stdout.readline()
        rc = proc.wait(timeout=args.timeout + args.hold + 60)
        logins1 = upstream_logins(metrics_port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if not summary_line:
        raise SystemExit("%s: login_load printed no summary (exit %s): %s" % (name, proc.returncode, cmd))
    s = json.loads(summary_line)
    closed = json.loads(closed_line) if closed_line else {}
    if mode != "legacy-plain":
        devices.take_tokens(out_file)
    n = max(s["n"], 1)
    return {
        "phase": name, "mode": mode, "concurrency": concurrency, "rate": args.rate or None,
        "n": s["n"], "ok": s["ok"], "failed": s["failed"], "errors": s["errors"],
        "seconds": s["seconds"], "logins_per_s": s["logins_per_s"],
        "login_ms": {k: s[k + "_ms"] for k in ("p50", "p90", "p99", "max")},
        "proxy_cpu_ms_per_login": 1000.0 * (c1["proxy"] - c0["proxy"]) / n,
        "prosody_cpu_ms_per_login": 1000.0 * (c1["prosody"] - c0["prosody"]) / n,
        "client_cpu_ms_per_login": s["cpu_ms_per_login"], "client_cpu_share": s["cpu_share"],
        "new_tokens": s["new_tokens"], "sessions_in_prosody": sessions,
        "dropped_during_hold": closed.get("dropped_during_hold"),
        "close_timeouts": closed.get("close_timeouts"), "login_load_exit": rc,
        "upstream_logins": (logins1 - logins0) if logins0 is not None and logins1 is not None else None,
    }


def print_report(result, args):
    print("Binary: %s" % s2bench.binary_line(result["binary"]))
    print("login_load: %s" % args.login_load)
    print("%d devices (one per account, %d source addresses), --away %g s, --hold %g s, RLIMIT_NOFILE %d, "
          "load average %s\n" % (args.devices, args.addresses, args.away, args.hold, result["nofile"],
                                 " ".join(result.get("loadavg", []))))
    rows = []
    for r in result["phases"]:
        lm = r["login_ms"]
        rows.append([r["phase"], r["mode"], r["concurrency"], "%d/%d" % (r["ok"], r["n"]),
                     fmt(r["logins_per_s"]), fmt(lm["p50"]), fmt(lm["p90"]), fmt(lm["p99"]), fmt(lm["max"]),
                     fmt(r["proxy_cpu_ms_per_login"], 2), fmt(r["prosody_cpu_ms_per_login"], 2),
                     fmt(r["client_cpu_ms_per_login"], 3), "%.0f %%" % (100.0 * r["client_cpu_share"]),
                     r["sessions_in_prosody"], "—" if r["upstream_logins"] is None else r["upstream_logins"],
                     r["dropped_during_hold"]])
    print(s2bench.md_table(["phase", "mode", "in flight", "logged in", "logins/s", "p50 ms", "p90 ms", "p99 ms",
                            "max ms", "s2proxy CPU ms/login", "Prosody CPU ms/login", "client CPU ms/login",
                            "client CPU", "sessions in Prosody", "upstream logins", "dropped while held"], rows))
    for r in result["phases"]:
        if r["failed"]:
            print("%s: %d failed, first errors: %s" % (r["phase"], r["failed"], r["errors"]))
        if r["mode"] == "fast":
            met = r["logins_per_s"] >= GOAL_RATE and r["login_ms"]["p99"] <= GOAL_P99_MS
            print("%s: goal >= %.0f FAST logins/s with p99 <= %.0f ms: %s" % (
                r["phase"], GOAL_RATE, GOAL_P99_MS, "met" if met else "not met"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000, help="devices = accounts (one device each)")
    ap.add_argument("--concurrency", type=int, default=20, help="logins in flight")
    ap.add_argument("--concurrency-list", default="",
                    help="comma-separated: repeat the FAST round at each of these concurrencies")
    ap.add_argument("--rate", type=float, default=0.0, help="login starts per second (0: only the cap)")
    ap.add_argument("--away", type=float, default=15.0, help="seconds between a round's close and the next")
    ap.add_argument("--hold", type=float, default=2.0, help="seconds the devices stay after the last login")
    ap.add_argument("--timeout", type=float, default=60.0, help="per-login timeout, seconds")
    ap.add_argument("--addresses", type=int, default=250, help="source addresses 127.0.0.1..x")
    ap.add_argument("--targets", default="prosody,s2proxy", help="prosody (phase a), s2proxy (b, c)")
    ap.add_argument("--proxy-opt", action="append", default=[], metavar="FLAG=VALUE",
                    help="another s2proxy flag, e.g. upstream-login-rate=0 (repeatable)")
    ap.add_argument("--log-level", default="warn", help="s2proxy's --log-level (logs in /tmp/s2bench-logs)")
    ap.add_argument("--binary", default=str(s2bench.DEFAULT_BINARY))
    ap.add_argument("--login-load", help="the login_load executable (default: build/bench/scale/login_load)")
    ap.add_argument("--expect-no-upstream-logins", action="store_true",
                    help="exit 1 if a returning FAST round made s2proxy log in upstream (CI: each must "
                         "take back the link its anchor kept)")
    ap.add_argument("--json")
    ap.add_argument("--budget", type=int, default=1800, help="hard deadline for the whole run, seconds")
    args = ap.parse_args()
    args.addresses = max(1, min(args.addresses, 254))
    args.login_load = find_login_load(args.login_load)
    extra = [int(c) for c in args.concurrency_list.split(",") if c.strip()]
    targets = {t.strip() for t in args.targets.split(",") if t.strip()}
    proxy_opts = parse_proxy_opts(args.proxy_opt)
    if "metrics" not in proxy_opts:
        proxy_opts["metrics"] = "127.0.0.1:%d" % METRICS_PORT
    args.metrics_port = int(proxy_opts["metrics"].rsplit(":", 1)[1])

    nofile = raise_nofile(args.devices)
    s2bench.install_deadline(args.budget)
    started = time.monotonic()
    env = s2bench.BenchEnv(args.binary, load_users=max(2, args.devices), log_level=args.log_level,
                           proxy_opts=proxy_opts)
    devices = Devices(args.devices, args.addresses)
    result = {"binary": s2bench.binary_info(args.binary), "machine": s2bench.machine_info(), "nofile": nofile,
              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "phases": []}
    phases = result["phases"]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-fast-") as workdir:
            t = time.monotonic()
            env.start()
            result["setup_seconds"] = time.monotonic() - t
            proxy_port = env.node_ports()[0]
            if "prosody" in targets:
                phases.append(run_phase("(a) Prosody directly", "legacy-plain", s2bench.PROSODY_C2S,
                                        env.prosody_ca, devices, args, args.concurrency, env, workdir))
                time.sleep(1.0)
            if "s2proxy" in targets:
                phases.append(run_phase("(b) s2proxy, round 1", "sasl2-plain", proxy_port, env.proxy_ca,
                                        devices, args, args.concurrency, env, workdir))
                for k, conc in enumerate([args.concurrency] + extra):
                    time.sleep(args.away)
                    phases.append(run_phase("(c) s2proxy, returning with FAST (round %d)" % (k + 2), "fast",
                                            proxy_port, env.proxy_ca, devices, args, conc, env, workdir))
        with open("/proc/loadavg") as f:
            result["loadavg"] = f.read().split()[:3]
    finally:
        env.stop()
        s2bench.cancel_deadline()

    print_report(result, args)
    print("_run took %.0f s_" % (time.monotonic() - started))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if not phases or any(r["failed"] for r in phases):
        return 1
    if args.expect_no_upstream_logins:
        bad = [r for r in phases if r["mode"] == "fast" and r["upstream_logins"] != 0]
        for r in bad:
            print("%s: %s upstream logins, want 0 (every returning device takes back its kept link)" % (
                r["phase"], r["upstream_logins"]))
        if bad:
            return 1
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
