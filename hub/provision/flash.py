"""`hub flash`: write an image to a card, then read it back and compare.

Raspberry Pi OS images come as ``.img``, ``.img.xz`` or ``.img.gz``; the
compressed ones are decompressed on the fly. The SHA-256 of what was written
is compared with the SHA-256 of the same number of bytes read back from the
card, after the kernel's cached copy has been dropped, so a card that lies
about its writes (a common fault of counterfeit cards) is caught.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from hub.core.errors import HubError
from hub.provision.image import check_writable_target

CHUNK = 4 * 1024 * 1024


class FlashError(HubError):
    """Writing or verifying the card failed."""


def open_image(path: Path) -> tuple[BinaryIO, int | None]:
    """The image's bytes as a stream, and their size when known in advance."""
    try:
        if path.suffix == ".xz":
            return lzma.open(path, "rb"), None
        if path.suffix == ".gz":
            return gzip.open(path, "rb"), None
        return open(path, "rb"), path.stat().st_size
    except OSError as e:
        raise FlashError(f"image {path}: {e.strerror}") from None


def device_size(fd: int) -> int:
    return os.lseek(fd, 0, os.SEEK_END)


class Progress:
    """A progress bar on a terminal; a line every 10 % otherwise (logs, tests)."""

    def __init__(self, label: str, total: int | None, out=None):
        self.label = label
        self.total = total
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.start = time.monotonic()
        self.last_step = -1

    def update(self, done: int) -> None:
        mb = done / 1e6
        rate = mb / max(time.monotonic() - self.start, 1e-6)
        if self.total:
            frac = min(done / self.total, 1.0)
            if self.tty:
                bar = "#" * int(frac * 30)
                self.out.write(f"\r{self.label} [{bar:<30}] {frac:4.0%} {mb:,.0f}/"
                               f"{self.total / 1e6:,.0f} MB {rate:,.1f} MB/s")
            else:
                step = int(frac * 10)
                if step == self.last_step:
                    return
                self.last_step = step
                self.out.write(f"{self.label} {frac:4.0%} {mb:,.0f} MB\n")
        elif self.tty:
            self.out.write(f"\r{self.label} {mb:,.0f} MB {rate:,.1f} MB/s")
        self.out.flush()

    def done(self, total: int) -> None:
        self.total = self.total or total
        if self.tty:
            self.update(total)
            self.out.write("\n")
        elif self.last_step != 10:
            self.update(total)
        self.out.flush()


def write_image(image: Path, device: str, out=None,
                after_write: Callable[[], None] | None = None) -> str:
    """Write *image* to *device* and verify it; return the SHA-256 of the image."""
    check_writable_target(device)
    if not os.path.exists(device) and os.path.realpath(device).startswith("/dev/"):
        raise FlashError(f"{device}: no such device (is the card inserted?)")
    source, size = open_image(image)
    is_block = os.path.exists(device) and stat.S_ISBLK(os.stat(device).st_mode)
    flags = os.O_WRONLY | (0 if is_block else os.O_CREAT)
    try:
        fd = os.open(device, flags, 0o644)
    except OSError as e:
        raise FlashError(f"{device}: {e.strerror}") from None
    digest = hashlib.sha256()
    written = 0
    try:
        if is_block and size is not None and device_size(fd) < size:
            raise FlashError(f"{device} holds {device_size(fd) / 1e9:.1f} GB;"
                             f" the image needs {size / 1e9:.1f} GB")
        os.lseek(fd, 0, os.SEEK_SET)
        progress = Progress("writing", size, out)
        with source:
            while True:
                try:
                    chunk = source.read(CHUNK)
                except (OSError, EOFError, lzma.LZMAError) as e:
                    raise FlashError(f"image {image}: cannot be read ({e})") from None
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    try:
                        n = os.write(fd, view)
                    except OSError as e:
                        raise FlashError(f"{device}: write failed at byte {written}:"
                                         f" {e.strerror}") from None
                    view = view[n:]
                    written += n
                digest.update(chunk)
                progress.update(written)
        if not is_block:
            os.ftruncate(fd, written)
        os.fsync(fd)
        progress.done(written)
    finally:
        os.close(fd)
    if after_write is not None:
        after_write()
    verify(device, written, digest.hexdigest(), out)
    return digest.hexdigest()


def check_published_digest(image: Path) -> Path | None:
    """Compare *image* with the ``IMAGE.sha256`` beside it (``sha256sum`` format), if any.

    That file is made with the image (``make image``): a download cut short or
    damaged is refused before anything is written. Returns the file compared with.
    """
    sidecar = image.with_name(image.name + ".sha256")
    if not sidecar.is_file():
        return None
    try:
        words = sidecar.read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError) as e:
        raise FlashError(f"{sidecar}: cannot be read ({e})") from None
    if not words or len(words[0]) != 64:
        raise FlashError(f"{sidecar}: not a SHA-256 file (sha256sum format)")
    digest = hashlib.sha256()
    try:
        with open(image, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    except OSError as e:
        raise FlashError(f"image {image}: {e.strerror}") from None
    if digest.hexdigest() != words[0].lower():
        raise FlashError(f"image {image}: its SHA-256 differs from {sidecar.name};"
                         " the file is damaged or incomplete — download or copy it again")
    return sidecar


def image_digest(image: Path) -> tuple[int, str]:
    """Length and SHA-256 of an image's (decompressed) bytes."""
    source, _ = open_image(image)
    digest = hashlib.sha256()
    n = 0
    with source:
        try:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                n += len(chunk)
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise FlashError(f"image {image}: cannot be read ({e})") from None
    return n, digest.hexdigest()


def verify(device: str, length: int, expected: str, out=None) -> None:
    """Read *length* bytes back from *device*; raise FlashError unless they hash to *expected*."""
    try:
        fd = os.open(device, os.O_RDONLY)
    except OSError as e:
        raise FlashError(f"{device}: {e.strerror}") from None
    try:
        # Drop the cached copy so the bytes come from the card, not from memory.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        digest = hashlib.sha256()
        progress = Progress("verifying", length, out)
        done = 0
        while done < length:
            chunk = os.read(fd, min(CHUNK, length - done))
            if not chunk:
                break
            digest.update(chunk)
            done += len(chunk)
            progress.update(done)
        progress.done(done)
    finally:
        os.close(fd)
    if done < length:
        raise FlashError(f"{device}: only {done} of {length} bytes could be read back")
    if digest.hexdigest() != expected:
        raise FlashError(f"{device}: what was read back differs from the image;"
                         " the card is faulty or was removed — use another card")
