"""Files that survive a power cut: directories with their mode, writes that leave old or new, checksums.

The floor's own helpers for whatever the hub keeps on the SD card (media,
settings, state files, backups); nothing here knows what the files hold.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

FILE_MODE = 0o640
DIR_MODE = 0o750


def make_dir(directory: Path, mode: int = DIR_MODE) -> Path:
    """Create *directory* (and missing parents) with *mode*, whatever the umask.

    mkdir's mode passes through the umask, so the mode is set again afterwards;
    a directory of ours that already exists gets its mode back too.
    """
    directory = Path(directory)
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    directory.mkdir(parents=True, exist_ok=True)
    for d in [*missing, directory]:
        st = d.stat()
        if st.st_uid == os.geteuid() and (st.st_mode & 0o7777) != mode:
            os.chmod(d, mode)
    return directory


def write_durably(path: Path, data: bytes | None = None, source: Path | None = None,
                  mode: int = FILE_MODE) -> None:
    """Write *data* (or copy *source*) to *path* so that a power cut leaves old or new, never half.

    The file gets *mode* (mkstemp makes 0600, which nginx could not read).
    """
    if not path.parent.is_dir():
        make_dir(path.parent)
    # The temporary name starts with the final one, so a sweep knows whose it is.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}.", suffix=path.suffix)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            if source is not None:
                with open(source, "rb") as src:
                    shutil.copyfileobj(src, f, 1 << 20)
            else:
                f.write(data or b"")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
