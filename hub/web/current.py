"""What the app serving this request holds: the hub's context and settings, the language, static addresses.

Every blueprint reads these; they stand apart from :func:`hub.web.create_app` so
the blueprints it registers need not import it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import current_app, g

STATIC_DIR = Path(__file__).parent / "static"
#: Nothing may load from outside the hub, even if a notice's text tried. The app sends it,
#: and nginx with the cached pages (hub.net.pages).
CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self';"
       " script-src 'self'; form-action 'self'; frame-ancestors 'none'")


def proxy_body_mb(settings) -> int:
    """nginx's body limit: twice the app's, and a megabyte more.

    A body between the two reaches the app, which refuses it with the form again and the
    villager's typed text kept (hub.web.errors); only a body past this gets nginx's own page.
    """
    return 2 * settings.max_upload_mb + 1


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
