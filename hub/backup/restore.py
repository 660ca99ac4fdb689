"""Restore a backup onto a hub: the same id, records, receipts, media and settings.

The archive is unpacked into a staging folder inside the data directory and
checked whole (every checksum, the manifest's format, the database's
integrity, migrations this hub knows) before anything of the hub is touched.
Then:

1. the media files are moved into the media folder (new names only, so the
   hub as it is keeps working; the media sweep removes any that end up unused);
2. a marker ``restore-pending.json`` is written: from here on ``hub migrate``
   (which every daemon waits for) refuses to start the hub;
3. the settings file is replaced (the old one kept as ``hub.toml.pre-restore``),
   the old database is kept as ``hub.db.pre-restore`` and the new one renamed
   into place: that rename is the moment the hub becomes the restored one;
4. the marker is removed.

A power cut in steps 2-3 leaves the marker, and running the same
``hub restore FILE`` again completes it. Nothing half-restored ever runs.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tomllib
from pathlib import Path

import tomli_w

from hub.backup import archive
from hub.backup.archive import BackupError
from hub.core import db as dbmod
from hub.core import settings as settings_mod
from hub.core.db import utcnow
from hub.core.files import DIR_MODE, FILE_MODE, fsync_dir, make_dir, write_durably

STAGING = ".restore"
MARKER = "restore-pending.json"


def pending(data_dir: Path) -> Path | None:
    marker = Path(data_dir) / MARKER
    return marker if marker.exists() else None


def refuse_if_pending(data_dir: Path) -> None:
    """`hub migrate` calls this: a hub half way through a restore must not start."""
    if pending(data_dir):
        raise BackupError("a restore was interrupted: run `sudo hub restore FILE` again with the same"
                          " backup to finish it")


def _holds_records(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
        return sum(conn.execute(f"select count(*) from {t}").fetchone()[0]
                   for t in ("feedback", "notices") if t in tables)
    finally:
        conn.close()


def _owner_of(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid


def _chown(path: Path, owner: tuple[int, int]) -> None:
    if os.geteuid() == 0:
        os.chown(path, *owner)


def _settings_for_this_card(staged: Path, data_dir: Path) -> bytes:
    """The backup's settings, with this card's data directory (where the restore puts the data)."""
    text = staged.read_bytes()
    try:
        values = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        raise BackupError("the backup's settings file is not valid TOML") from None
    if "data_dir" in values and Path(values["data_dir"]) != Path(data_dir):
        values["data_dir"] = str(data_dir)
        return tomli_w.dumps(values).encode()
    return text


def check_database(db_path: Path, migrations) -> None:
    """The unpacked database is whole and this hub can run it; bring it to this hub's migrations."""
    try:
        db = dbmod.connect(db_path)
    except dbmod.StoreError as e:
        raise BackupError(f"the backup's database is unusable: {e}") from None
    try:
        dbmod.integrity_check(db)
        known = {n for n, _ in migrations}
        unknown = set(dbmod.applied_migrations(db)) - known
        if unknown:
            raise BackupError("the backup was made by a newer hub (its database has migrations this hub does"
                              f" not know: {', '.join(sorted(unknown))}); install that version first")
        dbmod.migrate(db, migrations)
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.conn.execute("PRAGMA journal_mode = DELETE")
    except dbmod.StoreError as e:
        raise BackupError(f"the backup's database is unusable: {e}") from None
    finally:
        db.conn.close()


def restore(settings, backup: Path, migrations, config_path: Path | None, force: bool = False,
            log=lambda message: None) -> dict:
    """Put the backup at *backup* onto the hub *settings* describe; return its manifest.

    The hub's daemons must be stopped (the command does that). *config_path* is
    where the settings file goes; None keeps the current settings.
    """
    data = Path(settings.data_dir)
    make_dir(data)
    owner = _owner_of(data)
    db_path = settings.db_path
    if not pending(data) and not force:
        held = _holds_records(db_path)
        if held:
            raise BackupError(f"this hub already holds {held} notices and feedback items; restore onto a new"
                              " card, or add --force to replace them (the old database is kept as"
                              " hub.db.pre-restore)")
    staging = data / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    make_dir(staging)
    try:
        manifest = archive.extract_checked(Path(backup), staging)
        check_database(staging / archive.DATABASE, migrations)
        if (staging / archive.SETTINGS).exists():
            try:  # the same rules as at start, so a restored hub never stops on its own settings
                settings_mod.load(str(staging / archive.SETTINGS), env={})
            except settings_mod.SettingsError as e:
                raise BackupError(f"the backup's settings file is not valid: {e}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"backup of hub {manifest['hub_id']} made {manifest['made_at']} checked:"
        f" {len(manifest['files'])} files, every checksum matches")

    # 1. Media: new names beside the current ones.
    media = make_dir(settings.media_dir)
    _chown(media, owner)
    staged_media = staging / archive.MEDIA
    moved = 0
    if staged_media.is_dir():
        for p in sorted(staged_media.iterdir()):
            os.chmod(p, FILE_MODE)
            _chown(p, owner)
            os.replace(p, media / p.name)
            moved += 1
        fsync_dir(media)
    # 2. From here on the hub does not start until the restore is complete.
    marker = data / MARKER
    write_durably(marker, json.dumps({"backup": str(backup), "hub_id": manifest["hub_id"],
                                      "started_at": utcnow()}).encode())
    # 3. Settings, then the database.
    staged_settings = staging / archive.SETTINGS
    if config_path is not None and staged_settings.exists():
        config_path = Path(config_path)
        if config_path.exists():
            st = config_path.stat()
            mode, cfg_owner = st.st_mode & 0o7777, (st.st_uid, st.st_gid)
            shutil.copy2(config_path, config_path.with_name(config_path.name + ".pre-restore"))
        else:
            mode, cfg_owner = 0o640, _owner_of(config_path.parent)
        write_durably(config_path, _settings_for_this_card(staged_settings, data), mode=mode)
        _chown(config_path, cfg_owner)
    staged_remote = staging / archive.REMOTE_SETTINGS
    if config_path is not None and staged_remote.exists():
        # The central console's changes go back with the settings they change.
        remote = settings_mod.remote_path(data)
        write_durably(remote, staged_remote.read_bytes(), mode=0o640)
        _chown(remote, owner)
    staged_db = staging / archive.DATABASE
    os.chmod(staged_db, FILE_MODE)
    _chown(staged_db, owner)
    if db_path.exists():
        # Fold the old database's WAL into it and keep it: its -wal must not meet the new file.
        old = sqlite3.connect(db_path)
        try:
            old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            old.close()
        keep = db_path.with_name(db_path.name + ".pre-restore")
        keep.unlink(missing_ok=True)
        os.link(db_path, keep)
    for suffix in ("-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    os.replace(staged_db, db_path)
    fsync_dir(data)
    # 4. Done.
    shutil.rmtree(staging, ignore_errors=True)
    marker.unlink()
    fsync_dir(data)
    for p in (data, media):
        os.chmod(p, DIR_MODE)
    log(f"restored hub {manifest['hub_id']}: {manifest['counts']} and {moved} media files")
    return manifest
