"""`hub central backup` while the server runs, and `hub central restore` into an empty store, on each backend."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from tests.sync.procs import base_env, hub_cmd
from tests.sync.wirehub import WireHub

pytestmark = pytest.mark.slow


def test_backup_and_restore_keep_every_record_and_file(central, tmp_path, database_url, request):
    hub_id = str(uuid.uuid4())
    r = central.run("add-hub", "kampong", "--hub-id", hub_id, "--commune", "120101")
    assert r.returncode == 0, r.stderr
    hub = WireHub(central.port, r.stdout.strip(), hub_id)
    audio = os.urandom(300_000)
    digest = hashlib.sha256(audio).hexdigest()
    media_id = str(uuid.uuid4())
    records = [hub.record("feedback", {"category": "water", "status": "new", "body": f"m{i}"}) for i in range(50)]
    records.append(hub.record("media", {"type": "audio/ogg", "bytes": len(audio), "sha256": digest},
                              record_id=media_id))
    status, body, _ = hub.push(records)
    assert status == 200 and len(body["stored"]) == 51
    hub.close()
    store = central.open_store()
    try:
        assert store.append_media(hub_id, media_id, 0, len(audio), digest, audio)["complete"]
    finally:
        store.close()
    notice_audio = tmp_path / "notice.mp3"
    notice_audio.write_bytes(os.urandom(5000))
    r = central.run("publish", "--kind", "announcement", "--title-en", "Vaccination", "--audio", str(notice_audio),
                    "--area", "12")
    assert r.returncode == 0, r.stderr
    assert central.run("user", "add", "officer", "--area", "12", stdin="a long password\n").returncode == 0
    before = sorted(central.export(), key=lambda r: r["id"])

    backup_dir = tmp_path / "backup"
    r = central.run("backup", str(backup_dir))
    assert r.returncode == 0, r.stderr
    assert "51 records" in r.stdout and "2 media files" in r.stdout
    assert (backup_dir / ("central.pgdump" if database_url else "central.db")).stat().st_size > 0
    assert central.run("backup", str(backup_dir)).returncode == 1, "never over an earlier backup"

    # A new, empty store to restore into.
    if database_url:
        target_url = request.getfixturevalue("postgres").create_database()
    else:
        target_url = ""
    env = base_env(tmp_path / "restored")
    if target_url:
        env["HUB_DATABASE_URL"] = target_url
    r = hub_cmd(["central", "restore", str(backup_dir)], env)
    assert r.returncode == 0, r.stderr
    assert "restored 1 hubs, 51 records, 1 publications and 2 media files" in r.stdout
    r = hub_cmd(["central", "export", "--format", "jsonl"], env)
    import json

    after = sorted((json.loads(line) for line in r.stdout.splitlines()), key=lambda r: r["id"])
    assert after == before
    copy = tmp_path / "restored" / "central-media" / f"{media_id}.bin"
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == digest
    # The officer and their scope came back too.
    from hub.central.store import CentralStore

    restored = CentralStore.open(tmp_path / "restored", target_url)
    try:
        (user,) = restored.db.query("select id from users where username = 'officer'")
        assert restored.scope_of(user["id"]) == "12"
    finally:
        restored.close()
    r = hub_cmd(["central", "restore", str(backup_dir)], env)
    assert r.returncode == 1 and "already holds" in r.stderr, "never over live data"
    if target_url:
        request.getfixturevalue("postgres").drop_database(target_url)
