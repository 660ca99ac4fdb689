"""`hub backup` and `hub restore` as a technician runs them, on real SQLite and real media files."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import tomli_w

from hub import feedback
from hub.backup import archive, restore
from hub.core import settings as settings_mod
from hub.core.context import open_context
from hub.migrations import MIGRATIONS
from tests.phone_audio import tone_wav

HUB = str(Path(sys.executable).parent / "hub")


def hub(args: list[str], config: Path, check: bool = True):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    r = subprocess.run([HUB, "--config", str(config), *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def make_card(tmp_path: Path, name: str, **settings) -> Path:
    """A hub's card: a settings file naming its data directory, the database migrated."""
    config = tmp_path / name / "hub.toml"
    config.parent.mkdir(parents=True)
    config.write_text(tomli_w.dumps({"data_dir": str(tmp_path / name / "data"), "hub_name": name, **settings}))
    hub(["migrate"], config)
    return config


def context(config: Path):
    return open_context(settings_mod.load(str(config), env={}), MIGRATIONS)


@pytest.fixture(scope="module")
def old_card(tmp_path_factory):
    """A hub in use: feedback with voice and a clerk's reply, a clerk account, its own secret."""
    tmp_path = tmp_path_factory.mktemp("old-card")
    config = make_card(tmp_path, "old", central_token="t0ken-of-the-old-hub", secret_key="s3cret-of-the-old-hub")
    ctx = context(config)
    row = ctx.media.prepare_audio(tone_wav(tmp_path / "v.wav", seconds=2))
    voiced = feedback.submit(ctx, {"category": "water", "body": ""}, audio_row=row)
    texted = feedback.submit(ctx, {"category": "roads", "body": "ផ្លូវខូច"})
    feedback.set_status(ctx, texted["id"], "answered", reply="យើងនឹងជួសជុល")
    from hub import accounts

    accounts.add_user(ctx.db, "sokha", "a long password", "clerk")
    hub_id = ctx.hub_id
    ctx.close()
    # A change the central console made.
    (tmp_path / "old" / "data" / settings_mod.REMOTE_FILE).write_text('quiet_hours_start = "22:30"\n')
    hub(["backup", str(tmp_path / "made.tar")], config)
    return config, hub_id, [voiced, texted]


@pytest.fixture
def good(old_card, tmp_path):
    """A copy of the old card's backup, for this test alone."""
    copy = tmp_path / "good.tar"
    copy.write_bytes((old_card[0].parent.parent / "made.tar").read_bytes())
    return copy


