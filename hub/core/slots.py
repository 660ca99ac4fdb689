"""A few slots shared by every process of the hub: how many conversions run at once, and how many wait.

A slot is a lock file in a folder of the data directory, held with
``flock`` for as long as the work runs. Locks belong to open files, so the
count holds across gunicorn's worker processes and their threads alike, and
a process that dies gives its slots back at once: nothing to clean up after
a crash or a power cut.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from hub.core.errors import Busy


def _take(directory: Path, kind: str, count: int) -> int | None:
    """An open, locked descriptor of one free slot of *kind*, or None when all are held."""
    for i in range(count):
        fd = os.open(directory / f"{kind}-{i}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            os.close(fd)
    return None


@contextlib.contextmanager
def slot(directory: Path, running: int, waiting: int, wait_seconds: float,
         poll: float = 0.05) -> Iterator[None]:
    """Run the block in one of *running* slots, after waiting at most *wait_seconds* in line.

    At most *waiting* callers wait at once. Raises :class:`Busy` when the line
    is full, or when no slot came free in time.
    """
    directory = Path(directory)
    directory.mkdir(mode=0o750, parents=True, exist_ok=True)
    fd = _take(directory, "run", running)
    if fd is None:
        ticket = _take(directory, "wait", waiting)
        if ticket is None:
            raise Busy("every conversion slot is taken and the line is full")
        try:
            deadline = time.monotonic() + wait_seconds
            while fd is None:
                if time.monotonic() >= deadline:
                    raise Busy("no conversion slot came free in time")
                time.sleep(poll)
                fd = _take(directory, "run", running)
        finally:
            os.close(ticket)
    try:
        yield
    finally:
        os.close(fd)
