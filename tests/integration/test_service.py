"""What supervisors see (issue 11 item 5): systemd readiness through sd_notify (Type=notify) and
`s2proxy health`, the check the container image runs, whatever way the metrics listener was set.

* NOTIFY_SOCKET: READY=1 arrives only once the client listener accepts (After= ordering means
  "serving"), STOPPING=1 when SIGTERM starts the drain; STATUS= lines say what it does.
* health: exit 0 while the daemon answers GET /metrics — with the listener set by flag and by
  environment, the check given only the data dir (flag or S2PROXY_DATA_DIR); exit 1 with one line
  saying why once the daemon stops, without metrics, or for a data dir nobody runs in (which it
  must not create).
"""
import os
import signal
import socket
import subprocess
import time

from harness import HOST, free_closed_port


def health(proxy_bin, *args, env=None, timeout=15):
    e = {k: v for k, v in os.environ.items() if not k.startswith("S2PROXY_")}
    e.update(env or {})
    return subprocess.run([proxy_bin, "health"] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=e)


def test_sd_notify_ready_after_listening_and_stopping_on_sigterm(proxy_factory, tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(15)
    try:
        p = proxy_factory.start(env={"NOTIFY_SOCKET": path}, wait=False)
        msg = sock.recv(4096).decode()
        lines = msg.split("\n")
        assert "READY=1" in lines, msg
        assert any(ln.startswith("STATUS=serving ") for ln in lines), msg
        # Ready means serving: the listener accepts now, not later.
        socket.create_connection((HOST, p.port), timeout=2).close()
        p.proc.send_signal(signal.SIGTERM)
        msg = sock.recv(4096).decode()
        assert "STOPPING=1" in msg.split("\n"), msg
        rc, _, killed = p.stop()
        assert rc == 0 and not killed
    finally:
        sock.close()


def test_health_follows_the_daemon(proxy_factory, proxy_bin, tmp_path):
    # Metrics set by flag; the check knows only the data dir.
    mport = free_closed_port()
    p = proxy_factory.start({"metrics": "127.0.0.1:%d" % mport})
    r = health(proxy_bin, "--data-dir", p.data_dir)
    assert r.returncode == 0, r.stderr
    r = health(proxy_bin, env={"S2PROXY_DATA_DIR": p.data_dir})
    assert r.returncode == 0, r.stderr
    with open(os.path.join(p.data_dir, "metrics.addr")) as f:
        assert f.read().strip() == "127.0.0.1:%d" % mport
    p.stop()
    r = health(proxy_bin, "--data-dir", p.data_dir)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, (r.returncode, r.stderr)
    assert not os.path.exists(os.path.join(p.data_dir, "metrics.addr")), "the record outlived the stop"

    # Metrics set by environment, on the wildcard address (as the image does).
    mport = free_closed_port()
    p = proxy_factory.start({"metrics": None}, env={"S2PROXY_METRICS": "0.0.0.0:%d" % mport})
    r = health(proxy_bin, "--data-dir", p.data_dir)
    assert r.returncode == 0, r.stderr
    assert "127.0.0.1:%d" % mport in r.stdout, r.stdout
    # Killed (no clean stop): the stale record points at nothing and the check says so.
    p.proc.kill()
    p.proc.wait(10)
    r = health(proxy_bin, "--data-dir", p.data_dir, "--timeout", "2")
    assert r.returncode == 1 and "cannot connect" in r.stderr, r.stderr
    p.stop()

    # No metrics listener at all.
    p = proxy_factory.start()
    r = health(proxy_bin, "--data-dir", p.data_dir)
    assert r.returncode == 1 and "no metrics listener" in r.stderr, r.stderr
    p.stop()

    # A data dir nobody runs in: refused, and not created.
    nowhere = str(tmp_path / "never-created")
    r = health(proxy_bin, "--data-dir", nowhere)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert not os.path.exists(nowhere)


def test_health_reports_the_anchors(proxy_factory, proxy_bin):
    """With an account behind it, health says how many anchors are logged in upstream (the rule
    for "none after a minute" is policies/health, table-tested in tests/unit/policies)."""
    from xmppclient import PASSWORDS
    from rawxmpp import RawXMPP
    mport = free_closed_port()
    p = proxy_factory.start({"metrics": "127.0.0.1:%d" % mport})
    t = p.target()
    c = RawXMPP.connect(t.host, t.starttls_port, t.domain, cafile=t.cafile, timeout=15)
    c.login("alice", PASSWORDS["alice"], resource="health")
    end = time.monotonic() + 15
    while "anchor.ready" not in p.log_text() and time.monotonic() < end:
        time.sleep(0.1)
    c.close()
    r = health(proxy_bin, "--data-dir", p.data_dir)
    assert r.returncode == 0, r.stderr
    assert "anchors logged in upstream: 1 of 1" in r.stdout, r.stdout
