"""Two s2proxy nodes on one PostgreSQL store (issue 14 items 2–4), a real PostgreSQL 15 and a real Prosody.

Node A and node B share one database (one schema) and one upstream; each advertises its own client
address (--advertise). Checked here:
* one owner per account: alice's first login on A makes A her owner; her xmpp.js device that logs in
  on B is sent to A with see-other-host, after SASL, and follows it (reconnects to A, logs in there
  with FAST);
* both nodes serve other accounts meanwhile (carol is served by B);
* failover: kill -9 of A while bob streams 500 messages to alice: B takes alice over within seconds (the sweep
  finds her lease free), its anchor catches up from the committed cursor, and both her devices, now
  on B, end with every message once in MAM, with the archive ids A had given: the slixmpp one logs
  in with its password; the xmpp.js one with FAST, and its inline request to resume its SM session
  of A is refused (<failed/>, that state died with A) while its Bind2 request binds it;
* fencing: A's leases are gone with A; B's writes carry the new epoch (unit_store_pg proves that a
  node with a stale epoch cannot commit).
"""
import asyncio
import time
import uuid

import pgserver
from test_history import collect, connect, mam_all, wait_until
from test_session2 import js_factory  # noqa: F401 (fixture)
from xmppclient import Client, body_of, msg_xml, run_async


def start_node(proxy_factory, url, name, like=None):
    """A node on the shared store. Nodes of one cluster share the vault key (credentials and FAST
    tokens are sealed and derived with it) and, behind one name, the TLS certificate: `like` is the
    node whose key and certificate this one uses."""
    def prepare(p):
        p.env["S2PROXY_STORE"] = url
        p.env["S2PROXY_ADVERTISE"] = "127.0.0.1:%d" % p.port
        if like is not None:
            p.env["S2PROXY_VAULT_KEY_FILE"] = like.data_dir + "/vault.key"
            p.env["S2PROXY_TLS_CERT"] = like.cert
            p.env["S2PROXY_TLS_KEY"] = like.cert[:-len(".crt")] + ".key"
    return proxy_factory.start(prepare=prepare, name=name)


async def wait_log(proxy, text, timeout):
    await wait_until(lambda: text in proxy.log_text(), timeout, "%r in %s" % (text, proxy.logfile))


