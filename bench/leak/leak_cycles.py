#!/usr/bin/python3
"""1,000 login/logout cycles against an ASan+UBSan s2proxy, then LeakSanitizer's verdict (issue 13 item 8).

    cmake --preset asan && cmake --build --preset asan --target s2proxy
    /usr/bin/python3 bench/leak/leak_cycles.py [--cycles 1000] [--binary build-asan/s2proxy]

Starts a private Prosody and the sanitizer build of s2proxy in front of it (bench/login/s2bench.py),
with ASAN_OPTIONS=detect_leaks=1. Half of the cycles are SASL1 (STARTTLS, SCRAM-SHA-1, bind, SM,
ping, close), half SASL2 (PLAIN + Bind2 + SM + FAST token the first time, FAST after that, ping,
close); every 10th cycle cuts the TCP connection instead of closing the stream. Then SIGTERM: at exit
LeakSanitizer reports every allocation still reachable from nowhere. Exit 0 when the proxy exited 0
and its log holds no sanitizer report; the report's first lines are printed otherwise.
"""
import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "login"))
os.environ["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
os.environ["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
import s2bench  # noqa: E402
import bench_login  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--binary", default=str(s2bench.REPO / "build-asan" / "s2proxy"))
    args = ap.parse_args()
    env = s2bench.BenchEnv(args.binary, log_level="warn")
    t0 = time.monotonic()
    done = {"sasl1": 0, "sasl2": 0, "cut": 0}
    env.start()
    try:
        port, ca = s2bench.PROXY_PORT, env.proxy_ca
        dev = bench_login.Device("leak")
        for i in range(args.cycles):
            cut = i % 10 == 9
            if i % 2 == 1:  # SASL2 first: its PLAIN login gives the vault what SCRAM needs
                c, _ = bench_login.legacy_login(port, ca, False, resource="leak%d" % (i % 7))
                bench_login.finish(c, cut=cut)
                done["sasl1"] += 1
            else:
                mode = "fast" if dev.token else "password"
                c, _ = bench_login.sasl2_login(dev, port, ca, False, mode)
                bench_login.finish(c, dev, cut=cut)
                done["sasl2"] += 1
            done["cut"] += cut
        time.sleep(1.0)
        rc, elapsed, killed = env.proxy.stop(timeout=60)
        log = env.proxy.log_text()
    finally:
        env.stop()
    reports = [line for line in log.splitlines()
               if "LeakSanitizer" in line or "ERROR: AddressSanitizer" in line or "runtime error:" in line]
    print("%d cycles (%d SASL1, %d SASL2, %d of them cut) in %.0f s; proxy exit %s%s" % (
        args.cycles, done["sasl1"], done["sasl2"], done["cut"], time.monotonic() - t0, rc,
        " (killed)" if killed else ""))
    if reports:
        print("sanitizer reports:\n" + "\n".join(reports[:20]))
        return 1
    print("LeakSanitizer: 0 leaks reported")
    return 0 if rc == 0 and not killed else 1


if __name__ == "__main__":
    sys.exit(main())
