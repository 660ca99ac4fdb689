"""The backup archive: a tar file with a manifest, the database, the media and the settings.

::

    manifest.json   format and version, the hub's id and version, when it was made,
                    the migrations of the database, and the SHA-256 and size of every member
    hub.db          a consistent copy of the live database, made by SQLite's backup API
    hub.toml        the settings file (it holds the central token and the secret key)
    remote-settings.toml   the central console's changes to them, when there are any
    media/NAME      every media file the copied database names

The database is copied first; media files are only ever added under new names
and renamed into place, so every file the copy names is on disk when it is read.
The archive is written to a temporary file beside the target, fsynced and
renamed, so a target is either the old file or a whole new one. It holds the
hub's secrets, so it is readable by its owner only.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hub import __version__
from hub.core import db as dbmod
from hub.core import settings as settings_mod
from hub.core.db import utcnow
from hub.core.errors import HubError
from hub.core.files import fsync_dir, sha256_of

FORMAT = "commune-hub-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "hub.db"
SETTINGS = "hub.toml"
REMOTE_SETTINGS = settings_mod.REMOTE_FILE
MEDIA = "media/"
#: A backup is the owner's alone: it holds the central token and the secret key.
BACKUP_MODE = 0o600
#: Tables whose row counts go into the manifest, for the restore's own check and for people.
COUNTED = ("feedback", "notices", "media", "users", "transcripts", "announcements", "play_log", "sync_outbox")


class BackupError(HubError):
    """A backup cannot be made or read; the message says why in one line."""


@dataclass
class Made:
    path: Path
    manifest: dict
    bytes: int
    sha256: str


def snapshot_database(db_path: Path, out: Path) -> None:
    """Copy the live database with SQLite's backup API: one consistent state, WAL included."""
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=dbmod.BUSY_TIMEOUT_MS / 1000)
    dst = sqlite3.connect(out)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
    finally:
        dst.close()
        src.close()


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    tables = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
    return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in COUNTED if t in tables}


def _media_names(conn: sqlite3.Connection) -> list[str]:
    names = set()
    for row in conn.execute("select master_name, web_name, loud_name from media"):
        names.update(n for n in row if n)
    return sorted(names)


def estimated_bytes(settings) -> int:
    """About how big a backup of this hub is now: the database and the media folder."""
    total = 0
    for p in (settings.db_path, Path(str(settings.db_path) + "-wal")):
        if p.exists():
            total += p.stat().st_size
    if settings.media_dir.is_dir():
        total += sum(p.stat().st_size for p in settings.media_dir.iterdir() if p.is_file())
    return total


def target_file(target: Path, hub_id: str) -> Path:
    """A directory (a USB stick's folder) gets a dated file name; anything else is the file itself."""
    target = Path(target)
    if target.is_dir():
        stamp = utcnow().replace(":", "").replace("-", "")[:15]
        return target / f"hub-{hub_id[:8]}-{stamp}.tar"
    return target


def write(ctx, target: Path, log=lambda message: None) -> Made:
    """Write a backup of the hub *ctx* runs to *target* (a file, or a directory for a dated file)."""
    s = ctx.settings
    hub_id = ctx.hub_id
    path = target_file(target, hub_id)
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a directory")
    with tempfile.TemporaryDirectory(prefix=".hub-backup-", dir=path.parent) as work:
        snap = Path(work) / DATABASE
        snapshot_database(s.db_path, snap)
        conn = sqlite3.connect(snap)
        try:
            migrations = [r[0] for r in conn.execute(f"select name from {dbmod.MIGRATIONS_TABLE} order by rowid")]
            counts = _counts(conn)
            names = _media_names(conn)
        finally:
            conn.close()
        members: list[tuple[str, Path]] = [(DATABASE, snap)]
        if s.source is not None and Path(s.source).is_file():
            members.append((SETTINGS, Path(s.source)))
        remote = settings_mod.remote_path(s.data_dir)
        if remote.is_file():
            members.append((REMOTE_SETTINGS, remote))
        missing = []
        for name in names:
            p = s.media_dir / name
            if p.is_file():
                members.append((MEDIA + name, p))
            else:
                missing.append(name)
        files = {}
        for arcname, p in members:
            files[arcname] = {"sha256": sha256_of(p), "bytes": p.stat().st_size}
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "hub_version": __version__,
                    "hub_id": hub_id, "hub_name": s.hub_name, "made_at": utcnow(), "migrations": migrations,
                    "counts": counts, "missing_media": missing, "files": files}
        log(f"backing up {counts.get('feedback', 0)} feedback items and {len(names) - len(missing)} media files")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".tar", dir=path.parent)
        try:
            try:
                os.fchmod(fd, BACKUP_MODE)
            except PermissionError:
                pass  # a FAT USB stick has no permissions to set (mkstemp made it 0600 where it could)
            with os.fdopen(fd, "wb") as f:
                with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    data = (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode()
                    info = tarfile.TarInfo(MANIFEST)
                    info.size, info.mode = len(data), 0o600
                    tar.addfile(info, io.BytesIO(data))
                    for arcname, p in members:
                        info = tarfile.TarInfo(arcname)
                        info.size, info.mode = files[arcname]["bytes"], 0o600
                        with open(p, "rb") as src:
                            tar.addfile(info, src)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)
    return Made(path, manifest, path.stat().st_size, sha256_of(path))