def test_redirect_to_owner_and_failover_without_loss(proxy_factory, upstream_target, js_factory):  # noqa: F811
    schema = pgserver.schema_for(uuid.uuid4().hex)
    url = pgserver.store_url_for(schema)
    run = uuid.uuid4().hex[:6]
    a_node = start_node(proxy_factory, url, "cluster-a-" + run)
    b_node = start_node(proxy_factory, url, "cluster-b-" + run, like=a_node)
    n_before, n_total = 50, 500
    prefix = "cl-%s-" % run
    state = {}

    async def body(pool):
        # alice logs in on A first: A creates her account and claims it.
        d1 = await connect(pool, a_node.target(), "alice", "clA-" + run, sm=True)
        await wait_log(a_node, "anchor.ready", 15)
        # Her second device, xmpp.js with SASL2 and FAST: a password login on A gives it a token.
        # Returning through B (a load balancer's choice), it authenticates there with the token,
        # is sent to A with see-other-host, and xmpp.js follows: it reconnects to the advertised
        # address and logs in there with the same token (one FAST round trip).
        js = js_factory(cafile=a_node.cert)
        ua_id = str(uuid.uuid4())
        loop = asyncio.get_running_loop()

        def js_start(name, node, **kw):
            try:
                return js.start(name, node.target(), "alice", resource="clB-" + run, user_agent=ua_id,
                                timeout=30, **kw)
            except Exception as e:
                raise AssertionError("%s\nxmpp.js trace:\n%s" % (e, js.trace(name).dump(raw=True))) from None

        st = await loop.run_in_executor(None, lambda: js_start("d2", a_node))
        assert st.get("token"), "no FAST token from A: %s" % st
        token = st["token"]
        await loop.run_in_executor(None, lambda: js.stop("d2"))
        st = await loop.run_in_executor(
            None, lambda: js_start("d2b", b_node, token=st["token"], password="wrong-" + run))
        await wait_log(b_node, "cluster.redirect", 5)
        redirect = [ln for ln in b_node.log_text().splitlines() if "cluster.redirect" in ln][0]
        assert "alice@" in redirect and ("to=127.0.0.1:%d" % a_node.port) in redirect, redirect
        tr = js.trace("d2b")
        ctx = "\nxmpp.js trace:\n" + tr.dump(raw=True)
        errs = [e.el.find("{urn:ietf:params:xml:ns:xmpp-streams}see-other-host")
                for e in tr.find("in", "http://etherx.jabber.org/streams", "error")]
        assert [e.text for e in errs if e is not None] == ["127.0.0.1:%d" % a_node.port], ctx
        auths = [a.el.get("mechanism") for a in tr.find("out", "urn:xmpp:sasl:2", "authenticate")]
        assert auths == ["HT-SHA-256-NONE", "HT-SHA-256-NONE"], "want one FAST login on B, one on A" + ctx
        assert tr.find("in", "urn:xmpp:sasl:2", "success"), "no SASL2 success on A" + ctx
        assert st.get("jid", "").startswith("alice@"), st
        # carol is served by B meanwhile.
        c = await connect(pool, b_node.target(), "carol", "clC-" + run)
        bob = await connect(pool, upstream_target, "bob", "clBob-" + run)
        bob.send_xml(msg_xml(c.bare, prefix + "carol"))
        await wait_until(lambda: collect([c], prefix, c.bare), 15, "bob's message to carol on B")
        # bob streams to alice; A is killed after the first 50 are at her devices.
        for i in range(n_before):
            bob.send_xml(msg_xml(d1.bare, "%s%03d" % (prefix, i)))
        await wait_until(lambda: len(collect([d1], prefix + "0", d1.bare)) >= n_before, 30, "the first 50 at d1")
        state["live_ids"] = {b: aid for b, aid, _ in collect([d1], prefix, d1.bare)}
        t_kill = time.monotonic()
        a_node.kill9()
        a_node.rc = a_node.proc.returncode  # killed on purpose: no SIGTERM exit status to check
        for i in range(n_before, n_total):
            bob.send_xml(msg_xml(d1.bare, "%s%03d" % (prefix, i)))
            if i % 25 == 0:
                await asyncio.sleep(0.05)
        # B takes alice over by itself (the sweep runs every 2 s).
        await wait_log(b_node, "cluster.taken_over", 15)
        state["takeover_s"] = time.monotonic() - t_kill
        # Her device reconnects; A is gone, so it goes to B (as a load balancer would send it).
        d3 = await connect(pool, b_node.target(), "alice", "clA2-" + run, timeout=30)
        assert d3.x.address[1] == b_node.port

        def mam_count():
            return state.get("mam_n", 0)

        async def poll():
            items = await mam_all(d3, with_jid=bob.bare, max_=100)
            state["mam"] = [(aid, body_of(m)) for aid, m in items if (body_of(m) or "").startswith(prefix)]
            state["mam_n"] = len(state["mam"])
        end = time.monotonic() + 40
        while time.monotonic() < end:
            await poll()
            if mam_count() >= n_total:
                break
            await asyncio.sleep(1.0)
        await asyncio.sleep(1.0)
        await poll()

        # Her xmpp.js device, which was on A, comes back too, to B. It logs in with the FAST token
        # A gave it (tokens are in the shared store; its password is wrong, so only the token can
        # work) and asks, inline in SASL2, to resume its stream-management session of A. That
        # state died with A (it is per node: docs/architecture.md §24), so B answers <failed/>
        # inside <success/>, binds the device through the Bind2 request beside it, and the device
        # syncs by MAM.
        js_was = await loop.run_in_executor(None, lambda: js.state("d2b"))
        assert js_was["sm"].get("id"), "xmpp.js had no SM session on A: %s" % js_was
        t0 = time.monotonic()
        await loop.run_in_executor(None, lambda: js_start(
            "d2c", b_node, token=js_was.get("token") or token, password="wrong-" + run,
            sm_id=js_was["sm"]["id"], sm_inbound=js_was["sm"]["inbound"]))
        state["js_back_ms"] = (time.monotonic() - t0) * 1000.0
        tr = js.trace("d2c")
        ctx = "\nxmpp.js trace:\n" + tr.dump()
        auth = tr.first("out", "urn:xmpp:sasl:2", "authenticate")
        assert auth is not None and auth.el.get("mechanism") == "HT-SHA-256-NONE", ctx
        resume = auth.el.find("{urn:xmpp:sm:3}resume")
        assert resume is not None and resume.get("previd") == js_was["sm"]["id"], ctx
        succ = tr.first("in", "urn:xmpp:sasl:2", "success")
        assert succ is not None, "no SASL2 success on B" + ctx
        assert succ.el.find("{urn:xmpp:sm:3}failed") is not None, "B claims to resume A's session" + ctx
        assert succ.el.find("{urn:xmpp:bind:0}bound") is not None, ctx
        state["js_mam"] = await loop.run_in_executor(None, lambda: js_mam_all(js, "d2c", bob.bare, prefix))

    run_async(body, 180)
    want = ["%s%03d" % (prefix, i) for i in range(n_total)]
    for who, items in (("slixmpp", state["mam"]), ("xmpp.js", state["js_mam"])):
        bodies = [b for _, b in items]
        missing = sorted(set(want) - set(bodies))
        dups = sorted({b for b in bodies if bodies.count(b) > 1})
        assert not missing, "MAM on B (%s) lacks %d of bob's messages, e.g. %s" % (who, len(missing), missing[:10])
        assert not dups, "MAM on B (%s) has duplicates: %s" % (who, dups[:10])
        assert bodies == want, "MAM order differs from send order (%s)" % who
    # The ids A gave before the kill are the ids B serves, to both devices.
    ids = {b: aid for aid, b in state["mam"]}
    changed = {b: (aid, ids.get(b)) for b, aid in state["live_ids"].items() if ids.get(b) != aid}
    assert not changed, "archive ids changed across the takeover: %s" % list(changed.items())[:5]
    assert state["js_mam"] == state["mam"], "the two devices see different archive ids"
    assert state["takeover_s"] < 10, "takeover took %.1f s" % state["takeover_s"]
    print("takeover after kill -9: %.1f s; %d messages once in MAM on both devices; xmpp.js back on B "
          "with FAST (resume refused, bound) in %.0f ms" % (state["takeover_s"], len(want), state["js_back_ms"]))


