"""Backup while running, restore, export (issue 13 item 5).

`s2proxy backup DIR --with-vault-key` copies a live data dir's mirror (LMDB, compacted, one read
transaction) while bob streams messages to alice; the copy, restored into a fresh data dir, starts
and serves through MAM every message committed before the backup began, with the archive ids the
device saw live. `s2proxy accounts export` writes the same archive as JSON lines.
"""
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

from test_history import collect, connect, mam_all, wait_anchor, wait_until
from xmppclient import body_of, msg_xml, run_async


def run_cli(binary, *args, timeout=60):
    return subprocess.run([binary] + list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def test_backup_during_traffic_restores_every_committed_message(proxy_factory, upstream_target, proxy_bin):
    p = proxy_factory.start()
    t = p.target()
    backup_dir = tempfile.mkdtemp(prefix="s2it-backup-", dir="/tmp")
    os.rmdir(backup_dir)  # the command creates it
    state = {}

    async def live(pool):
        run = uuid.uuid4().hex[:6]
        prefix = "bk-%s-" % run
        state["prefix"] = prefix
        a = await connect(pool, t, "alice", "backupA-" + run, sm=True)
        await wait_anchor(p)
        bob = await connect(pool, upstream_target, "bob", "backup-" + run)
        total = 300

        async def stream():
            for i in range(total):
                bob.send_xml(msg_xml(a.bare, "%s%03d" % (prefix, i)))
                await asyncio.sleep(0.01)

        sender = asyncio.ensure_future(stream())
        await wait_until(lambda: len(collect([a], prefix, a.bare)) >= 100, 30, "100 messages before the backup")
        # Delivered with an archive id = committed to the mirror (delivery follows the commit).
        committed = {b: aid for b, aid, _ in collect([a], prefix, a.bare) if aid}
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        res = await loop.run_in_executor(None, lambda: run_cli(proxy_bin, "backup", backup_dir, "--with-vault-key",
                                                               "--data-dir", p.data_dir))
        state["backup_s"] = time.monotonic() - t0
        assert res.returncode == 0, "backup failed (%d): %s %s" % (res.returncode, res.stdout, res.stderr)
        assert "vault key included" in res.stdout, res.stdout
        during = len(collect([a], prefix, a.bare)) - len(committed)
        await sender
        await wait_until(lambda: len(collect([a], prefix, a.bare)) >= total, 30, "all %d live" % total)
        state["committed"] = committed
        state["during"] = during
        state["total"] = total

    run_async(live, 120)
    committed = state["committed"]
    assert len(committed) >= 100
    rc, _, killed = p.stop()
    assert rc == 0 and not killed

    manifest = open(os.path.join(backup_dir, "BACKUP")).read()
    assert "mirror schema 1" in manifest and "vault key included" in manifest, manifest
    assert oct(os.stat(os.path.join(backup_dir, "vault.key")).st_mode & 0o777) == "0o600"

    def restore(proc):
        # A fresh data dir: only what the backup holds (the TLS certificate is made anew).
        shutil.copytree(os.path.join(backup_dir, "mirror"), os.path.join(proc.data_dir, "mirror"))
        shutil.copy2(os.path.join(backup_dir, "vault.key"), os.path.join(proc.data_dir, "vault.key"))

    q = proxy_factory.start(prepare=restore)
    qt = q.target()
    prefix = state["prefix"]

    async def after(pool):
        m = await connect(pool, qt, "alice", "restored-" + uuid.uuid4().hex[:6])
        items = await mam_all(m, max_=100)
        got = [(body_of(msg), aid) for aid, msg in items if (body_of(msg) or "").startswith(prefix)]
        bodies = [b for b, _ in got]
        assert len(bodies) == len(set(bodies)), "the restored archive holds each message once"
        ids = dict(got)
        missing = sorted(b for b in committed if b not in ids)
        assert not missing, "committed before the backup, missing after the restore: %s" % missing
        changed = sorted(b for b, aid in committed.items() if ids[b] != aid)
        assert not changed, "archive ids changed by the restore: %s" % changed
        state["restored_items"] = len(got)
        # The restored proxy's anchor catches up the rest from the upstream meanwhile; the export
        # below must see all of it, so wait until MAM through the proxy holds every message once.
        final = {}

        async def complete():
            items = await mam_all(m, max_=100)
            mine = [body_of(msg) for _, msg in items if (body_of(msg) or "").startswith(prefix)]
            final["n"], final["unique"] = len(mine), len(set(mine))
            return len(mine) >= state["total"]

        end = time.monotonic() + 60
        while not await complete():
            assert time.monotonic() < end, "the restored proxy caught up %d of %d" % (final["n"], state["total"])
            await asyncio.sleep(0.5)
        assert final["n"] == final["unique"] == state["total"], final

    run_async(after, 150)
    print("backup during traffic: %d committed before, %d more delivered while it ran (%.2f s); "
          "the restored proxy serves %d of %d (the rest caught up from the upstream)" % (
              len(committed), state["during"], state["backup_s"], state["restored_items"], state["total"]))

    # The export of the restored data dir: one JSON object per archived message, in archive order.
    q.stop()
    res = run_cli(proxy_bin, "accounts", "export", "alice@%s" % q.domain, "--data-dir", q.data_dir)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert rows and all(set(r) == {"archive_id", "time", "direction", "peer", "stanza"} for r in rows), rows[:2]
    assert [r["archive_id"] for r in rows] == sorted(r["archive_id"] for r in rows)
    mine = [r for r in rows if prefix in r["stanza"]]
    assert len(mine) == state["total"], "the export holds what MAM served: each message once"
    assert all(r["direction"] == "in" and r["peer"] == "bob@%s" % q.domain for r in mine), mine[:2]
    assert {r["archive_id"] for r in mine} >= set(committed.values())
    assert "exported %d messages" % len(rows) in res.stderr
    shutil.rmtree(backup_dir, ignore_errors=True)


def test_backup_refuses_a_non_empty_dir_and_a_missing_mirror(proxy_bin):
    target = tempfile.mkdtemp(prefix="s2it-backup-", dir="/tmp")
    empty_data = tempfile.mkdtemp(prefix="s2it-nodata-", dir="/tmp")
    try:
        open(os.path.join(target, "keep"), "w").close()
        res = run_cli(proxy_bin, "backup", target, "--data-dir", empty_data)
        assert res.returncode == 1 and "no mirror in" in res.stderr, (res.returncode, res.stderr)
        os.makedirs(os.path.join(empty_data, "mirror"))
        res = run_cli(proxy_bin, "backup", target, "--data-dir", empty_data)
        assert res.returncode == 2 and "not empty" in res.stderr, (res.returncode, res.stderr)
        assert os.listdir(target) == ["keep"], "nothing written into a refused dir"
    finally:
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(empty_data, ignore_errors=True)