def rows(db_path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_backup_restored_onto_a_new_card_is_the_same_hub(old_card, tmp_path):
    config, hub_id, items = old_card
    usb = tmp_path / "usb"
    usb.mkdir()
    r = hub(["backup", str(usb)], config)
    made = list(usb.iterdir())
    assert len(made) == 1 and made[0].suffix == ".tar", r.stdout
    assert stat.S_IMODE(made[0].stat().st_mode) == 0o600, "the backup holds the hub's secrets"
    assert not [p for p in usb.iterdir() if p.name.startswith(".")], "no temporary file left behind"
    with tarfile.open(made[0]) as tar:
        names = tar.getnames()
    assert names[0] == "manifest.json" and "hub.db" in names and "hub.toml" in names
    assert settings_mod.REMOTE_FILE in names
    assert sum(n.startswith("media/") for n in names) == 3  # master, web copy, loudspeaker copy

    new = make_card(tmp_path, "new")
    new_ctx = context(new)
    fresh_id = new_ctx.hub_id
    new_ctx.close()
    assert fresh_id != hub_id
    r = hub(["restore", str(made[0])], new)
    assert f"hub {hub_id} restored" in r.stdout

    ctx = context(new)  # the settings file is the backup's now
    try:
        assert ctx.hub_id == hub_id
        assert ctx.settings.central_token == "t0ken-of-the-old-hub"
        assert ctx.settings.quiet_hours_start == "22:30", "the central console's changes came back too"
        assert ctx.secret_key() == "s3cret-of-the-old-hub"
        got = {f["receipt"]: f for f in ctx.db.query("select * from feedback")}
        assert set(got) == {i["receipt"] for i in items}
        answered = [f for f in got.values() if f["reply"]]
        assert len(answered) == 1 and answered[0]["reply"].replace("\u200b", "") == "យើងនឹងជួសជុល"
        audio = ctx.media.get([f for f in got.values() if f["audio_id"]][0]["audio_id"])
        web = ctx.media.path(audio["web_name"])
        assert web.read_bytes()[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")
        assert stat.S_IMODE(web.stat().st_mode) == 0o640
        assert [u["username"] for u in ctx.db.query("select username from users")] == ["sokha"]
    finally:
        ctx.close()
    assert (new.parent / "data" / "hub.db.pre-restore").exists(), "the card's own database is kept"
    assert (new.parent / "hub.toml.pre-restore").exists()
    skip = "services,access_point,portal,audio,gpio,speech"
    doctor = json.loads(hub(["doctor", "--json", "--lang", "en", "--skip", skip], new, check=False).stdout)
    found = {c["id"]: c for c in doctor["checks"]}["backup"]
    assert found["status"] == "ok" and "restored from" in found["detail"], found


def test_doctor_warns_when_no_backup_was_made_then_says_when(tmp_path):
    config = make_card(tmp_path, "card")
    skip = "services,access_point,portal,audio,gpio,speech,uplink,sync"

    def backup_check():
        out = hub(["doctor", "--json", "--lang", "en", "--skip", skip], config, check=False).stdout
        return {c["id"]: c for c in json.loads(out)["checks"]}["backup"]

    assert backup_check()["status"] == "warn"
    hub(["backup", str(tmp_path / "b.tar")], config)
    found = backup_check()
    assert found["status"] == "ok" and str(tmp_path / "b.tar") in found["detail"]


def damaged(src: Path, out: Path) -> Path:
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one bit flipped, inside some member's content
    out.write_bytes(bytes(data))
    return out


def foreign(src: Path, out: Path) -> Path:
    with tarfile.open(src) as tar_in, tarfile.open(out, "w") as tar_out:
        for member in tar_in:
            data = tar_in.extractfile(member).read()
            if member.name == "manifest.json":
                m = json.loads(data)
                m["format_version"] = 99
                data = json.dumps(m).encode()
                member.size = len(data)
            import io

            tar_out.addfile(member, io.BytesIO(data))
    return out


def bad_settings(src: Path, out: Path) -> Path:
    """A well-made archive whose settings the hub would refuse to start with."""
    import hashlib
    import io

    with tarfile.open(src) as tar_in:
        members = [(m, tar_in.extractfile(m).read()) for m in tar_in]
    manifest = json.loads(members[0][1])
    toml = b'port = 99999\n'
    manifest["files"]["hub.toml"] = {"sha256": hashlib.sha256(toml).hexdigest(), "bytes": len(toml)}
    with tarfile.open(out, "w") as tar_out:
        for member, data in members:
            data = {"manifest.json": json.dumps(manifest).encode(), "hub.toml": toml}.get(member.name, data)
            member.size = len(data)
            tar_out.addfile(member, io.BytesIO(data))
    return out


def cut_short(src: Path, out: Path) -> Path:
    out.write_bytes(src.read_bytes()[: src.stat().st_size * 2 // 3])
    return out


@pytest.mark.parametrize("spoil, says", [(damaged, "does not match its checksum"),
                                          (foreign, "format 99"),
                                          (bad_settings, "setting port"),
                                          (cut_short, "damaged")])
def test_a_damaged_or_foreign_backup_is_refused_and_nothing_changes(good, tmp_path, spoil, says):
    bad = spoil(good, tmp_path / "bad.tar")
    new = make_card(tmp_path, "new")
    data = new.parent / "data"

    def files():  # SQLite's own -wal and -shm come and go with any reader
        return {p.relative_to(data): p.read_bytes() for p in data.rglob("*")
                if p.is_file() and not p.name.endswith(("-wal", "-shm"))}

    before = files()
    settings_before = new.read_bytes()

    r = hub(["restore", str(bad)], new, check=False)

    assert r.returncode == 1 and says in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1, "one line, no traceback"
    assert files() == before and new.read_bytes() == settings_before
    hub(["migrate"], new)  # and the card still starts


def test_a_hub_in_use_is_not_overwritten_without_force(good, tmp_path):
    used = make_card(tmp_path, "used")
    ctx = context(used)
    feedback.submit(ctx, {"category": "water", "body": "this card's own message"})
    ctx.close()
    r = hub(["restore", str(good)], used, check=False)
    assert r.returncode == 1 and "--force" in r.stderr
    assert rows(used.parent / "data" / "hub.db", "select body from feedback") == [("this card's own message",)]
    assert hub(["restore", "--force", str(good)], used).returncode == 0
    assert len(rows(used.parent / "data" / "hub.db", "select body from feedback")) == 2


def test_a_restore_cut_short_stops_the_hub_until_it_is_run_again(old_card, good, tmp_path, monkeypatch):
    """A power cut between the settings and the database: the hub refuses to start, a rerun completes it."""
    _, hub_id, items = old_card
    new = make_card(tmp_path, "new")
    settings = settings_mod.load(str(new), env={})

    real_replace = os.replace

    def cut(src, dst):
        if str(dst).endswith("hub.db"):
            raise KeyboardInterrupt("power cut")
        return real_replace(src, dst)

    monkeypatch.setattr(restore.os, "replace", cut)
    with pytest.raises(KeyboardInterrupt):
        restore.restore(settings, good, MIGRATIONS, new)
    monkeypatch.setattr(restore.os, "replace", real_replace)

    r = hub(["migrate"], new, check=False)
    assert r.returncode == 1 and "restore was interrupted" in r.stderr
    hub(["restore", str(good)], new)
    hub(["migrate"], new)
    got = rows(new.parent / "data" / "hub.db", "select receipt from feedback")
    assert sorted(r[0] for r in got) == sorted(i["receipt"] for i in items)
    assert rows(new.parent / "data" / "hub.db", "select value from hub_state where key = 'hub_id'") == [(hub_id,)]


def test_the_archive_names_only_what_its_manifest_lists(good, tmp_path):
    """A member the manifest does not list (e.g. ../../etc/passwd) is refused before it is written."""
    evil = tmp_path / "evil.tar"
    import io

    with tarfile.open(good) as tar_in, tarfile.open(evil, "w") as tar_out:
        for member in tar_in:
            tar_out.addfile(member, io.BytesIO(tar_in.extractfile(member).read()))
        info = tarfile.TarInfo("../../outside")
        info.size = 4
        tar_out.addfile(info, io.BytesIO(b"evil"))
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(archive.BackupError, match="unexpected member"):
        archive.extract_checked(evil, staging)
    assert not (tmp_path / "outside").exists()
