"""The PostgreSQL store (issue 14 item 1), on a real PostgreSQL 15 (pgserver.py) and a real Prosody.

The history and exactly-once files also run with S2_STORE=postgresql (CTest
integration_postgres); this file checks what only the PostgreSQL store has: the history is in the
database's tables (and nothing in the data dir), the operator's commands (check-config --probe,
accounts, backup) know the store, a wrong password or a newer schema stops the daemon with a clear
message, and the URL's password never reaches a log or an error.
"""
import asyncio
import os
import subprocess
import uuid

import pgserver
from test_history import collect, connect, mam_all, wait_anchor, wait_until
from xmppclient import msg_xml, run_async


def run_cli(binary, *args, env=None, timeout=60):
    e = {k: v for k, v in os.environ.items() if not k.startswith("S2PROXY_")}
    e.update(env or {})
    return subprocess.run([binary] + list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, env=e)


def fresh_store():
    """A new schema on the test server and the URL (with password) that selects it."""
    name = uuid.uuid4().hex[:12]
    return pgserver.schema_for(name), pgserver.store_url_for(name)


def test_history_lives_in_postgresql(proxy_factory, upstream_target, proxy_bin):
    schema, url = fresh_store()
    p = proxy_factory.start(env={"S2PROXY_STORE": url})
    t = p.target()
    n = 40

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        prefix = "pg-%s-" % run
        a = await connect(pool, t, "alice", "pgA-" + run, sm=True)
        await wait_anchor(p)
        bob = await connect(pool, upstream_target, "bob", "pgB-" + run)
        for i in range(n):
            bob.send_xml(msg_xml(a.bare, "%s%d" % (prefix, i)))
        await wait_until(lambda: len(collect([a], prefix, a.bare)) >= n, 30, "bob's %d messages" % n)
        live = collect([a], prefix, a.bare)
        assert [x[0] for x in live] == ["%s%d" % (prefix, i) for i in range(n)], live
        ids = [x[1] for x in live]
        assert all(ids) and len(set(ids)) == n, live
        # MAM through the proxy: the same ids, in order, once each.
        mam = [(aid, m) for aid, m in await mam_all(a, with_jid=bob.bare) if
               (m.findtext("{jabber:client}body") or "").startswith(prefix)]
        assert [aid for aid, _ in mam] == ids, (mam, ids)
        return ids

    ids = run_async(body, 90)
    # The rows are PostgreSQL's: alice's account, her messages with those bodies, nothing on disk.
    account = pgserver.server().psql("SELECT account FROM s2_accounts WHERE bare_jid = 'alice@%s'::bytea"
                                     % p.domain, schema=schema)
    assert account, "alice has no row in %s.s2_accounts" % schema
    rows = int(pgserver.server().psql(
        "SELECT count(*) FROM s2_messages WHERE account = %s AND position('pg-'::bytea in stanza) > 0"
        % account, schema=schema))
    assert rows >= n, "%d of bob's messages in %s.s2_messages, want %d" % (rows, schema, n)
    assert not os.path.exists(os.path.join(p.data_dir, "mirror")), "an LMDB mirror was created"
    # A restart reads the same history back: alice's next MAM query names the same ids.
    p.stop()
    p.restart()

    async def again(pool):
        a = await connect(pool, t, "alice", "pgA2-" + uuid.uuid4().hex[:6])
        got = [aid for aid, _ in await mam_all(a)]
        missing = [i for i in ids if i not in got]
        assert not missing, "after restart, MAM lacks %s" % missing

    run_async(again, 60)
    # The operator's commands find the account in the same store.
    out = run_cli(proxy_bin, "accounts", "list", "--data-dir", p.data_dir, env={"S2PROXY_STORE": url})
    assert out.returncode == 0 and ("alice@%s" % p.domain) in out.stdout.split(), out
    assert pgserver.PASSWORD not in out.stdout + out.stderr