def js_mam_all(js, name, with_jid, prefix, max_=250):
    """Pages the archive through the xmpp.js client `name`: [(archive id, body)] of the bodies that
    start with `prefix`, in archive order."""
    items, after = [], None
    for _ in range(20):
        qid = uuid.uuid4().hex[:8]
        rsm = "<max>%d</max>" % max_ + ("<after>%s</after>" % after if after else "")
        seen = len(js.trace(name))
        js.send(name, "<iq type='set' id='%s'><query xmlns='urn:xmpp:mam:2' queryid='%s'>"
                      "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
                      "<value>urn:xmpp:mam:2</value></field><field var='with'><value>%s</value></field>"
                      "</x><set xmlns='http://jabber.org/protocol/rsm'>%s</set></query></iq>"
                      % (qid, qid, with_jid, rsm))
        end, answer = time.monotonic() + 20, None
        while answer is None and time.monotonic() < end:
            tr = js.trace(name, since=seen)
            answer = next((e for e in tr.find("in", "jabber:client", "iq") if e.el.get("id") == qid), None)
            if answer is None:
                time.sleep(0.1)
        assert answer is not None and answer.el.get("type") == "result", "MAM query through xmpp.js: %r" % answer
        fin = answer.el.find("{urn:xmpp:mam:2}fin")
        assert fin is not None, repr(answer)
        for e in tr.find("in", "jabber:client", "message"):
            r = e.el.find("{urn:xmpp:mam:2}result")
            if r is None or r.get("queryid") != qid:
                continue
            m = r.find("{urn:xmpp:forward:0}forwarded/{jabber:client}message")
            items.append((r.get("id"), m.findtext("{jabber:client}body") if m is not None else None))
        last = fin.findtext("{http://jabber.org/protocol/rsm}set/{http://jabber.org/protocol/rsm}last")
        if fin.get("complete") == "true" or not last:
            return [(aid, b) for aid, b in items if (b or "").startswith(prefix)]
        after = last
    raise AssertionError("MAM through xmpp.js did not complete in 20 pages")


