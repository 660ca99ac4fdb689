"""CSRF on every POST, clerk sessions, and which side of the hub a request came from.

The console is staff-only: a request for it must come from a staff network
(``staff_networks``, by default the staff LAN's and staff Wi-Fi's subnets
and the hub itself), and, behind nginx, through nginx's staff server block
(``X-Hub-Side: staff``, a header nginx sets on every request it passes).
Anything else, the villagers' side or an address the hub does not know,
gets a 404, as if there were no console.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import secrets

from flask import abort, current_app, g, redirect, render_template, request, session, url_for

from hub import accounts
from hub.net.plan import staff_networks
from hub.web.current import hub_context, hub_settings
from hub.web.i18n import _
from hub.web.pagecache import same_origin_form

CSRF_FIELD = "csrf_token"
#: Paths only the staff side may reach.
STAFF_PREFIX = "/clerk"
#: The header nginx sets to the server block a request came through.
SIDE_HEADER = "X-Hub-Side"


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        session["csrf"] = token
    return token


def init_app(app) -> None:
    app.config["HUB_STAFF_NETWORKS"] = staff_networks(app.config["HUB_SETTINGS"])

    @app.before_request
    def _staff_only():
        if (request.path == STAFF_PREFIX or request.path.startswith(STAFF_PREFIX + "/")) and not on_staff_side():
            abort(404)

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
        token = session.get("sid")
        if token:
            g.user = accounts.session_user(hub_context().db, token)
            if g.user is None:
                session.pop("sid", None)
        session.pop("user_id", None)  # cookies from before sessions were kept on the hub

    @app.context_processor
    def _security():
        return {"csrf_token": csrf_token, "user": g.get("user")}


def client_address() -> str:
    return request.remote_addr or "unknown"


def request_side() -> str:
    """``staff``, ``villager`` or ``unknown``: where this request came from."""
    if hub_settings().behind_proxy:
        side = request.headers.get(SIDE_HEADER, "")
        if side != "staff":
            return "villager" if side == "villager" else "unknown"
    try:
        addr = ipaddress.ip_address(client_address())
    except ValueError:
        return "unknown"
    if any(addr in n for n in current_app.config["HUB_STAFF_NETWORKS"] if n.version == addr.version):
        return "staff"
    return "unknown"


def on_staff_side() -> bool:
    return request_side() == "staff"


def log_in(user: dict) -> None:
    """A new session for *user*: the old cookie's contents (and its CSRF token) are dropped."""
    session.clear()
    session.permanent = True
    session["sid"] = accounts.start_session(hub_context().db, user["id"], hub_settings().session_hours)


def log_out() -> None:
    accounts.end_session(hub_context().db, session.get("sid"))
    session.clear()


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
