"""Turning a form's file field into stored media, with a message the user can read.

Uploads from phones and clerks are converted in one of ``conversion_slots``
shared by every web worker (hub.core.slots), after waiting in a line at most
``conversion_queue`` long; a full line is 503 at once. The wait and the
conversion together end within ``conversion_seconds``, below nginx's
timeout, so a phone never gets nginx's 504 for a message that is stored.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from hub.core import slots
from hub.core.media import MediaError
from hub.web.current import hub_context, hub_settings
from hub.web.i18n import _

#: Part of conversion_seconds an upload may spend waiting for a slot.
WAIT_SHARE = 1 / 3


def length_limit() -> str:
    """How long a recording may be, in words: "5 minutes", or "90 seconds"."""
    seconds = hub_settings().max_audio_seconds
    if seconds % 60 == 0:
        return _("%(minutes)s minutes", minutes=seconds // 60)
    return _("%(seconds)s seconds", seconds=seconds)


def media_message(error: MediaError) -> str:
    if error.code == "too_long":
        return _("That recording is too long. A recording may last at most %(limit)s; please record a shorter one.",
                 limit=length_limit())
    return {
        "not_audio": _("That file is not a sound recording. Please record your voice again."),
        "not_image": _("That file is not a picture. Please choose a photo."),
        "unreadable": _("That file is damaged or in a format the hub cannot play."),
    }.get(error.code, _("That file could not be used."))


def busy_message() -> str:
    return _("The hub is busy with other recordings. Nothing was saved; please send it again in a few minutes.")


def _received(field) -> bool:
    return field is not None and bool(field.filename or field.content_length)


def _spool(field, directory: str) -> Path:
    path = Path(directory) / "upload"
    field.save(path)
    return path


def _converting():
    """A conversion slot, and the monotonic time by which the conversion must end."""
    s = hub_settings()
    budget = float(s.conversion_seconds)
    start = time.monotonic()
    gate = slots.slot(s.data_dir / "slots", s.conversion_slots, s.conversion_queue, budget * WAIT_SHARE)
    return gate, start + budget


def prepare_audio(field) -> dict | None:
    """Convert an uploaded voice file; None when the field is empty. Raises MediaError, Busy, DiskFull."""
    if not _received(field):
        return None
    with tempfile.TemporaryDirectory(prefix="hub-upload-") as tmp:
        path = _spool(field, tmp)
        if path.stat().st_size == 0:
            return None
        s = hub_settings()
        gate, deadline = _converting()
        with gate:
            return hub_context().media.prepare_audio(path, s.max_audio_seconds, deadline,
                                                     min_free_bytes=s.min_free_mb * 1024 * 1024)


def prepare_image(field) -> dict | None:
    if not _received(field):
        return None
    with tempfile.TemporaryDirectory(prefix="hub-upload-") as tmp:
        path = _spool(field, tmp)
        if path.stat().st_size == 0:
            return None
        gate, deadline = _converting()
        with gate:
            return hub_context().media.prepare_image(path, deadline)


def discard(rows) -> None:
    for r in rows:
        if r:
            hub_context().media.discard(r["id"])
