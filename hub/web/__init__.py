"""The web app: the villager portal and the clerk console (``create_app``)."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from hub.core import settings as settings_mod
from hub.core.context import open_context
from hub.core.site import CSP, STATIC_DIR
from hub.migrations import MIGRATIONS
from hub.web import (
    appinfo,
    captive,
    clerk,
    clerk_announcements,
    clerk_feedback,
    clerk_notices,
    clerk_poster,
    clerk_sync,
    clerk_voice,
    console,
    errors,
    i18n,
    media,
    mine,
    pagecache,
    portal,
    security,
    voice,
)
from hub.web.current import static_url, static_versions
from hub.web.i18n import gettext
from hub.web.icons import icon

#: Blueprints, in registration order.
BLUEPRINTS = (
    captive.bp,
    portal.bp,
    media.bp,
    clerk.bp,
    clerk_notices.bp,
    clerk_feedback.bp,
    clerk_sync.bp,
    clerk_announcements.bp,
    clerk_voice.bp,
    voice.bp,
    mine.bp,
    appinfo.bp,
    clerk_poster.bp,
    console.bp,
)


def create_app(settings=None, context=None) -> Flask:
    """Build the app for *settings* (default: loaded from file and environment)."""
    if settings is None:
        settings = settings_mod.load()
    ctx = context or open_context(settings, MIGRATIONS)
    ctx.media.sweep()
    ctx.media.measure_images()

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
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=0)

    app.extensions["static_versions"] = static_versions()
    i18n.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    pagecache.init_app(app)

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
            "Content-Security-Policy", CSP)
        if request.path.startswith("/clerk"):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.context_processor
    def _globals():
        return {"static_url": static_url, "icon": icon,
                "hub_name": settings.hub_name or gettext("Commune hub")}

    errors.render_static_pages(app)
    return app