def read_manifest(tar: tarfile.TarFile, name: str) -> dict:
    """The manifest, checked for format and version before anything else is read."""
    first = tar.next()
    if first is None or first.name != MANIFEST or not first.isfile() or first.size > 64 * 1024 * 1024:
        raise BackupError(f"{name} is not a hub backup (no manifest first)")
    try:
        manifest = json.loads(tar.extractfile(first).read())
    except (ValueError, OSError, tarfile.TarError):
        raise BackupError(f"{name} is damaged: its manifest cannot be read") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{name} is not a hub backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{name} is a backup of format {manifest.get('format_version')!r} (hub"
                          f" {manifest.get('hub_version', '?')}); this hub {__version__} reads format"
                          f" {FORMAT_VERSION} only")
    if not isinstance(manifest.get("files"), dict) or DATABASE not in manifest["files"]:
        raise BackupError(f"{name} is damaged: its manifest lists no database")
    return manifest


def _safe_member(name: str) -> bool:
    if name in (DATABASE, SETTINGS, REMOTE_SETTINGS):
        return True
    rest = name[len(MEDIA):]
    return name.startswith(MEDIA) and rest and "/" not in rest and not rest.startswith(".")


def extract_checked(path: Path, into: Path) -> dict:
    """Unpack the backup at *path* into the empty directory *into*, checking every member.

    Every member must be one the manifest lists, with its size and SHA-256; every
    listed member must be there. Anything else raises :class:`BackupError`.
    """
    path = Path(path)
    try:
        tar = tarfile.open(path, mode="r:")
    except (OSError, tarfile.TarError) as e:
        raise BackupError(f"{path} cannot be read as a hub backup: {e}") from None
    with tar:
        try:
            manifest = read_manifest(tar, str(path))
            files = manifest["files"]
            seen = set()
            while (member := tar.next()) is not None:
                name = member.name
                if not member.isfile() or name not in files or not _safe_member(name) or name in seen:
                    raise BackupError(f"{path} is damaged or foreign: unexpected member {name!r}")
                out = into / name
                out.parent.mkdir(parents=True, exist_ok=True)
                h = hashlib.sha256()
                size = 0
                src = tar.extractfile(member)
                with open(out, "wb") as f:
                    while block := src.read(1 << 20):
                        h.update(block)
                        size += len(block)
                        f.write(block)
                    f.flush()
                    os.fsync(f.fileno())
                if size != files[name]["bytes"] or h.hexdigest() != files[name]["sha256"]:
                    raise BackupError(f"{path} is damaged: {name} does not match its checksum")
                seen.add(name)
        except (OSError, tarfile.TarError, EOFError) as e:
            raise BackupError(f"{path} is damaged: {e}") from None
    missing = set(files) - seen
    if missing:
        raise BackupError(f"{path} is damaged or cut short: {len(missing)} members are missing,"
                          f" e.g. {sorted(missing)[0]}")
    return manifest


# --- when the last backup was made (for `hub doctor` and the health report) ---------------

LAST_KEY = {"local": "last_backup", "central": "last_central_backup"}


def record_made(db, where: str, made_at: str, detail: str) -> None:
    """Remember the newest backup made *where* ("local": a file, "central": the central server)."""
    value = json.dumps({"at": made_at, "detail": detail}, ensure_ascii=False)
    with dbmod.transaction(db) as conn:
        conn.execute("insert into hub_state (key, value) values (?, ?)"
                     " on conflict (key) do update set value = excluded.value", (LAST_KEY[where], value))


def last_made(db) -> dict[str, dict]:
    """{"local": {"at", "detail"}, "central": ...} for the backups made so far."""
    out = {}
    for where, key in LAST_KEY.items():
        row = db.conn.execute("select value from hub_state where key = ?", (key,)).fetchone()
        if row:
            try:
                out[where] = json.loads(row[0])
            except ValueError:
                continue
    return out
