"""The test bed's own functional check (check_upstream.py, slixmpp) run through the proxy: logins,
Carbons received/sent, bare-JID fan-out, MAM, CSI hold/flush, push (XEP-0357), offline delivery and SM
resumption — the legacy features a transparent relay must keep working. 15 checks."""
import subprocess
import sys

from harness import TESTBED


def test_check_upstream_through_proxy(target):
    r = subprocess.run(["/usr/bin/python3", str(TESTBED / "check_upstream.py"), "--port", str(target.starttls_port),
                        "--domain", target.domain, "--sasl-mech", "PLAIN"],
                       capture_output=True, text=True, timeout=180)
    out = r.stdout + r.stderr
    print(out, file=sys.stderr)
    assert r.returncode == 0 and "15 passed, 0 failed" in out, out[-4000:]
