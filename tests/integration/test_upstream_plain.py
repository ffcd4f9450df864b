"""`--upstream-tls plain` to a Prosody on loopback (docs/architecture.md §25).

When the upstream runs on the same machine, TLS on the proxy's upstream leg protects nothing a
network could see, and costs a TLS session per device link on both sides (memory) and a handshake
per upstream login (CPU). The mode is accepted only for a loopback upstream. Here a second,
private Prosody that allows unencrypted c2s runs beside the suite's own; alice logs in through the
proxy, bob directly with STARTTLS, and messages go both ways with the mirror's archive ids; the
upstream's log shows that the proxy's sessions were not encrypted and bob's was. check-config
refuses the mode for an upstream that is not loopback.
"""
import re
import subprocess
import uuid
from pathlib import Path

import pytest

import harness
from harness import EXTRA_PORT_BASE, ProxyProc, Upstream
from test_history import collect, connect, mam_all, text_of, wait_anchor, wait_until
from xmppclient import msg_xml, run_async

PLAIN_C2S = 35240 + 2000 * harness.SLOT


@pytest.fixture(scope="module")
def plain_prosody(mode, upstream):
    if mode == "direct":
        pytest.skip("starts s2proxy instances (nothing to do with S2_TARGET=direct)")
    if upstream.kind != "prosody":
        pytest.skip("a second Prosody: runs in the Prosody pass only")
    spec = dict(harness.UPSTREAMS["prosody"])
    base_env = spec["env"]
    spec["env"] = lambda u: dict(base_env(u), TB_PROSODY_PLAINTEXT="1")
    u = Upstream(kind="prosody", domain=spec["domain"], c2s=PLAIN_C2S, c2s_tls=PLAIN_C2S + 1,
                 dir="/tmp/s2it-prosody-plain" + harness._SUFFIX, spec=spec)
    u.start()
    yield u
    u.stop()


def sessions(logfile):
    """Prosody's c2s sessions in its log: {session id: (authenticated account, encrypted)}."""
    out = {}
    for line in Path(logfile).read_text(errors="replace").splitlines():
        m = re.search(r"\s(c2s[0-9a-f]+)\s+info\s+(.*)$", line)
        if not m:
            continue
        sid, what = m.groups()
        acct, enc = out.get(sid, (None, False))
        if what.startswith("Stream encrypted"):
            enc = True
        a = re.match(r"Authenticated as (\S+)", what)
        if a:
            acct = a.group(1)
        out[sid] = (acct, enc)
    return out


def test_plain_upstream_on_loopback_carries_the_account(plain_prosody, proxy_bin):
    port = EXTRA_PORT_BASE + 196  # the factory's ports count up from the base; test_cli's + 99
    p = ProxyProc(proxy_bin, "upstream-plain-%d" % port, plain_prosody, port, port + 1,
                  opts={"upstream-tls": "plain", "upstream-ca": None, "anchor-resource": "s2proxy-%d" % port})
    p.start()
    try:
        t = p.target()

        async def body(pool):
            run = uuid.uuid4().hex[:6]
            prefix = "plain-%s-" % run
            a = await connect(pool, t, "alice", "pl-" + run)
            await wait_anchor(p)
            bob = await connect(pool, plain_prosody.as_target(), "bob", "pl-" + run)
            texts = ["%s%02d" % (prefix, i) for i in range(10)]
            for text in texts:
                bob.send_xml(msg_xml(a.bare, text))
            await wait_until(lambda: len(collect([a], prefix, a.bare)) >= len(texts), 10, "bob's messages")
            seen = collect([a], prefix, a.bare)
            assert [x[0] for x in seen] == texts and all(x[1] for x in seen), seen
            a.send_xml(msg_xml(bob.bare, prefix + "back"))
            await wait_until(lambda: any(text_of(el) == prefix + "back" for _, kind, el in bob.stanzas
                                         if kind == "message"), 10, "alice's message at bob")
            items = await mam_all(a, with_jid=bob.bare)
            mine = [text_of(m) for _, m in items if (text_of(m) or "").startswith(prefix)]
            assert mine == texts + [prefix + "back"], mine

        run_async(body, 60)
        s = sessions(plain_prosody.logfile)
        alice = [enc for acct, enc in s.values() if acct and acct.startswith("alice@")]
        bob = [enc for acct, enc in s.values() if acct and acct.startswith("bob@")]
        assert alice and not any(alice), "the proxy's upstream sessions are plaintext: %s" % s
        assert bob and all(bob), "bob's direct session used STARTTLS: %s" % s
    finally:
        p.stop()
        p.cleanup()


@pytest.mark.parametrize("upstream_addr", ["10.1.2.3:5222", "xmpp.example:5222", "[2001:db8::1]:5222"])
def test_plain_upstream_refused_across_a_network(plain_prosody, proxy_bin, tmp_path, upstream_addr):
    r = subprocess.run([proxy_bin, "check-config", "--domain", "legacy.test", "--upstream", upstream_addr,
                        "--upstream-tls", "plain", "--data-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=10)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "--upstream-tls" in out and "loopback" in out, out
