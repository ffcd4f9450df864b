"""Real clients other than slixmpp through the proxy: go-sendxmpp (Debian go-sendxmpp 0.5.6)."""
import asyncio
import shutil
import uuid

import pytest

from xmppclient import has_body, run_async, short

GO_SENDXMPP = shutil.which("go-sendxmpp")


async def run_cmd(argv, stdin, timeout):
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("%s did not finish within %ss" % (argv[0], timeout)) from None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


@pytest.mark.skipif(GO_SENDXMPP is None, reason="go-sendxmpp not installed (apt-get install go-sendxmpp)")
@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
def test_go_sendxmpp_message(target, upstream_target, direct_tls):
    async def body(pool):
        bob = await pool.connect(upstream_target, "bob", "gosend")
        text = "hi from go-sendxmpp %s" % uuid.uuid4().hex[:8]
        port = target.tls_port if direct_tls else target.starttls_port
        argv = [GO_SENDXMPP, "-u", "alice@%s" % target.domain, "-p", "alicepw", "-j", "%s:%d" % (target.host, port),
                "-n", "--timeout", "10"] + (["-t"] if direct_tls else []) + [bob.bare]
        rc, out, err = await run_cmd(argv, text + "\n", 30)
        assert rc == 0, "go-sendxmpp failed (rc=%d):\nstdout: %s\nstderr: %s" % (rc, out, err)
        el = await bob.wait_msg(lambda el: (has_body(text)(el) or has_body(text + "\n")(el)), 10,
                                what="go-sendxmpp's message")
        assert (el.get("from") or "").startswith("alice@%s/" % target.domain), short(el)

    run_async(body, 60)


def test_terminal_clients_through_proxy(target, mode):
    """The test bed's five real clients (sendxmpp, go-sendxmpp, profanity, poezio, mcabber — each with
    its own XMPP library) send bob a message through the proxy; the script installs what it needs."""
    import subprocess

    from harness import TESTBED
    from rawxmpp import RawXMPP

    # The script's receiver (slixmpp) treats a failed SCRAM attempt as fatal instead of falling
    # back to PLAIN as slixmpp itself does; a first PLAIN login puts bob in the proxy's vault.
    if mode != "direct":
        with RawXMPP.connect(target.host, target.starttls_port, target.domain) as c:
            c.login("bob", "bobpw", "vault-warmup")
    script = TESTBED / "clients" / "check_clients.sh"
    r = subprocess.run([str(script), "--port", str(target.starttls_port), "--domain", target.domain],
                       capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "5 passed, 0 failed" in out, out[-3000:]