def test_node_cut_from_its_leases_stops_and_its_accounts_move(proxy_factory, upstream_target):
    """The database ends node A's lease session (as a network cut would, once keepalives give up):
    A can no longer commit for its accounts (fencing), exits by itself (status 75, the supervisor's
    cue), and B takes its accounts over; alice's device moves to B and her history is intact."""
    schema = pgserver.schema_for(uuid.uuid4().hex)
    url = pgserver.store_url_for(schema)
    run = uuid.uuid4().hex[:6]
    a_node = start_node(proxy_factory, url, "cut-a-" + run)
    b_node = start_node(proxy_factory, url, "cut-b-" + run, like=a_node)
    prefix = "cut-%s-" % run

    async def body(pool):
        d1 = await connect(pool, a_node.target(), "alice", "cutA-" + run, sm=True)
        await wait_log(a_node, "anchor.ready", 15)
        bob = await connect(pool, upstream_target, "bob", "cutBob-" + run)
        for i in range(20):
            bob.send_xml(msg_xml(d1.bare, "%s%02d" % (prefix, i)))
        await wait_until(lambda: len(collect([d1], prefix, d1.bare)) >= 20, 20, "20 messages at d1 on A")
        ended = pgserver.server().psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 's2proxy-leases 127.0.0.1:%d'" % a_node.port)
        assert ended == "1", "A's lease session not found: %r" % ended
        t0 = time.monotonic()
        await wait_until(lambda: not a_node.alive(), 10, "A to exit after losing its leases")
        a_node.rc = a_node.proc.returncode
        assert a_node.rc == 75, "A exited with %s, want 75" % a_node.rc
        assert "cluster.lease_lost" in a_node.log_text()
        await wait_log(b_node, "cluster.taken_over", 15)
        moved_s = time.monotonic() - t0
        for i in range(20, 30):
            bob.send_xml(msg_xml(d1.bare, "%s%02d" % (prefix, i)))
        d2 = await connect(pool, b_node.target(), "alice", "cutA2-" + run)
        want = ["%s%02d" % (prefix, i) for i in range(30)]
        got = []

        async def poll():
            items = await mam_all(d2, with_jid=bob.bare, max_=100)
            got[:] = [body_of(m) for _, m in items if (body_of(m) or "").startswith(prefix)]
        end = time.monotonic() + 30
        while time.monotonic() < end:
            await poll()
            if len(got) >= 30:
                break
            await asyncio.sleep(1.0)
        assert got == want, "MAM on B: %s" % got
        print("lease cut: A exited, B took over in %.1f s; 30 messages once in MAM" % moved_s)

    run_async(body, 120)


