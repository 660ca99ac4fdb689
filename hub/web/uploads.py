"""Turning a form's file field into stored media, with a message the user can read."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hub.core.media import MediaError
from hub.web.current import hub_context, hub_settings
from hub.web.i18n import _


def media_message(error: MediaError) -> str:
    return {
        "not_audio": _("That file is not a sound recording. Please record your voice again."),
        "not_image": _("That file is not a picture. Please choose a photo."),
        "too_long": _("That recording is too long. Please keep it under five minutes."),
        "unreadable": _("That file is damaged or in a format the hub cannot play."),
    }.get(error.code, _("That file could not be used."))


def _received(field) -> bool:
    return field is not None and bool(field.filename or field.content_length)


def _spool(field, directory: str) -> Path:
    path = Path(directory) / "upload"
    field.save(path)
    return path


def prepare_audio(field) -> dict | None:
    """Convert an uploaded voice file; None when the field is empty. Raises MediaError."""
    if not _received(field):
        return None
    with tempfile.TemporaryDirectory(prefix="hub-upload-") as tmp:
        path = _spool(field, tmp)
        if path.stat().st_size == 0:
            return None
        return hub_context().media.prepare_audio(path, hub_settings().max_audio_seconds)


def prepare_image(field) -> dict | None:
    if not _received(field):
        return None
    with tempfile.TemporaryDirectory(prefix="hub-upload-") as tmp:
        path = _spool(field, tmp)
        if path.stat().st_size == 0:
            return None
        return hub_context().media.prepare_image(path)


def discard(rows) -> None:
    for r in rows:
        if r:
            hub_context().media.discard(r["id"])
