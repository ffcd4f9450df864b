"""A data dir that fills up (issue 13 item 3), on a real (small) tmpfs under the proxy's data dir.

* Under --min-free-disk: a device's new persistent messages are refused with resource-constraint
  (type wait) and a <text/>, never acknowledged-and-dropped; the session goes on; what bob sends to
  alice still arrives (the reserve is for it).
* Disk completely full: whatever could not be committed is refused or, for what enters from the
  upstream, replayed from the upstream's archive once space returns.
* Space returns: the proxy notices by itself (storage.recovered) and everything works again; every
  message bob sent arrives exactly once, every message alice sent either arrived at bob exactly once
  or was answered with the error.
"""
import asyncio
import os
import subprocess
import uuid

import pytest

from test_history import collect, connect, wait_anchor, wait_until
from xmppclient import NS_CLIENT, body_of, msg_xml, q, run_async, stanza_error

MiB = 1 << 20


def fill(path, nbytes):
    """Writes up to nbytes of zeros (stops quietly at ENOSPC); returns what was written."""
    written = 0
    chunk = b"\0" * MiB
    with open(path, "ab") as f:
        try:
            while written < nbytes:
                n = min(MiB, nbytes - written)
                f.write(chunk[:n])
                f.flush()
                written += n
        except OSError:
            pass
    return written


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_full_disk_refuses_with_an_error_and_recovers_by_itself(proxy_factory, upstream_target):
    mounted = []

    def small_fs(proc):
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", proc.data_dir],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (%s)" % r.stderr.strip())
        mounted.append(proc.data_dir)

    p = proxy_factory.start(opts={"min-free-disk": 16 * MiB}, prepare=small_fs)
    filler = os.path.join(p.data_dir, "filler")
    t = p.target()
    report = {}

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        a = await connect(pool, t, "alice", "full-" + run, sm=True)
        await wait_anchor(p)
        bob = await connect(pool, upstream_target, "bob", "full-" + run)
        to_bob, to_alice = "fa-%s-" % run, "fb-%s-" % run
        sent_by_alice, refused = [], []

        async def alice_sends(tag, n):
            for i in range(n):
                mid = "%s-%s-%d" % (run, tag, i)
                text = "%s%s-%d" % (to_bob, tag, i)
                a.send_xml(msg_xml(bob.bare, text, mid=mid))
                sent_by_alice.append((mid, text))
            await asyncio.sleep(1.5)
            for mid, text in sent_by_alice[-n:]:
                errs = [el for el in a.received("message", pred=lambda e: e.get("id") == mid and
                                                e.get("type") == "error")]
                if errs:
                    refused.append((mid, text, stanza_error(errs[0]),
                                    errs[0].findtext("%s/{urn:ietf:params:xml:ns:xmpp-stanzas}text" % q(
                                        NS_CLIENT, "error"))))

        bob_sent = []

        def bob_sends(tag, n, pad=0):
            for i in range(n):
                # A large body needs new overflow pages: on a full disk LMDB must grow the file.
                text = "%s%s-%d%s" % (to_alice, tag, i, " " + "x" * pad if pad else "")
                bob.send_xml(msg_xml(a.bare, text))
                bob_sent.append(text)

        # 1. plenty of space
        await alice_sends("ok", 3)
        bob_sends("ok", 3)
        assert not refused, refused

        # 2. under the reserve: alice's messages refused with an error, bob's still delivered
        fill(filler, max(0, free_bytes(p.data_dir) - 8 * MiB))
        await wait_until(lambda: "storage.full" in p.log_text(), 5, "storage.full in the log")
        await alice_sends("low", 3)
        assert len(refused) == 3, "each of alice's messages is answered: %s" % refused
        for _, _, err, text in refused:
            assert err == ("wait", "resource-constraint"), err
            assert text and "disk" in text, text
        bob_sends("low", 3)
        await wait_until(lambda: len(collect([a], to_alice, a.bare)) >= 6, 10, "bob's messages under the reserve")
        res = await a.iq("<ping xmlns='urn:xmpp:ping'/>", to=a.jid.split("/")[0].split("@")[1], timeout=10)
        assert res.get("type") == "result", "the session goes on"

        # 3. completely full: bob's messages cannot be committed now
        fill(filler + "2", 1 << 40)
        bob_sends("full", 3, pad=150_000)
        await alice_sends("full", 2)
        await asyncio.sleep(1.0)

        # 4. space returns: noticed without help; bob's messages replayed; alice can send again
        os.unlink(filler)
        os.unlink(filler + "2")
        await wait_until(lambda: "storage.recovered" in p.log_text(), 8, "storage.recovered in the log")
        await asyncio.sleep(5.5)  # the back-off after a failed commit, then the replay
        before = len(refused)
        await alice_sends("back", 3)
        assert len(refused) == before, "accepted again: %s" % refused[before:]
        await wait_until(lambda: len(collect([a], to_alice, a.bare)) >= len(bob_sent), 40,
                         "every message bob sent, on alice's device")
        await asyncio.sleep(1.0)
        got = [x[0] for x in collect([a], to_alice, a.bare)]
        assert sorted(got) == sorted(bob_sent), "each of bob's exactly once: %s vs %s" % (
            [x[:40] for x in got], [x[:40] for x in bob_sent])
        assert all(x[1] for x in collect([a], to_alice, a.bare)), "all archived (archive ids)"

        refused_ids = {r[0] for r in refused}
        expect = sorted(text for mid, text in sent_by_alice if mid not in refused_ids)
        await wait_until(lambda: len([b for b in map(body_of, bob.received("message"))
                                      if b and b.startswith(to_bob)]) >= len(expect), 20, "alice's accepted messages")
        await asyncio.sleep(1.0)
        at_bob = sorted(b for b in map(body_of, bob.received("message")) if b and b.startswith(to_bob))
        assert at_bob == expect, "bob got every accepted message once and no refused one:\n%s\n%s" % (at_bob, expect)
        report.update(refused=len(refused), accepted=len(expect), bob=len(bob_sent))

    try:
        run_async(body, 150)
        log = p.log_text()
        assert log.count("hub.archive_failed") > 0, \
            "bob's large messages on the full disk were expected to fail to commit (and be replayed)"
        print("full disk: %d of alice's messages refused with resource-constraint, %d accepted and delivered once; "
              "bob's %d all delivered once (archive_failed lines: %d)" % (
                  report["refused"], report["accepted"], report["bob"], log.count("hub.archive_failed")))
    finally:
        if p.proc is not None and p.proc.poll() is None:
            p.stop()
        for m in mounted:
            subprocess.run(["umount", "-l", m], capture_output=True)
