"""`hub backup` and `hub restore`: a technician's copy of the whole hub, and putting it on a new card."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hub.backup import archive, restore
from hub.core import settings as settings_mod
from hub.core.context import Context, open_context
from hub.core.daemon import load_settings
from hub.core.errors import HubError
from hub.migrations import MIGRATIONS

TARGET = "hub.target"


def register(sub) -> None:
    p = sub.add_parser(
        "backup", help="write a consistent copy of the whole hub (database, media, settings, keys) to a file",
        description="Writes one archive with the database (SQLite's backup API, safe while the hub runs),"
        " every media file, the settings file with its keys, and a manifest with checksums. TARGET is a"
        " file, or a folder (a USB stick) for a dated file in it. The archive holds the hub's secrets:"
        " keep it safe.")
    p.add_argument("target", metavar="FILE|DIR", nargs="?", default=".",
                   help="where to write (default: a dated file in the current folder)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser(
        "restore", help="put a backup onto this hub (a new card): the same id, records, receipts and media",
        description="Checks the whole backup first (every checksum, its format and version); a damaged or"
        " foreign backup is refused and nothing changes. As root on a hub it stops hub.target, restores,"
        " and starts it again. The old database and settings are kept beside the new ones (*.pre-restore).")
    p.add_argument("file", metavar="FILE", help="a backup made by `hub backup` or fetched from the central server")
    p.add_argument("--force", action="store_true",
                   help="replace a hub that already holds notices or feedback")
    p.add_argument("--keep-settings", action="store_true",
                   help="keep this card's settings file instead of the backup's")
    p.set_defaults(func=cmd_restore)


def cmd_backup(args) -> int:
    settings = load_settings(args)
    ctx = open_context(settings, MIGRATIONS, migrate=False)
    try:
        made = archive.write(ctx, Path(args.target))
        archive.record_made(ctx.db, "local", made.manifest["made_at"], str(made.path))
    finally:
        ctx.close()
    m = made.manifest
    print(f"backup of hub {m['hub_id']} written to {made.path}: {made.bytes} bytes, sha256 {made.sha256},"
          f" {m['counts'].get('feedback', 0)} feedback items, {len(m['files']) - 1} files")
    if m["missing_media"]:
        print(f"warning: {len(m['missing_media'])} media files named in the database were not on disk")
    return 0


def _systemd_hub() -> bool:
    """Running as root on a hub booted by systemd, with the hub's units installed."""
    return os.geteuid() == 0 and Path("/run/systemd/system").is_dir() and \
        any(Path(d, TARGET).exists() for d in ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"))


def _systemctl(*args: str) -> None:
    r = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise HubError(f"systemctl {' '.join(args)} failed: {(r.stderr or r.stdout).strip()[:300]}")


def cmd_restore(args) -> int:
    settings = load_settings(args)
    if not Path(args.file).is_file():
        raise HubError(f"{args.file} is not a file")
    config = None if args.keep_settings else Path(args.config or settings.source or settings_mod.default_config_path())
    managed = _systemd_hub()
    if managed:
        print(f"stopping {TARGET}", flush=True)
        _systemctl("stop", TARGET)
    try:
        manifest = restore.restore(settings, Path(args.file), MIGRATIONS, config, force=args.force,
                                   log=lambda m: print(m, flush=True))
        restored = settings_mod.load(str(config)) if config is not None and config.exists() else settings
        ctx = Context(restored)
        try:
            archive.record_made(ctx.db, "local", manifest["made_at"], f"restored from {args.file}")
        finally:
            ctx.close()
        if os.geteuid() == 0:
            owner = os.stat(settings.data_dir)
            for p in Path(settings.data_dir).glob("hub.db*"):
                os.chown(p, owner.st_uid, owner.st_gid)
    finally:
        if managed:
            print(f"starting {TARGET}", flush=True)
            _systemctl("start", TARGET)
    print(f"hub {manifest['hub_id']} restored from {args.file}")
    return 0
