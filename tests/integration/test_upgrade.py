"""Upgrade safety (issue 13 item 6): the current build opens a data dir written by an older one.

tests/fixtures/datadir-<commit>/ was written by the build at that commit (the last one CI passed
before this test existed) with tests/fixtures/make_datadir_fixture.sh: alice's mirror with 25
messages and the vault key. The current build starts on a copy of it in front of a fresh Prosody,
and alice's device then finds every message in MAM through the proxy under the archive id it had,
and a new message continues the same archive. An older build refusing a newer data dir is
tests/unit/store/test_mirror_records.cpp.
"""
import json
import shutil
import uuid
from pathlib import Path

import pytest

from test_history import collect, connect, mam_all, wait_until
from xmppclient import body_of, msg_xml, run_async

FIXTURES = sorted((Path(__file__).resolve().parent.parent / "fixtures").glob("datadir-*/manifest.json"))


@pytest.mark.parametrize("manifest_path", FIXTURES, ids=[p.parent.name for p in FIXTURES])
def test_current_build_serves_an_older_builds_data_dir(manifest_path, proxy_factory, upstream, upstream_target):
    manifest = json.loads(manifest_path.read_text())
    if upstream.domain != manifest["domain"]:
        pytest.skip("the fixture's account is on %s" % manifest["domain"])
    fixture = manifest_path.parent

    def restore(proc):
        shutil.copytree(fixture / "mirror", Path(proc.data_dir) / "mirror")
        shutil.copy2(fixture / "vault.key", Path(proc.data_dir) / "vault.key")
        (Path(proc.data_dir) / "vault.key").chmod(0o600)

    p = proxy_factory.start(prepare=restore)
    want = {m["body"]: m["archive_id"] for m in manifest["messages"]}
    state = {}

    async def check(pool):
        a = await connect(pool, p.target(), "alice", "upgraded-" + uuid.uuid4().hex[:6])
        items = await mam_all(a)
        got = {body_of(m): aid for aid, m in items if (body_of(m) or "").startswith("fixture-")}
        assert got == want, "MAM after the upgrade differs: missing %s, changed %s" % (
            sorted(set(want) - set(got)), sorted(b for b in want if b in got and got[b] != want[b]))
        # The archive goes on where the old build left it.
        bob = await connect(pool, upstream_target, "bob", "upgrade-bob")
        body = "after-upgrade-" + uuid.uuid4().hex[:6]
        bob.send_xml(msg_xml(a.bare, body))
        await wait_until(lambda: collect([a], body, a.bare), 20, "a message after the upgrade")
        _, aid, _ = collect([a], body, a.bare)[0]
        state["new_id"] = aid

    run_async(check, 90)
    old_ids = sorted(want.values())
    assert state["new_id"] and state["new_id"] not in old_ids
    items_order = sorted(old_ids + [state["new_id"]])
    assert items_order[-1] == state["new_id"], "the new message sorts after the fixture's"
