"""What a phone sees: pushes per message burst and wake-ups of an idle chat, s2proxy vs Prosody alone.

The same scripted traffic is played twice: once with alice's phone connected directly to Prosody 0.12
(its own mod_csi_simple + mod_cloud_notify + mod_smacks, as the test bed configures them), once with
the phone behind s2proxy (the proxy's CSI and push; the upstream's modules never see the phone's
registration). bob is the XEP-0357 app server (a real client answering publishes); carol and bob
are the contacts, connected directly to Prosody.

(1) Push. The phone registers push, enables SM, and its TCP is cut (hibernation). carol then sends,
    phase by phase with 4 s of silence between phases: 1 message; a burst of 3; one chat state; a
    burst of 10 (100 ms apart); bob's presence change. Counted: publishes the app server gets per
    phase.
(2) CSI, one "hour" of an idle chat compressed into 60 s: the phone is connected and <inactive/>;
    bob (subscribed) changes presence every 2 s (30 changes), sends 6 composing/paused pairs and,
    at 45 s, one message. Counted: stanzas the phone's socket got while inactive, radio wake-ups
    (bursts of arrivals more than 1 s apart), and the message's latency.

Run (Debian's python3; ~2 min; Prosody on 55222, s2proxy on 56222):
  /usr/bin/python3 bench/urgency/bench_urgency.py [--json out.json]
"""
import argparse
import asyncio
import json
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "login"))
import s2bench  # noqa: E402  (sets up the harness import path)

from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import MatchXPath  # noqa: E402
from xmppclient import NS_ROSTER, Client, msg_xml  # noqa: E402

NS_PUSH = "urn:xmpp:push:0"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_XDATA = "jabber:x:data"
NS_CSI = "urn:xmpp:csi:0"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
GAP_S = 4.0
WAKE_GAP_S = 1.0


async def connect(target, user, resource, sm=False, clients=None):
    c = Client(target, user, resource)
    if sm:
        c.x.register_plugin("xep_0198")
    await c.connect()
    if clients is not None:
        clients.append(c)
    return c


async def app_server(target, run, clients):
    bob = await connect(target, "bob", "pushapp-" + run, clients=clients)
    bob.publishes = []

    def on_publish(iq):
        bob.publishes.append(time.monotonic())
        iq.reply(clear=True).send()

    bob.x.register_handler(Callback("app", MatchXPath("{jabber:client}iq/{%s}pubsub" % NS_PUBSUB), on_publish))
    return bob


def enable_xml(app_jid, node):
    return ("<enable xmlns='%s' jid='%s' node='%s'><x xmlns='%s' type='submit'>"
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
            "<field var='secret'><value>s</value></field></x></enable>" % (NS_PUSH, app_jid, node, NS_XDATA))


async def subscribe(alice, bob):
    for c in (alice, bob):
        await c.iq("<query xmlns='%s'/>" % NS_ROSTER, itype="get")
    alice.send_xml("<presence xmlns='jabber:client' to='%s' type='subscribe'/>" % bob.bare)
    # A new subscription is answered with `subscribed`; an existing one shows as bob's presence.
    await alice.wait_presence(lambda el: el.get("type") in ("subscribed", None) and
                              (el.get("from") or "").split("/")[0] == bob.bare, 10, what="bob's presence")


async def close_all(clients):
    for c in clients:
        try:
            c.abort()
        except Exception:  # noqa: BLE001 - best effort at the end of a run
            pass


async def push_run(phone_target, upstream_target, label):
    run = uuid.uuid4().hex[:6]
    clients = []
    try:
        app = await app_server(upstream_target, run, clients)
        phone = await connect(phone_target, "alice", "phone-" + run, sm=True, clients=clients)
        res = await phone.iq(enable_xml(app.full_jid, "node-" + run), itype="set")
        assert res.get("type") == "result", "push enable refused (%s): %s" % (label, ET.tostring(res)[:400])
        carol = await connect(upstream_target, "carol", "c-" + run, clients=clients)
        bob = await connect(upstream_target, "bob", "b-" + run, clients=clients)
        await asyncio.sleep(1.0)  # SM enabled, the anchor (proxy) ready
        phone.abort()
        await asyncio.sleep(2.0)  # the server notices the cut and hibernates the session

        phases = []

        async def phase(name, send):
            t0 = time.monotonic()
            await send()
            await asyncio.sleep(GAP_S)
            phases.append((name, sum(1 for t in app.publishes if t >= t0)))

        async def one():
            carol.send_xml(msg_xml(phone.bare, "one " + run))

        async def burst(n, pause=0.0):
            async def f():
                for i in range(n):
                    carol.send_xml(msg_xml(phone.bare, "burst %d %s" % (i, run)))
                    if pause:
                        await asyncio.sleep(pause)
            return f

        async def state():
            carol.send_xml(msg_xml(phone.bare, None, extra="<composing xmlns='%s'/>" % NS_CHATSTATES))

        async def presence():
            bob.send_xml("<presence xmlns='jabber:client'><show>away</show></presence>")

        await phase("1 message", one)
        await phase("burst of 3", await burst(3))
        await phase("1 chat state", state)
        await phase("burst of 10 (100 ms apart)", await burst(10, 0.1))
        await phase("presence change", presence)
        return {"phases": phases, "total": len(app.publishes)}
    finally:
        await close_all(clients)


