"""Limits per source address and at scale (issue 12 items 4 and 6).

* Many devices behind one address (a carrier NAT, a company proxy) log in at once: the logins are
  paced (--login-concurrency-per-address run, the rest wait in arrival order), none is refused;
  only a full queue (--login-queue-per-address) answers temporary-auth-failure.
* The PROXY protocol (v1 and v2) on --proxy-protocol listeners: limits and logs see the client the
  balancer names; a bad or missing header closes the connection with a log line, nothing else.
* Unauthenticated connections are capped per address and in all, and client connections in all
  (--max-clients, checked against RLIMIT_NOFILE at start): over a cap, a connection is closed at
  accept with a log line and a metric, while other addresses still log in.
"""
import base64
import re
import resource
import socket
import struct
import subprocess
import time

import pytest

from harness import HOST, free_closed_port, scrape_metrics
from rawxmpp import NS_SASL, RawXMPP, XMPPClosed
from xmppclient import PASSWORDS

USERS = ["alice", "bob", "carol"]


# ---- helpers -------------------------------------------------------------------------------------
def v1(src, dst="127.0.0.1", sport=40000, dport=5222, fam="TCP4"):
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(src, dst="127.0.0.1", sport=40000, dport=5222, tlvs=b"", local=False):
    if local:
        return V2_SIG + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    if ":" in src:
        body = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
        fam = 0x21
    else:
        body = socket.inet_aton(src) + socket.inet_aton(dst)
        fam = 0x11
    body += struct.pack("!HH", sport, dport) + tlvs
    return V2_SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def connect(p, header=b"", direct_tls=False, source=None, timeout=30):
    port = p.tls_port if direct_tls else p.port
    s = socket.create_connection((HOST, port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if header:
        s.sendall(header)
    c = RawXMPP(s, p.domain, HOST, port, timeout=timeout)
    if direct_tls:
        c._wrap_tls()
    return c


def auth_blob(user):
    return base64.b64encode(("\0%s\0%s" % (user, PASSWORDS[user])).encode()).decode()


def closed_at_accept(p, header=b"", source=None, wait=3.0):
    """Connects (sending `header` if any) and reports whether the proxy closed the connection
    without a word. A connection that was kept sees a <stream:stream> answer to its header."""
    s = socket.create_connection((HOST, p.port), timeout=wait,
                                 source_address=(source, 0) if source else None)
    try:
        if header:
            s.sendall(header)
        s.sendall(("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                   "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>" % p.domain).encode())
        data = s.recv(4096)
        return data == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    finally:
        s.close()


def burst_login(p, n, header_for=lambda i: b"", direct_every=0):
    """n devices: each secures its stream, then all send their <auth/> at once. Returns the SASL
    results in order and the connections (still open)."""
    conns = []
    for i in range(n):
        direct = bool(direct_every) and i % direct_every == 0
        c = connect(p, header_for(i), direct_tls=direct)
        c.secure_stream(direct)
        conns.append(c)
    t0 = time.monotonic()
    for i, c in enumerate(conns):
        c.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, auth_blob(USERS[i % 3])))
    results = [c.read_sasl_result(timeout=60)[:3] for c in conns]
    return results, conns, time.monotonic() - t0


def close_all(conns):
    for c in conns:
        c.close()


def log_count(p, pattern):
    return len(re.findall(pattern, p.log_text()))


# ---- many devices behind one address -------------------------------------------------------------
@pytest.mark.parametrize("via", ["direct", "proxy-protocol"])
def test_200_devices_behind_one_address_all_log_in(proxy_factory, via):
    """The bug of issue 12: 8 logins in flight per address refused 266 of 300 devices behind one
    NAT address. Now they wait their turn: all 200 succeed, at most 8 at a time."""
    mport = free_closed_port()
    opts = {"metrics": "127.0.0.1:%d" % mport}
    header_for = lambda i: b""  # noqa: E731
    if via == "proxy-protocol":
        opts["proxy-protocol"] = "listen,listen-tls"
        opts["proxy-protocol-from"] = "127.0.0.0/8"
        # the NAT address the balancer saw; v1 and v2, over both listeners
        header_for = lambda i: (v1("203.0.113.7", sport=20000 + i) if i % 2 else  # noqa: E731
                                v2("203.0.113.7", sport=20000 + i, tlvs=b"\x04\x00\x02ok"))
    p = proxy_factory.start(opts)
    results, conns, took = burst_login(p, 200, header_for, direct_every=5)
    try:
        failed = [(i, r) for i, r in enumerate(results) if r[0] != "success"]
        assert not failed, "%d of 200 logins failed, e.g. %s" % (len(failed), failed[:5])
        m = scrape_metrics(mport)
        assert m["s2proxy_login_queued_total"] > 0, "the burst never waited for a slot"
        assert m["s2proxy_login_queue"] == 0
        assert m["s2proxy_client_unauthenticated"] == 0
        assert m.get("s2proxy_login_throttled_total", 0) == 0
    finally:
        close_all(conns)
    if via == "proxy-protocol":
        accepted = re.findall(r"client\.accepted session=\S+ peer=(\S+) via=(\S+)", p.log_text())
        assert len(accepted) == 200, accepted[:5]
        assert all(peer.startswith("203.0.113.7:") and via_.startswith("127.0.0.1:")
                   for peer, via_ in accepted), accepted[:5]
        assert log_count(p, r"client\.login_queued session=\S+ peer=203\.0\.113\.7:") > 0
    else:
        assert log_count(p, r"client\.login_queued session=\S+ peer=127\.0\.0\.1:") > 0
    print("200 logins from one address in %.2f s" % took)
    p.stop()


def test_full_login_queue_is_temporary_auth_failure(proxy_factory):
    """Beyond --login-queue-per-address waiting logins, a login is refused (temporary-auth-failure,
    a SASL failure: the stream stays usable), and the queued ones still get through."""
    p = proxy_factory.start({"login-concurrency-per-address": 1, "login-queue-per-address": 2})
    results, conns, _ = burst_login(p, 8)
    try:
        ok = [r for r in results if r[0] == "success"]
        refused = [r for r in results if r[0] == "failure"]
        assert len(ok) >= 3, results  # one running + two waiting
        assert refused, "no login was refused with a queue of 2: %s" % results
        assert all(r[1] == "temporary-auth-failure" and "too many logins" in (r[2] or "")
                   for r in refused), refused
        # the refused device retries on the same stream and gets in
        i = next(i for i, r in enumerate(results) if r[0] == "failure")
        res = conns[i].auth_plain(USERS[i % 3], PASSWORDS[USERS[i % 3]])
        assert res[0] == "success", res[:3]
    finally:
        close_all(conns)
    p.stop()


# ---- PROXY protocol --------------------------------------------------------------------------------
BAD_HEADERS = [
    (b"GET / HTTP/1.0\r\n\r\n", "garbage"),
    (b"PROXY TCP4 203.0.113.7 127.0.0.1 1 2\n", "LF without CR"),
    (b"PROXY TCP4 203.0.113.300 127.0.0.1 1 2\r\n", "bad address"),
    (b"PROXY UNKNOWN " + b"x" * 200, "oversized v1"),
    (V2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", 60000) + b"\x00" * 100, "oversized v2"),
    (V2_SIG + bytes([0x21, 0x12]) + struct.pack("!H", 12) + b"\x00" * 12, "v2 UDP"),
    (V2_SIG + bytes([0x31, 0x11]) + struct.pack("!H", 12) + b"\x00" * 12, "v2 version 3"),
    (b"", "no header, XML first"),
]


@pytest.mark.parametrize("header,what", BAD_HEADERS, ids=[w.replace(" ", "-") for _, w in BAD_HEADERS])
def test_bad_proxy_header_closes_the_connection(proxy_factory, header, what):
    p = proxy_factory.start({"proxy-protocol": "listen", "tls-handshake-timeout": 2})
    assert closed_at_accept(p, header, wait=5), "%s: the connection was kept" % what
    # truncated: half a header, then silence until the header timeout
    s = socket.create_connection((HOST, p.port), timeout=5)
    s.sendall(v1("203.0.113.7")[:10])
    t0 = time.monotonic()
    assert s.recv(100) == b""
    assert time.monotonic() - t0 < 4.5
    s.close()
    # still serving, and a good header works
    c = connect(p, v1("198.51.100.20"))
    c.secure_stream()
    assert c.auth_plain("alice", PASSWORDS["alice"])[0] == "success"
    c.close()
    time.sleep(0.2)
    log = p.log_text()
    assert re.search(r"client\.refused reason=proxy_header peer=127\.0\.0\.1:", log), log[-3000:]
    assert re.search(r"client\.closed session=\S+ reason=\"?PROXY protocol: ", log), log[-3000:]
    assert "client.accepted session" in log and "peer=198.51.100.20:" in log
    rc, _, killed = p.stop()
    assert rc == 0 and not killed


def test_proxy_header_only_from_trusted_networks(proxy_factory):
    """--proxy-protocol-from: a balancer outside the networks is closed at accept."""
    p = proxy_factory.start({"proxy-protocol": "listen", "proxy-protocol-from": "127.0.0.2/32"})
    assert closed_at_accept(p, v1("203.0.113.7"), source="127.0.0.1")
    c = connect(p, v1("203.0.113.8"), source="127.0.0.2")
    c.secure_stream()
    assert c.auth_plain("bob", PASSWORDS["bob"])[0] == "success"
    c.close()
    assert re.search(r"client\.refused reason=proxy_source peer=127\.0\.0\.1:", p.log_text())
    assert re.search(r"client\.accepted session=\S+ peer=203\.0\.113\.8:\d+ via=127\.0\.0\.2:",
                     p.log_text())
    # LOCAL (the balancer's health check) keeps the balancer's own address
    c = connect(p, v2("", local=True), source="127.0.0.2")
    c.secure_stream()
    c.close()
    assert re.search(r"client\.accepted session=\S+ peer=127\.0\.0\.2:\d+ tls=", p.log_text())
    p.stop()


# ---- caps on connections -----------------------------------------------------------------------------
@pytest.mark.parametrize("via", ["direct", "proxy-protocol"])
def test_unauthenticated_cap_per_address(proxy_factory, via):
    """One address holds --max-unauthenticated-per-address connections that never log in; its next
    one is closed at accept, while a device from another address still logs in."""
    mport = free_closed_port()
    opts = {"max-unauthenticated-per-address": 10, "metrics": "127.0.0.1:%d" % mport}
    if via == "proxy-protocol":
        opts["proxy-protocol"] = "listen"
        hog = dict(header=v1("198.51.100.66"), source=None)
        other = dict(header=v1("198.51.100.67"), source=None)
    else:
        hog = dict(header=b"", source="127.0.0.1")
        other = dict(header=b"", source="127.0.0.2")
    p = proxy_factory.start(opts)
    idle = []
    try:
        for _ in range(10):
            c = connect(p, hog["header"], source=hog["source"])
            c.open_stream()
            c.read_features()  # admitted and counted
            idle.append(c)
        assert closed_at_accept(p, hog["header"], source=hog["source"]), "the 11th was kept"
        c = connect(p, other["header"], source=other["source"])
        c.secure_stream()
        assert c.auth_plain("carol", PASSWORDS["carol"])[0] == "success"
        c.close()
        m = scrape_metrics(mport)
        assert m['s2proxy_connections_refused_total{reason="unauthenticated_per_address"}'] >= 1
        assert m["s2proxy_client_unauthenticated"] == 10
        # an authenticated device leaves the count: the address may connect again
        idle[0].starttls()
        idle[0].open_stream()
        idle[0].read_features()
        assert idle[0].auth_plain("alice", PASSWORDS["alice"])[0] == "success"
        c = connect(p, hog["header"], source=hog["source"])
        c.open_stream()
        c.read_features()
        idle.append(c)
    finally:
        close_all(idle)
    assert re.search(r"client\.refused reason=unauthenticated_per_address peer=%s" %
                     re.escape("198.51.100.66" if via == "proxy-protocol" else "127.0.0.1"), p.log_text())
    p.stop()


def test_unauthenticated_total_and_max_clients(proxy_factory):
    mport = free_closed_port()
    p = proxy_factory.start({"max-unauthenticated": 4, "max-clients": 6, "metrics": "127.0.0.1:%d" % mport})
    held = []
    try:
        for i in range(4):
            c = connect(p, source="127.0.0.%d" % (i + 1))
            c.open_stream()
            c.read_features()
            held.append(c)
        assert closed_at_accept(p, source="127.0.0.9")  # 4 unauthenticated in all
        # authenticated ones do not count there, but count against --max-clients
        for c, user in zip(held[:3], USERS):
            c.starttls()
            c.open_stream()
            c.read_features()
            assert c.auth_plain(user, PASSWORDS[user])[0] == "success"
        for i in range(2):
            c = connect(p, source="127.0.1.%d" % (i + 1))
            c.open_stream()
            c.read_features()
            held.append(c)
        assert closed_at_accept(p, source="127.0.2.1")  # 6 clients in all
        m = scrape_metrics(mport)
        assert m['s2proxy_connections_refused_total{reason="unauthenticated_total"}'] >= 1
        assert m['s2proxy_connections_refused_total{reason="max_clients"}'] >= 1
        assert m["s2proxy_max_clients"] == 6
    finally:
        close_all(held)
    p.stop()


# ---- file descriptors ---------------------------------------------------------------------------------
def _limit_fds(n):
    def pre():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return pre


def test_max_clients_beyond_the_descriptor_limit_is_a_config_error(proxy_bin, tmp_path):
    args = [proxy_bin, "check-config", "--domain", "d.test", "--upstream", "127.0.0.1:5222",
            "--data-dir", str(tmp_path), "--max-clients", "10000"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=10, preexec_fn=_limit_fds(4096))
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1, r.stderr
    assert "--max-clients" in r.stderr and "LimitNOFILE" in r.stderr and "ulimit -n" in r.stderr, r.stderr
    r = subprocess.run(args[:-1] + ["1000"], capture_output=True, text=True, timeout=10,
                       preexec_fn=_limit_fds(4096))
    assert r.returncode == 0, r.stderr


def test_low_descriptor_limit_is_a_warning_by_default(proxy_factory):
    p = proxy_factory.start({}, env=None)
    p.stop()
    # the same proxy under a low limit: it starts, says how many clients the limit holds
    proc = subprocess.Popen(p.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=p.env, preexec_fn=_limit_fds(2048))
    try:
        deadline = time.monotonic() + 15
        seen = ""
        while time.monotonic() < deadline and "server.started" not in seen:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
        assert "server.fd_limit_low" in seen and "LimitNOFILE" in seen, seen
        assert re.search(r"server\.started .*max_clients=661\b", seen), seen
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


# ---- upstream login pacing -----------------------------------------------------------------------
def test_upstream_logins_are_paced_in_arrival_order(proxy_factory):
    """Issue 12 item 5: 60 devices log in at once with --upstream-logins-in-flight 4 and
    --upstream-login-rate 20: every one gets in, never more than 4 upstream logins authenticate at
    once, and the burst beyond the bucket (20) takes at least (60 - 20) / 20 = 2 s."""
    mport = free_closed_port()
    p = proxy_factory.start({"upstream-logins-in-flight": 4, "upstream-login-rate": 20,
                             "login-concurrency-per-address": 100,
                             "metrics": "127.0.0.1:%d" % mport})
    time.sleep(1.5)  # the anchors of known accounts have logged in
    results, conns, took = burst_login(p, 60)
    try:
        failed = [(i, r) for i, r in enumerate(results) if r[0] != "success"]
        assert not failed, "%d of 60 logins failed, e.g. %s" % (len(failed), failed[:5])
        in_flight = [int(n) for n in re.findall(r"upstream\.login_admitted in_flight=(\d+)", p.log_text())]
        assert len(in_flight) >= 60, len(in_flight)
        assert max(in_flight) <= 4, "up to %d upstream logins at once" % max(in_flight)
        assert took >= 1.8, "60 upstream logins in %.2f s: not paced at 20/s" % took
        # The accounts' anchors queued behind the devices (arrival order): they follow.
        deadline = time.monotonic() + 10
        while True:
            m = scrape_metrics(mport)
            if m["s2proxy_upstream_logins_waiting"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert m["s2proxy_upstream_logins_waiting"] == 0, m["s2proxy_upstream_logins_waiting"]
        assert m["s2proxy_upstream_logins_paced_total"] > 0
        assert m["s2proxy_upstream_logins_in_flight"] <= 4
    finally:
        close_all(conns)
    print("60 paced logins in %.2f s" % took)
    p.stop()
