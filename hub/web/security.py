"""CSRF on every POST, clerk login, and the staff-side check for the console."""

from __future__ import annotations

import functools
import hmac
import ipaddress
import secrets

from flask import abort, g, redirect, render_template, request, session, url_for

from hub import accounts
from hub.web.current import hub_context, hub_settings
from hub.web.i18n import _
from hub.web.pagecache import same_origin_form

CSRF_FIELD = "csrf_token"


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        session["csrf"] = token
    return token


def init_app(app) -> None:
    @app.before_request
    def _check_csrf():
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            if same_origin_form():
                return None  # a villager form of a cached page: see hub.web.pagecache
            sent = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token") or ""
            expected = session.get("csrf") or ""
            if not expected or not hmac.compare_digest(sent, expected):
                return render_template(
                    "message.html", title=_("This form has expired"),
                    message=_("Please go back, reload the page and send it again."),
                ), 400

    @app.before_request
    def _load_user():
        g.user = None
        uid = session.get("user_id")
        if uid:
            g.user = accounts.get_user(hub_context().db, uid)
            if g.user is None:
                session.pop("user_id", None)

    @app.context_processor
    def _security():
        return {"csrf_token": csrf_token, "user": g.get("user")}


def client_address() -> str:
    return request.remote_addr or "unknown"


def on_staff_side() -> bool:
    networks = hub_settings().staff_networks
    if not networks:
        return True
    try:
        addr = ipaddress.ip_address(client_address())
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(n, strict=False) for n in networks)


def login_required(view=None, role: str | None = None):
    if view is None:
        return functools.partial(login_required, role=role)

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not on_staff_side():
            abort(404)
        if g.get("user") is None:
            return redirect(url_for("clerk.login", next=request.full_path.rstrip("?")))
        if role and g.user["role"] != role:
            abort(403)
        return view(*args, **kwargs)

    return wrapped