def test_check_config_probe_reports_the_store(proxy_factory, upstream, proxy_bin):
    schema, url = fresh_store()
    base = ["check-config", "--probe", "--domain", upstream.domain,
            "--upstream", "127.0.0.1:%d" % upstream.c2s, "--upstream-ca", upstream.cert,
            "--data-dir", "/tmp/s2it-pg-check-%s" % uuid.uuid4().hex[:6]]
    out = run_cli(proxy_bin, *base, env={"S2PROXY_STORE": url})
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "PostgreSQL 15" in text and "no s2proxy tables yet" in text, text
    assert pgserver.PASSWORD not in text and "***" in text, text
    # Once a daemon created the tables, the probe names the schema version.
    p = proxy_factory.start(env={"S2PROXY_STORE": url})
    p.stop()
    out = run_cli(proxy_bin, *base, env={"S2PROXY_STORE": url})
    assert out.returncode == 0 and "s2proxy schema 1" in out.stdout, out.stdout + out.stderr
    # A schema from a newer s2proxy: the probe fails, and so does the daemon, with the reason.
    pgserver.server().psql("UPDATE s2_meta SET value = 7 WHERE key = 'schema'", schema=schema)
    out = run_cli(proxy_bin, *base, env={"S2PROXY_STORE": url})
    assert out.returncode != 0 and "newer s2proxy" in out.stdout, out.stdout + out.stderr
    q = proxy_factory.start(env={"S2PROXY_STORE": url}, wait=False)
    q.rc = q.proc.wait(15)  # it stopped by itself: the teardown checks no SIGTERM exit status
    assert q.rc != 0
    log = q.log_text()
    assert "newer s2proxy (schema 7)" in log, log[-2000:]
    assert pgserver.PASSWORD not in log
    # A malformed URL is a configuration error before anything connects.
    out = run_cli(proxy_bin, *base, env={"S2PROXY_STORE": "postgresql://u:%s@127.0.0.1:99999999/x?bogus=1"
                                         % pgserver.PASSWORD})
    assert out.returncode != 0 and "--store" in out.stderr, out.stdout + out.stderr
    assert pgserver.PASSWORD not in out.stdout + out.stderr


def test_wrong_password_stops_the_daemon_without_echoing_it(proxy_factory):
    _, url = fresh_store()
    wrong = url.replace(pgserver.PASSWORD, "not-the-password-4d2e")
    p = proxy_factory.start(env={"S2PROXY_STORE": wrong}, wait=False)
    p.rc = p.proc.wait(15)  # it stopped by itself: the teardown checks no SIGTERM exit status
    assert p.rc != 0
    log = p.log_text()
    assert "--store" in log and "password authentication failed" in log, log[-2000:]
    assert "not-the-password-4d2e" not in log, "the URL's password is in the log"


def test_backup_refuses_and_points_at_the_database_tools(proxy_bin):
    _, url = fresh_store()
    out = run_cli(proxy_bin, "backup", "/tmp/s2it-pg-backup-%s" % uuid.uuid4().hex[:6], "--data-dir", "/tmp",
                  env={"S2PROXY_STORE": url})
    assert out.returncode == 2 and "pg_dump" in out.stderr, out.stdout + out.stderr
    assert pgserver.PASSWORD not in out.stdout + out.stderr


def test_messages_from_alice_reach_bob_once(proxy_factory, upstream_target):
    """A device's sends commit to PostgreSQL before their ack and reach bob exactly once, across a
    kill -9 of the proxy between two bursts (the outbox in PostgreSQL is resent, dedup absorbs)."""
    _, url = fresh_store()
    p = proxy_factory.start(env={"S2PROXY_STORE": url})
    t = p.target()

    async def body(pool):
        run = uuid.uuid4().hex[:6]
        prefix = "pgo-%s-" % run
        bob = await connect(pool, upstream_target, "bob", "pgoB-" + run)
        a = await connect(pool, t, "alice", "pgoA-" + run, sm=True)
        await wait_anchor(p)
        for i in range(30):
            a.send_xml(msg_xml(bob.bare, "%s%d" % (prefix, i), mid="%s%d" % (prefix, i)))
        await wait_until(lambda: len(collect([bob], prefix, bob.bare)) >= 30, 30, "the first 30 at bob")
        p.kill9()
        p.restart()
        a2 = await connect(pool, t, "alice", "pgoA2-" + run, sm=True)
        for i in range(30, 60):
            a2.send_xml(msg_xml(bob.bare, "%s%d" % (prefix, i), mid="%s%d" % (prefix, i)))
        await wait_until(lambda: len(collect([bob], prefix, bob.bare)) >= 60, 30, "all 60 at bob")
        await asyncio.sleep(1.5)
        got = [x[0] for x in collect([bob], prefix, bob.bare)]
        assert sorted(got) == sorted("%s%d" % (prefix, i) for i in range(60)), got

    run_async(body, 120)
