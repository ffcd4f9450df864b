#!/usr/bin/python3
"""Catch-up of 10k messages: from s2proxy's mirror vs the same through Prosody's MAM, side by side.

    /usr/bin/python3 bench/mam/bench_mam.py [--json out.json] [-n 10000] [-r 5] [--page 250] [--budget 300]
                                        [--prosody-storage internal|sqlite]

Starts a private Prosody 0.12 (test bed script, wiped data, 127.0.0.1:55222) and s2proxy
(127.0.0.1:56222, log level info) through tests/integration/harness.py (bench/login/s2bench.py), then:

  1. alice logs in once through the proxy with SASL1 PLAIN: the proxy stores her credentials in its
     vault and starts her anchor session upstream (resource `s2proxy`), which mirrors everything
     sent to her into the proxy's LMDB mirror; the bench waits for `anchor.ready` in the proxy log;
  2. bob, straight on Prosody, sends N chat messages with bodies `mam-bench <i>` to alice's bare JID
     (batches of 250, at most two batches in flight, each closed by a ping round trip to the
     server); then the bench polls the proxy's MAM (RSM <before/> max=1, with=bob) until the last
     body is in the mirror (the time that takes is the mirror's lag behind Prosody);
  3. the same raw asyncio client (bench/relay/axmpp.py: STARTTLS, SASL1 PLAIN, bind, no presence)
     pages through alice's archive filtered to with=bob's bare JID and start=the bench's start
     time, RSM max=250 and <after>last</after> until <fin complete='true'>: (a) as alice directly
     on Prosody 55222, (b) as alice through s2proxy 56222. One warm-up round per path, then R
     rounds alternating a/b; a round's time runs from writing the first query to the last <fin/>.
     Every round must return exactly the N bodies, in order, once each (asserted);
  4. RSS (VmRSS, VmHWM) of s2proxy and Prosody, the mirror's size on disk (<data-dir>/mirror) and,
     for comparison, the size of alice's archive in Prosody's internal storage (with
     --prosody-storage sqlite: Prosody's whole SQLite database).

Exit status 0; 1 when the run failed (error, budget); 2 when a MAM answer was wrong (Problems).
"""
import argparse
import asyncio
import datetime
import json
import os
import re
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "relay"))
sys.path.insert(0, str(HERE.parent / "login"))
import s2bench  # noqa: E402  (bench/login/s2bench.py; puts tests/integration on sys.path)
from axmpp import NS_CLIENT, AXmpp, XmppError, q  # noqa: E402

DOMAIN = s2bench.DOMAIN
HOST = s2bench.HOST
ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_FWD = "urn:xmpp:forward:0"
NS_PING = "urn:xmpp:ping"
T_MESSAGE = q(NS_CLIENT, "message")
T_IQ = q(NS_CLIENT, "iq")
T_RESULT = q(NS_MAM, "result")
T_FWD = q(NS_FWD, "forwarded")
T_BODY = q(NS_CLIENT, "body")
T_FIN = q(NS_MAM, "fin")
T_DELAY = q("urn:xmpp:delay", "delay")
T_SET = q(NS_RSM, "set")
BODY_PREFIX = "mam-bench "


class BenchFailure(Exception):
    pass


