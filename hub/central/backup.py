"""Backups of the central server: the database (SQLite's backup API or pg_dump) and every media file.

A backup is a directory::

    manifest.json     what was saved, when, from which backend, how many records and files
    central.db        SQLite: a consistent copy made by the backup API while the server runs
    central.pgdump    PostgreSQL: pg_dump's custom format, one consistent snapshot
    media/            every media file, by its stored name

Restore puts a backup into the store its settings name (the backends must
match) and checks the counts against the manifest.
"""

from __future__ import annotations

import glob
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

from hub.central import database
from hub.central.storage import FileStorage
from hub.central.store import CentralError, CentralStore
from hub.core.db import utcnow


def _tool(name: str) -> str:
    """pg_dump and pg_restore of the newest PostgreSQL installed (Debian keeps them per version)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise CentralError(f"{name} not found: install Debian's postgresql-client")
    return path


def _counts(store: CentralStore) -> dict[str, int]:
    return {t: store.db.conn.execute(f"select count(*) from {t}").fetchone()[0]
            for t in ("hubs", "records", "publications", "files", "uploads", "users")}


def backup(store: CentralStore, target: Path) -> dict:
    """Write a backup of *store* into the new directory *target*; return its manifest."""
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise CentralError(f"{target} is not empty")
    (target / "media").mkdir(parents=True, exist_ok=True)
    counts = _counts(store)
    if store.backend == database.POSTGRESQL:
        r = subprocess.run([_tool("pg_dump"), "--format=custom", "--no-owner", "--file",
                            str(target / "central.pgdump"), store.database_url],
                           capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise CentralError(f"pg_dump failed: {r.stderr.strip()[-300:]}")
    else:
        src = sqlite3.connect(store.path)
        dst = sqlite3.connect(target / "central.db")
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    # Files are only added and renamed into place, so copying after the database
    # dump holds every file it names (and maybe a few newer ones).
    out = FileStorage(target / "media")
    media = 0
    for name in store.media.names():
        if name.endswith(".part"):
            continue
        store.media.copy_to(out, name)
        media += 1
    manifest = {"made_at": utcnow(), "backend": store.backend, "counts": counts, "media_files": media}
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def restore(store: CentralStore, source: Path) -> dict:
    """Put the backup in *source* into *store*, which must be empty; return the manifest."""
    source = Path(source)
    try:
        manifest = json.loads((source / "manifest.json").read_text())
    except (OSError, ValueError):
        raise CentralError(f"{source} is not a central server backup (no manifest.json)") from None
    if manifest["backend"] != store.backend:
        raise CentralError(f"this backup is of a {manifest['backend']} database; the settings name a"
                           f" {store.backend} one")
    if store.db.conn.execute("select count(*) from records").fetchone()[0] or \
            store.db.conn.execute("select count(*) from hubs").fetchone()[0]:
        raise CentralError("the database to restore into already holds hubs or records")
    if store.backend == database.POSTGRESQL:
        store.close()
        r = subprocess.run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
                            "--dbname", store.database_url, str(source / "central.pgdump")],
                           capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise CentralError(f"pg_restore failed: {r.stderr.strip()[-300:]}")
    else:
        store.close()
        src = sqlite3.connect(source / "central.db")
        dst = sqlite3.connect(store.path)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    media = FileStorage(source / "media")
    for name in media.names():
        media.copy_to(store.media, name)
    got = _counts(store)
    if got != manifest["counts"]:
        raise CentralError(f"restored counts {got} differ from the backup's {manifest['counts']}")
    return manifest
