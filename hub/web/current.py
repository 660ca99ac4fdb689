"""What the app serving this request holds: the hub's context and settings, the language, static addresses.

Every blueprint reads these; they stand apart from :func:`hub.web.create_app` so
the blueprints it registers need not import it.
"""

from __future__ import annotations

import hashlib

from flask import current_app, g

from hub.core.site import STATIC_DIR


def static_versions() -> dict[str, str]:
    out = {}
    for p in STATIC_DIR.rglob("*"):
        if p.is_file():
            out[p.relative_to(STATIC_DIR).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()[:10]
    return out


def static_url(filename: str) -> str:
    """A static file's address with its content hash, so it can be cached for a year."""
    version = current_app.extensions["static_versions"].get(filename, "0")
    return f"/static/{filename}?v={version}"


def hub_context():
    return current_app.config["HUB_CONTEXT"]


def hub_settings():
    return current_app.config["HUB_SETTINGS"]


def lang() -> str:
    return g.get("lang", "km")
