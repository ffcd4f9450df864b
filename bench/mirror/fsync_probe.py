#!/usr/bin/python3
"""A lone fdatasync loop, to see a disk's stalls while something else runs (docs/architecture.md §31).

    /usr/bin/python3 bench/mirror/fsync_probe.py [--dir DIR] [--seconds 12]

Every ~3 ms: write one 4 KiB page, fdatasync it, time the sync. Prints p50 / p99 / max, how many
took over 2 ms, and the intervals (ms) between the starts of such stalls: periodic stalls show as
a regular interval. Run it beside bench_scale.py's load phase, then beside Prosody alone.
"""
import argparse
import os
import tempfile
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--seconds", type=float, default=12.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        fd = os.open(os.path.join(d, "probe.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
        durs, stalls, i = [], [], 0
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            os.pwrite(fd, b"x" * 4096, (i % 256) * 4096)
            t = time.monotonic()
            os.fdatasync(fd)
            dt = time.monotonic() - t
            durs.append(dt)
            if dt > 0.002:
                stalls.append(t)
            i += 1
            time.sleep(0.003)
        os.close(fd)
    durs.sort()
    starts = stalls[:1]
    for a, b in zip(stalls, stalls[1:]):
        if b - a > 0.1:
            starts.append(b)
    print("fdatasync: %d  p50 %.3f ms  p99 %.3f ms  max %.3f ms  over 2 ms: %d" % (
        len(durs), 1000 * durs[len(durs) // 2], 1000 * durs[int(len(durs) * 0.99)], 1000 * durs[-1], len(stalls)))
    print("ms between stall starts:", [round(1000 * (b - a)) for a, b in zip(starts, starts[1:])][:40])


if __name__ == "__main__":
    main()
