"""SIGTERM with clients connected: every open stream is closed with </stream:stream> (optionally after
a <system-shutdown/> stream error) and the daemon exits 0 within 5 s."""
import signal
import time
import uuid

from rawxmpp import RawXMPP, assert_stream_error


def open_clients(t):
    clients = {}
    c = RawXMPP.connect(t.host, t.starttls_port, t.domain)
    c.login("alice", "alicepw", resource="sd-" + uuid.uuid4().hex[:4])
    clients["authed-starttls"] = c
    c = RawXMPP.connect(t.host, t.tls_port, t.domain, direct_tls=True)
    c.login("bob", "bobpw", resource="sd-" + uuid.uuid4().hex[:4], direct_tls=True)
    clients["authed-direct-tls"] = c
    c = RawXMPP.connect(t.host, t.starttls_port, t.domain)
    c.secure_stream()
    clients["tls-unauthenticated"] = c
    c = RawXMPP.connect(t.host, t.starttls_port, t.domain)
    c.open_stream()
    c.read_features()
    clients["plain-before-starttls"] = c
    return clients


def test_sigterm_closes_streams_and_exits_0(proxy_factory):
    p = proxy_factory.start()
    t = p.target()
    clients = open_clients(t)
    try:
        t0 = time.monotonic()
        p.proc.send_signal(signal.SIGTERM)
        ends = {name: c.read_stream_end(6) for name, c in clients.items()}
        rc, elapsed, killed = p.stop(timeout=max(0.1, 5 - (time.monotonic() - t0)))
        problems = []
        for name, end in ends.items():
            if not end.close_tag:
                problems.append("%s: no </stream:stream> (%s)" % (name, end.describe()))
            elif end.condition is not None:
                try:
                    assert_stream_error(end, "system-shutdown")
                except AssertionError as e:
                    problems.append("%s: %s" % (name, e))
        assert not killed, "s2proxy did not exit within 5 s of SIGTERM"
        assert rc == 0, "s2proxy exited with %s after SIGTERM" % rc
        assert not problems, "\n".join(problems) + "\nlog:\n" + p.log_tail(40)
    finally:
        for c in clients.values():
            c.close()


def test_sigterm_idle_exits_0_quickly(proxy_factory):
    p = proxy_factory.start()
    t0 = time.monotonic()
    rc, elapsed, killed = p.stop()
    assert not killed and rc == 0, "rc=%s killed=%s" % (rc, killed)
    assert elapsed < 2, "idle shutdown took %.1fs" % elapsed
