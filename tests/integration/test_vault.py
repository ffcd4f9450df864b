"""Credential vault lifecycle and login throttling through s2proxy, against the real upstream.

* The first PLAIN login fills the vault; FAST and local SCRAM then work without the password.
* The password is changed upstream: the next FAST login fails with not-authorized (the stored
  SaltedPassword no longer logs in upstream), the vault entry and the account's FAST tokens are
  gone, SCRAM is no longer offered for the account, the old password fails and the new one works.
* Failed logins back off: after --login-free-failures the proxy answers temporary-auth-failure
  with the wait in <text>, even for the right password.

The password change uses Prosody's admin shell, so the lifecycle test runs with Prosody only.
"""
import base64
import re
import subprocess
import uuid

import pytest

from rawxmpp import NS_SASL, local
from test_session2 import (NS_SASL2, bind2_xml, child, failure_condition, ht_initial, raw_sasl1_mechanisms,
                           raw_secure, read_sasl2, sasl2_authenticate_xml)

NS_FAST = "urn:xmpp:fast:0"


def prosody_shell(upstream, command):
    cfg = "%s/prosody.cfg.lua" % upstream.dir
    r = subprocess.run(["prosodyctl", "--config", cfg, "shell"], input=command + "\n", capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, "prosodyctl shell failed: %s %s" % (r.stdout, r.stderr)
    return r.stdout


def sasl2_plain(t, user, password, ua_id, extra=""):
    c = raw_secure(t, frm="%s@%s" % (user, t.domain))
    c.send(sasl2_authenticate_xml("PLAIN", ("\0%s\0%s" % (user, password)).encode(), ua_id, extra))
    return c, read_sasl2(c)


def sasl2_fast(t, user, token, ua_id):
    c = raw_secure(t, frm="%s@%s" % (user, t.domain))
    c.send(sasl2_authenticate_xml("HT-SHA-256-NONE", ht_initial(user, token), ua_id, bind2_xml("vault")))
    return c, read_sasl2(c)


def outcome(el):
    return local(el.tag), (failure_condition(el) if local(el.tag) == "failure" else None)


def text_of(el):
    t = child(el, NS_SASL2, "text")
    return (t.text or "") if t is not None else ""


@pytest.fixture
def fresh_user(upstream):
    if upstream.kind != "prosody":
        pytest.skip("the password change goes through Prosody's admin shell")
    user = "vault" + uuid.uuid4().hex[:6]
    prosody_shell(upstream, 'user:create("%s@%s", "firstpw")' % (user, upstream.domain))
    yield user
    prosody_shell(upstream, 'user:delete("%s@%s")' % (user, upstream.domain))


def test_password_change_upstream_invalidates_vault_and_tokens(proxy_factory, upstream, fresh_user):
    p = proxy_factory.start()
    t = p.target()
    user, ua_id = fresh_user, str(uuid.uuid4())

    # 1. First login with the password, asking for a FAST token.
    c, el = sasl2_plain(t, user, "firstpw", ua_id,
                        bind2_xml("vault") + "<request-token xmlns='%s' mechanism='HT-SHA-256-NONE'/>" % NS_FAST)
    assert outcome(el) == ("success", None), c.transcript()
    tok = child(el, NS_FAST, "token")
    assert tok is not None and tok.get("token"), c.transcript()
    token = tok.get("token")
    c.close()

    # 2. The vault now knows the account: SCRAM is offered for it, and FAST logs in.
    for _ in range(50):  # the vault write commits right after <success>
        c = raw_secure(t, frm="%s@%s" % (user, t.domain))
        mechs = raw_sasl1_mechanisms(c)
        c.close()
        if "SCRAM-SHA-1" in mechs:
            break
    assert "SCRAM-SHA-1" in mechs and "SCRAM-SHA-256" in mechs, mechs
    c, el = sasl2_fast(t, user, token, ua_id)
    assert outcome(el) == ("success", None), c.transcript()
    c.close()

    # 3. The password changes upstream (new salt): the stored secret is stale.
    prosody_shell(upstream, 'user:password("%s@%s", "secondpw")' % (user, upstream.domain))
    c, el = sasl2_fast(t, user, token, ua_id)
    assert outcome(el) == ("failure", "not-authorized"), c.transcript()
    assert "password" in text_of(el), c.transcript()
    c.close()

    # 4. Vault entry and tokens are gone: no SCRAM for the account, the token stays refused.
    c = raw_secure(t, frm="%s@%s" % (user, t.domain))
    assert raw_sasl1_mechanisms(c) == ["PLAIN"], c.transcript()
    c.close()
    c, el = sasl2_fast(t, user, token, ua_id)
    assert outcome(el) == ("failure", "not-authorized"), c.transcript()
    c.close()

    # 5. The old password fails upstream, the new one works and refills the vault.
    c, el = sasl2_plain(t, user, "firstpw", ua_id)
    assert outcome(el) == ("failure", "not-authorized"), c.transcript()
    c.close()
    c, el = sasl2_plain(t, user, "secondpw", ua_id, bind2_xml("vault"))
    assert outcome(el) == ("success", None), c.transcript()
    c.close()
    assert "secondpw" not in p.log_text() and "firstpw" not in p.log_text()


def test_failed_logins_back_off(proxy_factory):
    p = proxy_factory.start(opts={"login-free-failures": "2", "login-backoff-max": "30"})
    t = p.target()
    seen = []
    for attempt in range(3):
        c = raw_secure(t)
        result, cond, text, _ = c.auth_plain("alice", "wrong-%d" % attempt)
        seen.append((result, cond))
        c.close()
    assert seen == [("failure", "not-authorized")] * 3, seen
    # Locked out now, even with the right password; the text says how long.
    c = raw_secure(t)
    result, cond, text, _ = c.auth_plain("alice", "alicepw")
    assert (result, cond) == ("failure", "temporary-auth-failure"), c.transcript()
    assert re.search(r"try again in \d+ s", text or ""), text
    c.close()
    assert "alicepw" not in p.log_text()


def test_accounts_cli_lists_shows_and_forgets(proxy_factory, proxy_bin):
    """`s2proxy accounts list|show|forget` on the data dir of a running proxy: forget removes the
    account's credentials (and tokens), so SCRAM is no longer offered for it."""
    p = proxy_factory.start()
    t = p.target()
    c = raw_secure(t)
    result, cond, _, _ = c.auth_plain("carol", "carolpw")
    assert result == "success", c.transcript()
    c.close()

    def cli(*args):
        return subprocess.run([proxy_bin, "accounts", *args, "--data-dir", p.data_dir], capture_output=True,
                              text=True, timeout=30)

    jid = "carol@%s" % t.domain
    for _ in range(50):  # the vault write commits right after <success>
        shown = cli("show", jid)
        if "stored (sealed)" in shown.stdout:
            break
    assert shown.returncode == 0 and "stored (sealed)" in shown.stdout, shown.stdout + shown.stderr
    assert re.search(r"^created +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", shown.stdout, re.M), shown.stdout
    listed = cli("list")
    assert listed.returncode == 0 and jid in listed.stdout.split(), listed.stdout
    c = raw_secure(t, frm=jid)
    assert "SCRAM-SHA-1" in raw_sasl1_mechanisms(c)
    c.close()

    forgot = cli("forget", jid)
    assert forgot.returncode == 0 and "forgot %s" % jid in forgot.stdout, forgot.stdout + forgot.stderr
    assert jid not in cli("list").stdout.split()
    assert cli("show", jid).returncode != 0
    c = raw_secure(t, frm=jid)
    assert raw_sasl1_mechanisms(c) == ["PLAIN"], c.transcript()
    c.close()
    assert cli("forget", "not a jid").returncode == 2
