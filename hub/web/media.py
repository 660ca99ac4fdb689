"""Serving stored media: only files the database knows, never as HTML."""

from __future__ import annotations

from flask import Blueprint, abort, send_file

from hub.web.current import hub_context

bp = Blueprint("media", __name__)


@bp.route("/media/<name>")
def media_file(name: str):
    ctx = hub_context()
    row = ctx.media.by_web_name(name)
    if row is None:
        abort(404)
    path = ctx.media.path(row["web_name"])
    if not path.exists():
        abort(404)
    resp = send_file(path, mimetype=row["web_type"], conditional=True, max_age=365 * 86400)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Disposition"] = "inline"
    resp.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return resp
