"""Where the central server keeps media files: one interface, the file system behind it.

Uploads from hubs arrive in chunks (resumable by offset) and become whole
files; officers' attachments are written in one piece. Every method takes a
server-made name, never a path. :class:`FileStorage` keeps them in one
directory, each write fsynced and each finished file renamed into place.

An object store (S3-compatible) would implement the same methods. None is
shipped, because none could be tested for real: PyPI offers S3 clients and
mocks (moto), not servers, and Debian 12's one S3 server, Ceph's radosgw,
needs a running Ceph cluster (monitors and storage daemons) behind it. A
backend only ever run against a mock is not one to trust with recordings.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from hub.core.files import fsync_dir, write_durably


class MediaStorage(Protocol):
    def append(self, name: str, offset: int, chunk: bytes) -> int: ...
    def sha256(self, name: str) -> str: ...
    def finish(self, part: str, name: str) -> None: ...
    def put(self, name: str, content: bytes) -> None: ...
    def read(self, name: str) -> bytes: ...
    def open(self, name: str) -> BinaryIO: ...
    def exists(self, name: str) -> bool: ...
    def delete(self, name: str) -> None: ...
    def names(self) -> Iterator[str]: ...
    def local_path(self, name: str) -> Path | None: ...
    def copy_to(self, other: MediaStorage, name: str) -> None: ...


class FileStorage:
    """Media files in one directory on the central server's disk."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"bad media name {name!r}")
        return self.root / name

    def append(self, name: str, offset: int, chunk: bytes) -> int:
        """Cut the file back to *offset*, add *chunk* durably; return the new length."""
        with open(self._path(name), "ab") as f:
            f.truncate(offset)
            f.seek(offset)
            f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
            return f.tell()

    def sha256(self, name: str) -> str:
        h = hashlib.sha256()
        with open(self._path(name), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    def finish(self, part: str, name: str) -> None:
        os.replace(self._path(part), self._path(name))
        fsync_dir(self.root)

    def put(self, name: str, content: bytes) -> None:
        write_durably(self._path(name), content)

    def read(self, name: str) -> bytes:
        return self._path(name).read_bytes()

    def open(self, name: str) -> BinaryIO:
        return open(self._path(name), "rb")

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def names(self) -> Iterator[str]:
        for p in sorted(self.root.iterdir()):
            if p.is_file() and not p.name.startswith("."):
                yield p.name

    def local_path(self, name: str) -> Path | None:
        return self._path(name)

    def copy_to(self, other: MediaStorage, name: str) -> None:
        if isinstance(other, FileStorage):
            shutil.copyfile(self._path(name), other._path(name))
        else:
            other.put(name, self.read(name))
