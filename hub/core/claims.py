"""Claims on media items being written, so that a sweep can tell a dead writer's files from a busy one's.

Media files are written before the row that names them is committed (the
conversion is slow and stays outside any transaction). A process that dies in
between (a crash, a SIGKILL, a worker timeout, a power cut) leaves files no
row names. A writer therefore holds an flock on a claim file named by the
media id, in a folder of its own, from its first file until the row is
committed or the files are discarded. The kernel drops the lock when the
process dies, so whoever sweeps can remove a dead writer's files at once,
and leave alone those another process is still writing.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

#: Media ids this process holds a claim on, with the descriptor that holds each lock. Per
#: process, not per object: a context makes a new media store each time it is used.
_HELD: dict[str, int] = {}
_HELD_LOCK = threading.Lock()


class Claims:
    """The claim files in *directory* (made with *mode* when first needed)."""

    def __init__(self, directory: Path, mode: int = 0o750, file_mode: int = 0o640):
        self.dir = Path(directory)
        self.mode = mode
        self.file_mode = file_mode

    def take(self, media_id: str) -> None:
        """Claim *media_id* for this process until :meth:`release` (or the process ends)."""
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.dir, self.mode)
        fd = os.open(self.dir / media_id, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, self.file_mode)
        fcntl.flock(fd, fcntl.LOCK_EX)
        with _HELD_LOCK:
            _HELD[media_id] = fd

    def release(self, media_id: str) -> None:
        with _HELD_LOCK:
            fd = _HELD.pop(media_id, None)
        if fd is not None:
            (self.dir / media_id).unlink(missing_ok=True)
            os.close(fd)

    def release_committed(self, committed: Callable[[list[str]], Iterable[str]]) -> None:
        """Release the claims whose item *committed(ids)* says has its row now."""
        held = self.held_here()
        if held:
            for media_id in committed(sorted(held)):
                self.release(media_id)

    @staticmethod
    def held_here() -> set[str]:
        with _HELD_LOCK:
            return set(_HELD)

    def held_elsewhere(self, media_id: str) -> bool | None:
        """True while a living process holds the claim, False once its writer died, None if there is none."""
        try:
            fd = os.open(self.dir / media_id, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # and with it the lock just taken
        return False

    def remove_stale(self) -> None:
        """Remove claim files nobody holds any more (their writer died, or exited after its commit)."""
        if not self.dir.is_dir():
            return
        mine = self.held_here()
        for p in self.dir.iterdir():
            if p.name not in mine and self.held_elsewhere(p.name) is False:
                p.unlink(missing_ok=True)
