"""The web app: the villager portal and the clerk console (``create_app``)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from flask import Flask, g, request

STATIC_DIR = Path(__file__).parent / "static"
#: Blueprints, in registration order. Each module has a ``bp``.
BLUEPRINTS = (
    "hub.web.captive",
    "hub.web.portal",
    "hub.web.media",
    "hub.web.clerk",
    "hub.web.clerk_notices",
    "hub.web.clerk_feedback",
    "hub.web.clerk_sync",
    "hub.web.clerk_announcements",
    "hub.web.clerk_voice",
)


def create_app(settings=None, context=None) -> Flask:
    """Build the app for *settings* (default: loaded from file and environment)."""
    import importlib

    from hub.context import open_context
    from hub.web import i18n, security

    if settings is None:
        from hub import settings as settings_mod

        settings = settings_mod.load()
    ctx = context or open_context(settings)
    ctx.media.sweep()

    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config.update(
        SECRET_KEY=ctx.secret_key(),
        MAX_CONTENT_LENGTH=settings.max_upload_mb * 1024 * 1024,
        SESSION_COOKIE_NAME="hub_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        SEND_FILE_MAX_AGE_DEFAULT=timedelta(days=365),
        HUB_SETTINGS=settings,
        HUB_CONTEXT=ctx,
    )
    if settings.behind_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=0)

    app.extensions["static_versions"] = _static_versions()
    i18n.init_app(app)
    security.init_app(app)
    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).bp)

    @app.teardown_appcontext
    def _close(exc):
        pass

    @app.after_request
    def _headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        # Nothing may load from outside the hub, even if a notice's text tried.
        resp.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self';"
            " script-src 'self'; form-action 'self'; frame-ancestors 'none'",
        )
        if request.path.startswith("/clerk"):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.context_processor
    def _globals():
        from hub.web.i18n import gettext
        from hub.web.icons import icon

        return {"static_url": static_url, "icon": icon,
                "hub_name": settings.hub_name or gettext("Commune hub")}

    return app


def _static_versions() -> dict[str, str]:
    out = {}
    for p in STATIC_DIR.rglob("*"):
        if p.is_file():
            out[p.relative_to(STATIC_DIR).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()[:10]
    return out


def static_url(filename: str) -> str:
    """A static file's address with its content hash, so it can be cached for a year."""
    from flask import current_app

    version = current_app.extensions["static_versions"].get(filename, "0")
    return f"/static/{filename}?v={version}"


def hub_context():
    from flask import current_app

    return current_app.config["HUB_CONTEXT"]


def hub_settings():
    from flask import current_app

    return current_app.config["HUB_SETTINGS"]


def lang() -> str:
    return g.get("lang", "km")