def test_accounts_forget_takes_the_lease(proxy_factory, upstream_target, proxy_bin):
    """`s2proxy accounts forget` on a shared store takes the account's lease for its duration, as a
    node would: an account a node is serving is refused with that node's name and address (its
    commits would race with the removal) and the node goes on committing for it; once no node
    holds it, it is forgotten."""
    from test_postgres import run_cli
    schema = pgserver.schema_for(uuid.uuid4().hex)
    url = pgserver.store_url_for(schema)
    run = uuid.uuid4().hex[:6]
    a_node = start_node(proxy_factory, url, "forget-a-" + run)
    jid = "alice@%s" % a_node.domain
    cli = ["accounts", "forget", jid, "--data-dir", a_node.data_dir]
    env = {"S2PROXY_STORE": url}

    async def body(pool):
        d = await connect(pool, a_node.target(), "alice", "fg-" + run)
        await wait_log(a_node, "anchor.ready", 15)
        out = await asyncio.to_thread(run_cli, proxy_bin, *cli, env=env)
        assert out.returncode == 1, out
        assert "being served by node" in out.stderr, out.stderr
        assert "127.0.0.1:%d" % a_node.port in out.stderr, out.stderr
        # The refused command took nothing: the node still commits for alice.
        bob = await connect(pool, upstream_target, "bob", "fgb-" + run)
        bob.send_xml(msg_xml(jid, "after-refusal-" + run))
        await wait_until(lambda: collect([d], "after-refusal-" + run, jid), 10, "bob's message on alice's device")
        seen = collect([d], "after-refusal-" + run, jid)
        assert seen[0][1], "archived (an archive id): %s" % seen

    run_async(body, 60)
    shown = run_cli(proxy_bin, "accounts", "show", jid, "--data-dir", a_node.data_dir, env=env)
    assert shown.returncode == 0 and "stored (sealed)" in shown.stdout, shown
    rc, _, killed = a_node.stop()
    assert rc == 0 and not killed
    out = run_cli(proxy_bin, *cli, env=env)
    assert out.returncode == 0 and "forgot %s" % jid in out.stdout, out
    shown = run_cli(proxy_bin, "accounts", "show", jid, "--data-dir", a_node.data_dir, env=env)
    assert shown.returncode == 1 and "unknown account" in shown.stderr, shown


def test_slixmpp_and_see_other_host(proxy_factory, upstream_target):
    """What slixmpp (Debian 12's 1.8.3) does with the see-other-host of a node that does not own its
    account, as docs/architecture.md §24 documents it: it receives the stream error naming the
    owner's address, records it, and then reconnects through ClientXMPP.connect(), which resolves
    the account's domain again (port 5222) instead of connecting to the named host. Behind a load
    balancer or DNS that lists the nodes, it lands on one of them again. If this starts failing
    because slixmpp follows the redirect, update the docs: the client is fixed."""
    schema = pgserver.schema_for(uuid.uuid4().hex)
    url = pgserver.store_url_for(schema)
    run = uuid.uuid4().hex[:6]
    a_node = start_node(proxy_factory, url, "cluster-a-" + run)
    b_node = start_node(proxy_factory, url, "cluster-b-" + run, like=a_node)
    state = {}

    async def body(pool):
        await connect(pool, a_node.target(), "alice", "sA-" + run)
        await wait_log(a_node, "anchor.ready", 15)
        c = Client(b_node.target(), "alice", "sB-" + run)
        pool.clients.append(c)
        try:
            await c.connect(timeout=15)
            state["landed"] = c.x.address
        except (AssertionError, ConnectionError) as e:
            state["landed"] = None
            state["error"] = str(e)
        state["events"] = [(ev, data) for _, ev, data in c.events]
        state["address"] = tuple(c.x.address)

    run_async(body, 60)
    errors = [d for ev, d in state["events"] if ev == "stream_error"]
    assert errors, state
    assert errors[0]["condition"] == "see-other-host", errors[0]
    assert errors[0]["see_other_host"] == "127.0.0.1:%d" % a_node.port, errors[0]
    # The documented client bug: the next connection goes to the domain, not to the owner.
    assert state["landed"] is None, "slixmpp followed the redirect now: %s" % state
    assert state["address"] == (a_node.target().domain, 5222), state
    assert "cluster.redirect" in b_node.log_text()