def mem_kib(pid):
    """VmRSS and VmHWM of a process in KiB."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    except (OSError, TypeError):
        pass
    return {"rss_kib": out.get("VmRSS"), "hwm_kib": out.get("VmHWM"), "anon_kib": out.get("RssAnon"),
            "file_kib": out.get("RssFile")}


def tree_size(path):
    """(apparent bytes, allocated bytes, files) of a file or directory tree."""
    p = Path(path)
    files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()] if p.exists() else []
    apparent = allocated = 0
    for f in files:
        st = f.stat()
        apparent += st.st_size
        allocated += st.st_blocks * 512
    return {"apparent_bytes": apparent, "allocated_bytes": allocated, "files": [str(f) for f in files]}


def prosody_archive_size(storage):
    """alice's MAM archive in Prosody's internal storage (data/<host>/archive2/alice.* in 0.12), or the whole
    SQLite database (every account's archive: alice's and bob's copy of each message, rosters, ...)."""
    data = Path(s2bench.PROSODY_DIR, "data")
    pattern = "prosody.sqlite*" if storage == "sqlite" else "*/archive*/alice.*"
    files = [f for f in data.glob(pattern) if f.is_file()]
    apparent = sum(f.stat().st_size for f in files)
    allocated = sum(f.stat().st_blocks * 512 for f in files)
    return {"apparent_bytes": apparent, "allocated_bytes": allocated, "files": [str(f) for f in files]}


def xep82(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def mam_query(iq_id, qid, with_jid, start, page, after=None, before=None):
    fields = "<field var='FORM_TYPE' type='hidden'><value>%s</value></field>" % NS_MAM
    if with_jid:
        fields += "<field var='with'><value>%s</value></field>" % escape(with_jid)
    if start:
        fields += "<field var='start'><value>%s</value></field>" % escape(start)
    rsm = "<max>%d</max>" % page
    if after is not None:
        rsm += "<after>%s</after>" % escape(after)
    if before is not None:
        rsm += "<before>%s</before>" % escape(before) if before else "<before/>"
    return ("<iq type='set' id=%s><query xmlns='%s' queryid=%s><x xmlns='jabber:x:data' type='submit'>%s</x>"
            "<set xmlns='%s'>%s</set></query></iq>" % (quoteattr(iq_id), NS_MAM, quoteattr(qid), fields, NS_RSM, rsm))


class MamClient:
    """alice on one path (direct or proxy): an AXmpp session whose reader collects MAM results by
    queryid and resolves iq answers by id. The same code for both paths."""

    def __init__(self, name, port, cafile):
        self.name = name
        self.port = port
        self.c = AXmpp(DOMAIN, cafile, "alice-" + name)
        self.results = {}   # queryid -> [(archive id, body)]
        self.waiting = {}   # iq id -> future
        self.stray = []     # top-level elements that were neither (kept for the report, first 5)
        self.detail = False  # also keep the forwarded message's from/to and <delay stamp/> (warm-up only)

    async def login(self, resource):
        t = await self.c.login_plain(HOST, self.port, "alice", "alicepw", resource=resource)
        self.c.start_reader(self.on_element)
        return t

    def on_element(self, el):
        if el.tag == T_MESSAGE:
            r = el.find(T_RESULT)
            if r is not None:
                lst = self.results.get(r.get("queryid"))
                if lst is not None:
                    fwd = r.find(T_FWD)
                    inner = fwd.find(T_MESSAGE) if fwd is not None else None
                    body = inner.findtext(T_BODY) if inner is not None else None
                    if self.detail:
                        d = fwd.find(T_DELAY) if fwd is not None else None
                        lst.append((r.get("id"), body, d.get("stamp") if d is not None else None,
                                    inner.get("from") if inner is not None else None,
                                    inner.get("to") if inner is not None else None))
                    else:
                        lst.append((r.get("id"), body))
                    return
        elif el.tag == T_IQ:
            fut = self.waiting.pop(el.get("id"), None)
            if fut is not None:
                if not fut.done():
                    fut.set_result(el)
                return
        if len(self.stray) < 5:
            self.stray.append(ET.tostring(el).decode()[:300])

    async def query(self, with_jid, start, page, after=None, before=None, timeout=60.0):
        """One MAM page: (results [(id, body)], fin info dict)."""
        iq_id = "q-" + uuid.uuid4().hex[:10]
        qid = "m-" + uuid.uuid4().hex[:10]
        self.results[qid] = []
        fut = asyncio.get_running_loop().create_future()
        self.waiting[iq_id] = fut
        self.c.send(mam_query(iq_id, qid, with_jid, start, page, after, before))
        try:
            iq = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise BenchFailure("%s: no answer to MAM query %s within %.0f s (closed=%s)" % (
                self.name, iq_id, timeout, self.c.closed)) from None
        items = self.results.pop(qid)
        if iq.get("type") != "result":
            raise BenchFailure("%s: MAM query answered with an error: %s" % (self.name, ET.tostring(iq).decode()[:500]))
        fin = iq.find(T_FIN)
        info = {"complete": None, "first": None, "last": None, "count": None, "first_index": None}
        if fin is not None:
            info["xml"] = ET.tostring(fin).decode()
            info["complete"] = fin.get("complete") in ("true", "1")
            s = fin.find(T_SET)
            if s is not None:
                info["first"] = s.findtext(q(NS_RSM, "first"))
                fe = s.find(q(NS_RSM, "first"))
                info["first_index"] = fe.get("index") if fe is not None else None
                info["last"] = s.findtext(q(NS_RSM, "last"))
                c = s.findtext(q(NS_RSM, "count"))
                info["count"] = int(c) if c is not None and c.strip().isdigit() else None
        else:
            info["no_fin"] = True
        return items, info

    async def page_through(self, with_jid, start, page, n_expected, pids):
        """The whole filtered archive, page by page. Returns a sample dict (time, counts, checks)."""
        max_pages = n_expected // page + 20
        cpu0 = {k: s2bench.cpu_seconds(p) for k, p in pids.items()}
        ccpu0 = time.process_time()
        t0 = time.perf_counter()
        after = None
        bodies, ids, pages, problems, notes, fins = [], [], 0, [], [], []
        while True:
            items, fin = await self.query(with_jid, start, page, after=after)
            pages += 1
            before = len(bodies)
            bodies.extend(it[1] for it in items)
            ids.extend(it[0] for it in items)
            if self.detail:
                self.details.extend(items)
            fins.append({"page": pages, "after": after, "results": len(items), "fin": fin.get("xml")})
            # RSM <count/> is the size of the whole result set (XEP-0059 §2.6), <first index/> the position
            # of the page's first item in it: on every page N and the number of results before the page
            if fin["count"] is not None and fin["count"] != n_expected:
                notes.append("page %d (after %d results): <count>%d</count>, want %d" % (
                    pages, before, fin["count"], n_expected))
            if fin["first_index"] is not None and fin["first_index"] != str(before):
                notes.append("page %d (after %d results): <first index='%s'>, want %d" % (
                    pages, before, fin["first_index"], before))
            if fin.get("no_fin"):
                problems.append("page %d: iq result without <fin/>" % pages)
                break
            if items and fin["last"] != items[-1][0]:
                problems.append("page %d: fin <last> %r is not the last result's id %r" % (pages, fin["last"], items[-1][0]))
            if items and fin["first"] != items[0][0]:
                problems.append("page %d: fin <first> %r is not the first result's id %r" % (pages, fin["first"], items[0][0]))
            if fin["complete"]:
                break
            if not items or not fin["last"]:
                problems.append("page %d: incomplete page with %d results and <last> %r" % (pages, len(items), fin["last"]))
                break
            if pages >= max_pages:
                problems.append("still not complete after %d pages" % pages)
                break
            after = fin["last"]
        t1 = time.perf_counter()
        ccpu1 = time.process_time()
        cpu1 = {k: s2bench.cpu_seconds(p) for k, p in pids.items()}
        expected = [BODY_PREFIX + str(i) for i in range(n_expected)]
        if bodies != expected:
            got = set(bodies)
            missing = [b for b in expected if b not in got]
            dups = len(bodies) - len(got)
            first_diff = next((k for k, (a, b) in enumerate(zip(bodies, expected)) if a != b), None)
            problems.append("bodies differ from the %d sent: got %d (%d distinct), %d missing (e.g. %s), %d duplicates, "
                            "first difference at position %s (got %r, want %r)" % (
                                n_expected, len(bodies), len(got), len(missing), missing[:3], dups, first_diff,
                                bodies[first_diff] if first_diff is not None else None,
                                expected[first_diff] if first_diff is not None else None))
        if len(set(ids)) != len(ids):
            problems.append("%d duplicate archive ids" % (len(ids) - len(set(ids))))
        return {"path": self.name, "ms": (t1 - t0) * 1000, "results": len(bodies), "pages": pages,
                "client_cpu_ms": (ccpu1 - ccpu0) * 1000,
                "server_cpu_ms": {k: (cpu1[k] - cpu0[k]) * 1000 for k in pids}, "problems": problems,
                "rsm_notes": notes, "fins": [fins[0], fins[-1]] if len(fins) > 1 else fins}

    async def close(self):
        await self.c.close()


class LeanClient:
    """alice on one path, reading the answers as bytes: no XML parsing, so its time is (nearly) the
    server's. Per page it waits for the iq answer (found by its unique id, up to its </iq>), counts
    `<result ` openings before it and takes <last/> and complete='true' from the <fin/> with regexes.
    Used only where nothing else arrives (no presence): each page's bytes are the results, then the iq."""

    RE_LAST = re.compile(rb"<last>([^<]*)</last>")
    RE_COMPLETE = re.compile(rb"complete=['\"](?:true|1)['\"]")
    RE_ERROR = re.compile(rb"type=['\"]error['\"]")

    def __init__(self, name, port, cafile):
        self.name = name
        self.port = port
        self.c = AXmpp(DOMAIN, cafile, "alice-lean-" + name)
        self.buf = bytearray()

    async def login(self, resource):
        t = await self.c.login_plain(HOST, self.port, "alice", "alicepw", resource=resource)
        if self.c.pending:
            raise BenchFailure("%s: unexpected elements after bind: %d" % (self.name, len(self.c.pending)))
        return t

    async def page(self, with_jid, start, page, after, timeout=60.0):
        iq_id = "q-" + uuid.uuid4().hex[:10]
        self.c.send(mam_query(iq_id, "m-" + uuid.uuid4().hex[:10], with_jid, start, page, after))
        marker = iq_id.encode()
        end_t = time.monotonic() + timeout
        scanned = 0
        while True:
            pos = self.buf.find(marker, max(0, scanned - len(marker)))
            if pos >= 0:
                end = self.buf.find(b"</iq>", pos)
                if end >= 0:
                    break
            scanned = len(self.buf)
            try:
                data = await asyncio.wait_for(self.c.reader.read(262144), max(0.01, end_t - time.monotonic()))
            except asyncio.TimeoutError:
                raise BenchFailure("%s (lean): no answer to MAM query %s within %.0f s" % (self.name, iq_id, timeout)) from None
            if not data:
                raise BenchFailure("%s (lean): connection closed" % self.name)
            self.buf += data
        head = bytes(self.buf[:pos])
        tail = bytes(self.buf[pos:end + 5])
        del self.buf[:end + 5]
        if self.RE_ERROR.search(tail[:200]):
            raise BenchFailure("%s (lean): MAM query answered with an error: %s" % (self.name, tail[:500]))
        m = self.RE_LAST.search(tail)
        return head.count(b"<result "), (m.group(1).decode() if m else None), bool(self.RE_COMPLETE.search(tail))

    async def page_through(self, with_jid, start, page, n_expected, pids):
        max_pages = n_expected // page + 20
        cpu0 = {k: s2bench.cpu_seconds(p) for k, p in pids.items()}
        ccpu0 = time.process_time()
        t0 = time.perf_counter()
        after, results, pages, problems = None, 0, 0, []
        while True:
            n, last, complete = await self.page(with_jid, start, page, after)
            pages += 1
            results += n
            if complete:
                break
            if not n or not last:
                problems.append("page %d: incomplete page with %d results and <last> %r" % (pages, n, last))
                break
            if pages >= max_pages:
                problems.append("still not complete after %d pages" % pages)
                break
            after = last
        t1 = time.perf_counter()
        ccpu1 = time.process_time()
        cpu1 = {k: s2bench.cpu_seconds(p) for k, p in pids.items()}
        if results != n_expected:
            problems.append("%d results, want %d" % (results, n_expected))
        return {"path": self.name, "ms": (t1 - t0) * 1000, "results": results, "pages": pages,
                "client_cpu_ms": (ccpu1 - ccpu0) * 1000,
                "server_cpu_ms": {k: (cpu1[k] - cpu0[k]) * 1000 for k in pids}, "problems": problems,
                "rsm_notes": []}

    async def close(self):
        await self.c.close()


class Bob:
    """bob straight on Prosody: sends the messages, answers nothing, resolves his pings."""

    def __init__(self, env):
        self.c = AXmpp(DOMAIN, env.prosody_ca, "bob")
        self.waiting = {}

    def on_element(self, el):
        if el.tag == T_IQ:
            fut = self.waiting.pop(el.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(el)

    def ping(self, to=DOMAIN):
        iq_id = "p-" + uuid.uuid4().hex[:10]
        fut = asyncio.get_running_loop().create_future()
        self.waiting[iq_id] = fut
        self.c.send("<iq type='get' id=%s to=%s><ping xmlns='%s'/></iq>" % (quoteattr(iq_id), quoteattr(to), NS_PING))
        return fut

    async def send_all(self, n, batch=250):
        tag = uuid.uuid4().hex[:6]
        inflight = []
        for k in range(0, n, batch):
            self.c.send("".join(
                "<message to='%s' type='chat' id='%s-%d'><body>%s%d</body></message>" % (ALICE, tag, i, BODY_PREFIX, i)
                for i in range(k, min(k + batch, n))))
            inflight.append(self.ping())
            await self.c.drain()
            if len(inflight) >= 2:  # at most two batches in flight
                await asyncio.wait_for(inflight.pop(0), 60)
        for f in inflight:
            await asyncio.wait_for(f, 60)


def parse_stamp(st):
    """XEP-0082 date-time (optional fraction, Z or ±hh:mm) -> epoch seconds, or None."""
    if not st:
        return None
    try:
        return datetime.datetime.fromisoformat(st.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def compare_details(direct, proxy):
    """The same N messages on both paths: forwarded from/to identical, <delay stamp/> close."""
    problems, deltas, mism = [], [], []
    if len(direct) != len(proxy):
        problems.append("compare: %d results direct, %d via the proxy" % (len(direct), len(proxy)))
    no_stamp = {"direct": 0, "proxy": 0}
    for d, p in zip(direct, proxy):
        if d[1] != p[1]:
            mism.append("body %r vs %r" % (d[1], p[1]))
            continue
        if (d[3], d[4]) != (p[3], p[4]):
            mism.append("%s: from/to %s/%s direct, %s/%s via the proxy" % (d[1], d[3], d[4], p[3], p[4]))
        sd, sp = parse_stamp(d[2]), parse_stamp(p[2])
        no_stamp["direct"] += sd is None
        no_stamp["proxy"] += sp is None
        if sd is not None and sp is not None:
            deltas.append(sp - sd)
    if mism:
        problems.append("compare: %d results differ, e.g. %s" % (len(mism), mism[:3]))
    if no_stamp["proxy"] or no_stamp["direct"]:
        problems.append("compare: results without a parsable <delay stamp/>: %s" % no_stamp)
    if deltas and max(abs(x) for x in deltas) > 5.0:  # Prosody stamps whole seconds, the proxy its own receipt
        problems.append("compare: <delay stamp/> via the proxy differs from Prosody's by up to %.3f s" %
                        max(deltas, key=abs))
    return {"n": min(len(direct), len(proxy)), "problems": problems,
            "stamp_delta_s": {"min": min(deltas), "max": max(deltas), "median": s2bench.median(deltas)} if deltas else None,
            "sample": {"direct": list(direct[:1]), "proxy": list(proxy[:1])}}


async def wait_for_log(env, needle, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if needle in env.proxy.log_text():
            return True
        await asyncio.sleep(0.05)
    return False


async def last_body(client, page=1):
    items, fin = await client.query(BOB, None, page, before="")
    return (items[-1][1] if items else None), fin


async def bench(env, args, out):
    pids = {"proxy": env.proxy_pid(), "prosody": env.prosody_pid()}
    start_ts = int(time.time()) - 1  # whole seconds: XEP-0082 without fractions; Prosody is freshly wiped
    out["start"] = xep82(start_ts)

    # ---- 1. alice through the proxy once: vault + anchor ----------------------------------------------------
    setup = AXmpp(DOMAIN, env.proxy_ca, "alice-setup")
    await setup.login_plain(HOST, s2bench.PROXY_PORT, "alice", "alicepw", resource="setup")
    await setup.close()
    if not await wait_for_log(env, "anchor.ready", 20):
        raise BenchFailure("no anchor.ready in the proxy log 20 s after alice's PLAIN login:\n" + env.proxy.log_tail(30))
    await asyncio.sleep(0.5)  # the anchor's (empty) upstream catch-up
    out["memory"] = {"after_anchor": {"proxy": mem_kib(pids["proxy"]), "prosody": mem_kib(pids["prosody"])}}

    # alice's two catch-up sessions (no presence: bare-JID messages keep going to the anchor only)
    direct = MamClient("direct", s2bench.PROSODY_C2S, env.prosody_ca)
    proxy = MamClient("proxy", s2bench.PROXY_PORT, env.proxy_ca)
    lean = {"direct": LeanClient("direct", s2bench.PROSODY_C2S, env.prosody_ca),
            "proxy": LeanClient("proxy", s2bench.PROXY_PORT, env.proxy_ca)}
    out["login_s"] = {"direct": await direct.login("catchup-direct"), "proxy": await proxy.login("catchup-proxy")}
    for path, c in lean.items():
        await c.login("lean-" + path)

    # ---- 2. bob sends N to alice's bare JID ------------------------------------------------------------------
    bob = Bob(env)
    await bob.c.login_plain(HOST, s2bench.PROSODY_C2S, "bob", "bobpw", resource="sender")
    bob.c.start_reader(bob.on_element)
    cpu0 = {k: s2bench.cpu_seconds(p) for k, p in pids.items()}
    t0 = time.perf_counter()
    await bob.send_all(args.n)
    t_sent = time.perf_counter()
    out["send"] = {"n": args.n, "seconds": t_sent - t0, "msgs_per_s": args.n / (t_sent - t0)}

    want = BODY_PREFIX + str(args.n - 1)
    polls, last = 0, None
    end = time.monotonic() + args.mirror_timeout
    while time.monotonic() < end:
        polls += 1
        last, _ = await last_body(proxy)
        if last == want:
            break
        await asyncio.sleep(0.1)
    t_mirrored = time.perf_counter()
    cpu1 = {k: s2bench.cpu_seconds(p) for k, p in pids.items()}
    if last != want:
        raise BenchFailure("the mirror did not get %r within %.0f s after the last send: its last body with bob is %r"
                           % (want, args.mirror_timeout, last))
    dlast, _ = await last_body(direct)
    if dlast != want:
        raise BenchFailure("Prosody's archive ends with %r, want %r" % (dlast, want))
    out["ingest"] = {"mirror_lag_s": t_mirrored - t_sent, "polls": polls, "all_mirrored_s": t_mirrored - t0,
                     "cpu_ms": {k: (cpu1[k] - cpu0[k]) * 1000 for k in pids}}
    await bob.c.close()
    await asyncio.sleep(1.0)
    out["memory"]["after_ingest"] = {"proxy": mem_kib(pids["proxy"]), "prosody": mem_kib(pids["prosody"])}
    out["mirror_size"] = tree_size(Path(env.proxy.data_dir, "mirror"))
    out["prosody_archive_size"] = prosody_archive_size(args.prosody_storage)

    # ---- 3. page-through, warm-up then R rounds, alternating ----------------------------------------------------
    clients = {"parse": {"direct": direct, "proxy": proxy}, "lean": lean}
    samples = {mode: {"direct": [], "proxy": []} for mode in clients}
    warmup = {mode: {} for mode in clients}
    order = ("direct", "proxy")
    for rnd in range(args.warmup + args.rounds):
        for c in clients["parse"].values():  # the first warm-up round also keeps from/to/stamp for compare_details
            c.detail, c.details = rnd == 0 and args.warmup > 0, []
        for mode in clients:
            for path in (order if rnd % 2 == 0 else order[::-1]):
                s = await clients[mode][path].page_through(BOB, out["start"], args.page, args.n, pids)
                s["round"] = rnd
                if rnd < args.warmup:
                    warmup[mode].setdefault(path, []).append(s)
                else:
                    samples[mode][path].append(s)
                if s["problems"]:
                    out.setdefault("problems", []).extend(
                        "%s/%s round %d: %s" % (mode, path, rnd, p) for p in s["problems"])
                if s["rsm_notes"] and path not in out.setdefault("rsm_notes", {}):
                    out["rsm_notes"][path] = s["rsm_notes"]
        if rnd == 0 and args.warmup > 0:
            out["compare"] = compare_details(direct.details, proxy.details)
            out.setdefault("problems", []).extend(out["compare"]["problems"])
    out["warmup"] = warmup
    out["samples"] = samples
    out["stray"] = {k: c.stray for k, c in clients["parse"].items() if c.stray}
    out["memory"]["after_catchup"] = {"proxy": mem_kib(pids["proxy"]), "prosody": mem_kib(pids["prosody"])}
    for group in clients.values():
        for c in group.values():
            await c.close()


# =====================================================================================================
def report(out, args):
    med = s2bench.median
    lines = ["### Catch-up of %d messages: s2proxy's mirror vs Prosody's MAM (loopback, %d cores)\n" % (
        args.n, os.cpu_count()),
             "Binary: %s. Load average (1/5/15 min) at start %s, at end %s.\n" % (
                 s2bench.binary_line(out["binary"]), "/".join(out["machine"].get("loadavg_start", ["?"])),
                 "/".join(out.get("loadavg_end", ["?"])))]
    snd, ing = out["send"], out["ingest"]
    lines.append("bob sent %d messages to alice's bare JID in %.1f s (%.0f msgs/s, Prosody-bound); the mirror had the "
                 "last one ≤ %.2f s after the last send was answered (%d polls); CPU during send + mirroring: s2proxy %.0f ms "
                 "(%.0f µs/msg), Prosody %.0f ms.\n" % (
                     snd["n"], snd["seconds"], snd["msgs_per_s"], ing["mirror_lag_s"], ing["polls"],
                     ing["cpu_ms"]["proxy"], 1000 * ing["cpu_ms"]["proxy"] / snd["n"], ing["cpu_ms"]["prosody"]))
    rows = []
    labels = {"direct": "(a) alice → Prosody 55222, Prosody's MAM (%s storage)" % args.prosody_storage,
              "proxy": "(b) alice → s2proxy 56222, the mirror (LMDB)"}
    client_labels = {"parse": "parse (ElementTree)", "lean": "bytes only"}
    speed = {}
    for mode in ("parse", "lean"):
        s = out["samples"][mode]
        for path in ("direct", "proxy"):
            v = [x["ms"] for x in s[path]]
            w = out["warmup"][mode].get(path, [])
            srv = "prosody" if path == "direct" else "proxy"
            rows.append([labels[path], client_labels[mode],
                         "%d / %d" % (s[path][0]["results"], s[path][0]["pages"]) if s[path] else "-",
                         "%.0f" % w[0]["ms"] if w else "-",
                         "%.0f" % med(v), "%.0f" % min(v), "%.0f" % max(v),
                         "%.0f" % med([x["server_cpu_ms"][srv] for x in s[path]]),
                         "%.0f" % med([x["client_cpu_ms"] for x in s[path]])])
        dm, pm = med([x["ms"] for x in s["direct"]]), med([x["ms"] for x in s["proxy"]])
        dmin, pmin = min(x["ms"] for x in s["direct"]), min(x["ms"] for x in s["proxy"])
        speed[mode] = {"median": dm / pm, "min": dmin / pmin}
    out["speedup"] = speed
    lines.append("Full page-through of alice's archive with=bob, start=run start, RSM max=%d + <after>, until "
                 "<fin complete='true'/>; the same asyncio client code on both paths, in two variants: *parse* reads "
                 "every result with ElementTree (checks bodies, order, ids: what a client does), *bytes only* counts "
                 "`<result ` and takes <last/> by regex (the servers' time, nearly); one warm-up round each, then %d "
                 "rounds alternating (ms, from the first query written to the last <fin/> read; CPU in 10 ms ticks):\n"
                 % (args.page, args.rounds))
    lines.append(s2bench.md_table(["path", "client", "results / pages", "warm-up", "median", "min", "max",
                                   "server CPU ms (median)", "client CPU ms (median)"], rows,
                                  align=["l", "l"] + ["r"] * 7))
    lines.append("\nSpeed-up through the mirror (issue target ≥ 10×): parsing client **%.1f×** at the median "
                 "(%.1f× at the min): %s; bytes-only client **%.1f×** (%.1f×): %s.\n" % (
                     speed["parse"]["median"], speed["parse"]["min"],
                     "met" if speed["parse"]["median"] >= 10 else "**not met**",
                     speed["lean"]["median"], speed["lean"]["min"],
                     "met" if speed["lean"]["median"] >= 10 else "**not met**"))
    m = out["memory"]

    def mib(k):
        return "%.1f" % (k / 1024.0) if k else "?"

    def cell(x):
        return "%s (%s + %s)" % (mib(x["rss_kib"]), mib(x["anon_kib"]), mib(x["file_kib"]))

    rows = []
    for proc, label in (("proxy", "s2proxy"), ("prosody", "Prosody 0.12")):
        rows.append([label, cell(out["idle"][proc]), cell(m["after_anchor"][proc]), cell(m["after_ingest"][proc]),
                     cell(m["after_catchup"][proc]), mib(m["after_catchup"][proc]["hwm_kib"])])
    lines.append("RSS (MiB, VmRSS = anonymous + file-backed; s2proxy's file-backed part includes the mirror's LMDB map "
                 "pages it touched; peak = VmHWM at the end):\n")
    lines.append(s2bench.md_table(["process", "idle", "anchor up", "after %d msgs mirrored" % args.n,
                                   "after the catch-ups", "peak"], rows))
    ms, ps = out["mirror_size"], out["prosody_archive_size"]
    lines.append("\nOn disk: the mirror (`<data-dir>/mirror`, LMDB, all of it) %.1f MiB allocated (%.1f MiB apparent), "
                 "%.0f bytes/message; %s %.1f MiB (%.0f bytes/message)." % (
                     ms["allocated_bytes"] / 1048576, ms["apparent_bytes"] / 1048576, ms["allocated_bytes"] / args.n,
                     "Prosody's SQLite database (alice's and bob's archives and the rest)" if args.prosody_storage == "sqlite"
                     else "alice's archive in Prosody's internal storage",
                     ps["apparent_bytes"] / 1048576, ps["apparent_bytes"] / args.n))
    for path, notes in sorted(out.get("rsm_notes", {}).items()):
        lines.append("\nRSM counters (not checked against the target, first round): %s: %s%s" % (
            path, "; ".join(notes[:4]), " (+%d more)" % (len(notes) - 4) if len(notes) > 4 else ""))
    cmp = out.get("compare")
    if cmp and cmp.get("stamp_delta_s"):
        lines.append("\nThe warm-up round's %d results compared path against path: same bodies in the same order, "
                     "forwarded from/to %s, <delay stamp/> proxy − Prosody %+.3f … %+.3f s (median %+.3f)." % (
                         cmp["n"], "identical" if not any("from/to" in p or "differ" in p for p in cmp["problems"])
                         else "**different**", cmp["stamp_delta_s"]["min"], cmp["stamp_delta_s"]["max"],
                         cmp["stamp_delta_s"]["median"]))
    if out.get("problems"):
        lines.append("\n**Problems:**\n" + "\n".join("* " + p for p in out["problems"][:20]))
    lines.append("\n_run took %.0f s_" % out["elapsed_s"])
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=10000, help="messages bob sends to alice (default 10000)")
    ap.add_argument("-r", "--rounds", type=int, default=5, help="measured page-throughs per path (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured page-throughs per path first (default 1)")
    ap.add_argument("--page", type=int, default=250, help="RSM <max/> (default 250 = both servers' largest page)")
    ap.add_argument("--mirror-timeout", type=float, default=120.0,
                    help="seconds to wait for the mirror after the last send (default 120)")
    ap.add_argument("--prosody-storage", choices=("internal", "sqlite"), default="internal",
                    help="Prosody's storage backend (test bed TB_PROSODY_STORAGE; sqlite needs lua-dbi-sqlite3, "
                         "which the test bed script installs); default internal, the test bed's default")
    ap.add_argument("--binary", default=str(s2bench.DEFAULT_BINARY))
    ap.add_argument("--json", help="write raw samples and summaries here")
    ap.add_argument("--budget", type=int, default=300, help="hard time limit in seconds (default 300)")
    args = ap.parse_args()

    s2bench.install_deadline(args.budget)
    t_start = time.monotonic()
    os.environ["TB_PROSODY_STORAGE"] = args.prosody_storage  # harness.Upstream.env() copies os.environ
    env = s2bench.BenchEnv(args.binary)
    out = {"bench": "mam", "machine": s2bench.machine_info(), "binary": s2bench.binary_info(args.binary),
           "args": vars(args)}
    rc = 1
    try:
        env.start()
        time.sleep(1.0)
        out["idle"] = {"proxy": mem_kib(env.proxy_pid()), "prosody": mem_kib(env.prosody_pid())}
        asyncio.run(bench(env, args, out))
        out["elapsed_s"] = time.monotonic() - t_start
        try:
            out["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        except OSError:
            pass
        print(report(out, args))
        rc = 0 if not out.get("problems") else 2
        if rc:
            print("bench failed: the MAM answers were wrong (see Problems)", file=sys.stderr)
        return rc
    except (BenchFailure, XmppError, AssertionError, OSError, asyncio.TimeoutError, s2bench.Deadline) as e:
        print("bench failed: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        if env.proxy is not None:
            print(env.proxy.log_tail(30), file=sys.stderr)
        out["error"] = "%s: %s" % (type(e).__name__, e)
        return 1
    finally:
        s2bench.cancel_deadline()
        out.setdefault("elapsed_s", time.monotonic() - t_start)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
        env.stop()


if __name__ == "__main__":
    sys.exit(main())
