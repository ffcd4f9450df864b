#!/usr/bin/python3
"""What one LMDB commit of the mirror costs this disk, without the proxy (docs/architecture.md §31).

    /usr/bin/python3 bench/mirror/replay_commit_pattern.py [--dir /var/lib/s2proxy] [--seconds 12]

Replays the pattern strace shows for the proxy's writer at 100 msg/s over 1,000 accounts: per
commit ~14 scattered 4 KiB page writes into a ~2.4 MiB file, fdatasync, then the 120-byte meta
page through a second, O_DSYNC descriptor (LMDB's second sync), 180 commits a second. Three
variants: the file growing by a page in 12 % of the commits (as the mirror does), the file
written in full beforehand, and the file's blocks allocated with fallocate. Prints the commit
time p50 / p99 / max and how many took over 2 ms. A second tool, fsync_probe.py, times a lone
fdatasync loop: run it beside the proxy to see the disk's stalls under load.
"""
import argparse
import os
import random
import tempfile
import time

PAGE = 4096


def replay(path, mode, seconds, pages=600, per_second=180):
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    if mode == "written":
        os.pwrite(fd, b"\0" * (PAGE * (pages + 4000)), 0)
        os.fsync(fd)
    elif mode == "fallocated":
        os.posix_fallocate(fd, 0, PAGE * (pages + 4000))
    else:
        os.pwrite(fd, b"\0" * (PAGE * pages), 0)
        os.fsync(fd)
    meta = os.open(path, os.O_RDWR | os.O_DSYNC)
    page = b"p" * PAGE
    top, durs, slow = pages, [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        for _ in range(14):
            os.pwrite(fd, page, random.randrange(2, pages) * PAGE)
        if mode == "growing" and random.random() < 0.12:
            os.pwrite(fd, page, top * PAGE)
            top += 1
        os.fdatasync(fd)
        os.pwrite(meta, b"m" * 120, 32)
        d = time.monotonic() - t
        durs.append(d)
        slow += d > 0.002
        time.sleep(max(0.0, 1.0 / per_second - d))
    os.close(meta)
    os.close(fd)
    durs.sort()
    return {"commits": len(durs), "p50_ms": 1000 * durs[len(durs) // 2],
            "p99_ms": 1000 * durs[int(len(durs) * 0.99)], "max_ms": 1000 * durs[-1], "over_2ms": slow}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=None, help="a directory on the disk to measure (default: a temp dir)")
    ap.add_argument("--seconds", type=float, default=12.0, help="per variant")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        for mode in ("growing", "written", "fallocated"):
            r = replay(os.path.join(d, "replay.mdb"), mode, args.seconds)
            print("%-10s %5d commits  p50 %.3f ms  p99 %.3f ms  max %.3f ms  over 2 ms: %d" % (
                mode, r["commits"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["over_2ms"]))


if __name__ == "__main__":
    main()
