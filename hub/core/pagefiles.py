"""The folder of cached villager pages that nginx serves, and which version of the notices it holds.

``DATA_DIR/pages/live`` is a symlink to ``v<N>.<tag>``, the folder for version N
of the notices (``page_versions``, bumped by triggers in the writer's own
transaction). A writer of notices calls :func:`refresh` after its commit: it
points ``live`` at a new, empty folder in one rename, so nginx never serves a
page of the old version again, and removes the old folders. A page rendered
from version N is only ever written into the folder of version N, so a page
that raced a write lands in a folder nobody serves. The pages themselves are
written by :mod:`hub.web.pagecache`.

The folders are 0750 and the files 0640 whatever the umask: nginx's workers
(www-data, in the hub's group) read them, nobody else.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

LIVE = "live"
DIR_MODE = 0o750
FILE_MODE = 0o640


def pages_dir(settings) -> Path:
    return Path(settings.data_dir) / "pages"


def read_version(conn: sqlite3.Connection) -> int:
    """The notices' version now; 0 on a database without the table (before 0009)."""
    try:
        row = conn.execute("select version from page_versions where name = 'notices'").fetchone()
    except sqlite3.OperationalError:
        return 0
    return row[0] if row else 0


def live_version(root: Path) -> tuple[int, Path] | None:
    """(version, folder) that ``live`` points at, or None when there is none yet."""
    try:
        target = os.readlink(root / LIVE)
    except OSError:
        return None
    name = Path(target).name
    try:
        return int(name[1:].split(".", 1)[0]), root / name
    except ValueError:
        return None


def _make_dir(path: Path) -> None:
    path.mkdir(exist_ok=True)
    os.chmod(path, DIR_MODE)


def publish(root: Path, version: int, fresh: bool = False) -> Path:
    """Point ``live`` at an empty folder for *version* unless it already serves it (or newer).

    *fresh* replaces the folder even for the same version (a restarted web
    server has lost the timers that take expired notices off its pages).
    """
    _make_dir(root.parent)
    _make_dir(root)
    with open(root / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = live_version(root)
        if current and (current[0] > version or (current[0] == version and not fresh)):
            return current[1]
        folder = root / f"v{version}.{secrets.token_hex(4)}"
        _make_dir(folder)
        link = root / f".live-{secrets.token_hex(4)}"
        os.symlink(folder.name, link)
        os.replace(link, root / LIVE)
        for old in root.iterdir():
            if old.name.startswith("v") and old != folder:
                shutil.rmtree(old, ignore_errors=True)
        return folder


def refresh(ctx) -> None:
    """After a committed write of notices: nginx serves no page of the old version from now on."""
    _refresh(pages_dir(ctx.settings), ctx.db.conn)


def refresh_beside(conn: sqlite3.Connection) -> None:
    """:func:`refresh` for a writer that holds only a connection: the pages sit beside the database."""
    row = conn.execute("pragma database_list").fetchone()
    if row and row[2]:
        _refresh(Path(row[2]).parent / "pages", conn)


def _refresh(root: Path, conn: sqlite3.Connection) -> None:
    if root.exists():
        try:
            publish(root, read_version(conn))
        except OSError as e:
            # A full disk: no new folder, so no folder at all; nginx then asks the app.
            log.warning("cached pages: %s; nginx sends every page to the app", e)
            withdraw(root)


def withdraw(root: Path) -> None:
    """Take ``live`` away (a removal needs no free space): nginx sends every page to the app."""
    try:
        os.unlink(root / LIVE)
    except FileNotFoundError:
        pass


def write_page(folder: Path, relative: str, body: bytes) -> None:
    """Write one page into *folder* in one rename; a folder removed meanwhile is no error."""
    path = folder / relative
    try:
        for parent in reversed(path.relative_to(folder).parents[:-1]):
            _make_dir(folder / parent)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        # No fsync: a page lost to a power cut is rendered again, and the SD card is spared.
        os.replace(tmp, path)
    except FileNotFoundError:
        pass  # the folder of a version nobody serves any more
    except OSError as e:
        # A full disk keeps serving notices: from the app's memory instead of a file.
        log.warning("cached page %s not written: %s", relative, e)
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass


def drop(folder: Path, relatives: list[str]) -> None:
    for rel in relatives:
        try:
            (folder / rel).unlink()
        except FileNotFoundError:
            pass
