"""What a phone asks of a site besides its pages: the favicon, and the manifest for "add to home screen"."""

from __future__ import annotations

from flask import Blueprint, jsonify, send_from_directory

from hub.core.site import STATIC_DIR
from hub.web.current import hub_settings, static_url
from hub.web.i18n import _

bp = Blueprint("appinfo", __name__)


@bp.route("/favicon.ico")
def favicon():
    resp = send_from_directory(STATIC_DIR, "favicon.ico", mimetype="image/x-icon", max_age=7 * 86400)
    return resp


@bp.route("/manifest.webmanifest")
def manifest():
    name = hub_settings().hub_name or _("Commune hub")
    resp = jsonify({
        "name": name,
        "short_name": name,
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#f6f4ef",
        "theme_color": "#0b5394",
        "icons": [
            {"src": static_url("icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": static_url("icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {"src": static_url("icon.svg"), "sizes": "any", "type": "image/svg+xml"},
        ],
    })
    resp.content_type = "application/manifest+json"
    resp.headers["Cache-Control"] = "public, max-age=86400"
    return resp