async def csi_run(phone_target, upstream_target, label, seconds=60):
    run = uuid.uuid4().hex[:6]
    clients = []
    try:
        phone = await connect(phone_target, "alice", "idle-" + run, clients=clients)
        bob = await connect(upstream_target, "bob", "idle-" + run, clients=clients)
        await subscribe(phone, bob)
        await asyncio.sleep(1.0)
        phone.send_xml("<inactive xmlns='%s'/>" % NS_CSI)
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        msg_at = None
        text = "the one message " + run
        for tick in range(seconds):
            if tick % 2 == 0:
                bob.send_xml("<presence xmlns='jabber:client'><show>%s</show><status>%d</status></presence>" % (
                    "away" if tick % 4 else "xa", tick))
            if tick % 10 == 5:
                bob.send_xml(msg_xml(phone.bare, None, extra="<composing xmlns='%s'/>" % NS_CHATSTATES))
            if tick % 10 == 7:
                bob.send_xml(msg_xml(phone.bare, None, extra="<paused xmlns='%s'/>" % NS_CHATSTATES))
            if tick == 45:
                msg_at = time.monotonic()
                bob.send_xml(msg_xml(phone.bare, text))
            await asyncio.sleep(1.0)
        arrivals = [(t, k, el) for t, k, el in phone.stanzas if t >= t0 and k in ("message", "presence")]
        times = [t for t, _, _ in arrivals]
        wakeups = 0
        last = None
        for t in times:
            if last is None or t - last > WAKE_GAP_S:
                wakeups += 1
            last = t
        before_msg = sum(1 for t in times if msg_at and t < msg_at)
        body_at = next((t for t, k, el in arrivals if k == "message" and text in (el.findtext("{jabber:client}body") or "")), None)
        return {"stanzas": len(arrivals), "presence": sum(1 for _, k, _ in arrivals if k == "presence"),
                "chat_states": sum(1 for _, k, el in arrivals if k == "message" and (
                    el.find("{%s}composing" % NS_CHATSTATES) is not None or
                    el.find("{%s}paused" % NS_CHATSTATES) is not None)),
                "wakeups": wakeups, "delivered_before_message": before_msg,
                "message_latency_ms": round((body_at - msg_at) * 1000, 1) if body_at and msg_at else None}
    finally:
        await close_all(clients)


def report(out):
    lines = ["## Push (phone's TCP cut, SM hibernation)", ""]
    direct, proxy = out["push"]["direct"]["phases"], out["push"]["proxy"]["phases"]
    rows = [[name, str(d), str(p)] for (name, d), (_, p) in zip(direct, proxy)]
    rows.append(["total", str(out["push"]["direct"]["total"]), str(out["push"]["proxy"]["total"])])
    lines.append(s2bench.md_table(["traffic", "Prosody 0.12 (mod_cloud_notify)", "s2proxy"], rows))
    lines += ["", "## CSI: one compressed hour of an idle chat (phone inactive)", ""]
    d, p = out["csi"]["direct"], out["csi"]["proxy"]
    keys = [("stanzas", "stanzas received"), ("presence", "of which presence"), ("chat_states", "of which chat states"),
            ("wakeups", "radio wake-ups (bursts > 1 s apart)"),
            ("message_latency_ms", "the message's latency, ms")]
    lines.append(s2bench.md_table(["", "Prosody 0.12 (mod_csi_simple)", "s2proxy"],
                                  [[label, str(d[k]), str(p[k])] for k, label in keys]))
    return "\n".join(lines)


async def bench(env, out, seconds):
    up = env.upstream.as_target(name="direct")
    px = env.proxy.target("proxy")
    # Direct first: once alice is known to the proxy its anchor is logged in upstream too.
    out["push"] = {"direct": await push_run(up, up, "direct"), "proxy": await push_run(px, up, "proxy")}
    out["csi"] = {"direct": await csi_run(up, up, "direct", seconds), "proxy": await csi_run(px, up, "proxy", seconds)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=str(s2bench.DEFAULT_BINARY))
    ap.add_argument("--seconds", type=int, default=60, help="length of the compressed idle hour (default 60)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--budget", type=int, default=400)
    args = ap.parse_args()
    s2bench.install_deadline(args.budget)
    env = s2bench.BenchEnv(args.binary)
    out = {"bench": "urgency", "machine": s2bench.machine_info(), "binary": s2bench.binary_info(args.binary)}
    try:
        env.start()
        asyncio.run(bench(env, out, args.seconds))
        print(report(out))
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
        return 0
    except (AssertionError, OSError, asyncio.TimeoutError) as e:
        print("bench failed: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        if env.proxy is not None:
            print(env.proxy.log_tail(30), file=sys.stderr)
        return 1
    finally:
        s2bench.cancel_deadline()
        env.stop()


if __name__ == "__main__":
    sys.exit(main())
