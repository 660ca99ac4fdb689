"""Answers to phones' connectivity checks, the welcome page and the RFC 8908 API.

Phones probe a known address when they join a network. Until a phone has
passed the welcome page, every probe (and any request for a host that is not
the hub) is redirected to the portal, so the phone opens it. After that each
probe gets exactly what its OS expects, so the phone keeps the hub's Wi-Fi
even though there is no internet behind it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, redirect, render_template, request

from hub import captive
from hub.web.current import hub_context, hub_settings
from hub.web.security import client_address

bp = Blueprint("captive", __name__)

APPLE_SUCCESS = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
#: path -> (status, content type, body) that the OS expects when online.
CHECKS = {
    "/generate_204": (204, None, ""),  # Android, Chrome OS
    "/gen_204": (204, None, ""),
    "/hotspot-detect.html": (200, "text/html", APPLE_SUCCESS),  # Apple
    "/library/test/success.html": (200, "text/html", APPLE_SUCCESS),
    "/connecttest.txt": (200, "text/plain", "Microsoft Connect Test"),  # Windows 10+
    "/ncsi.txt": (200, "text/plain", "Microsoft NCSI"),  # older Windows
    "/success.txt": (200, "text/plain", "success\n"),  # Firefox
    "/canonical.html": (200, "text/html",
                        '<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>'),
    "/check_network_status.txt": (200, "text/plain", "NetworkManager is online\n"),
}
CAPTIVE_API = "/api/captive"


def portal_url(path: str = "") -> str:
    return hub_settings().listen_url.rstrip("/") + "/" + path.lstrip("/")


def own_hosts() -> set[str]:
    s = hub_settings()
    hosts = {"localhost", "127.0.0.1", "::1", s.ap_address, s.host, *s.hostnames}
    own = urlsplit(s.listen_url).hostname
    if own:
        hosts.add(own)
    return {h.lower() for h in hosts if h}


def request_host() -> str:
    host = (request.host or "").lower()
    if host.startswith("["):
        return host[1:].split("]")[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def client() -> str:
    return captive.client_key(client_address())


def has_passed() -> bool:
    return captive.accepted(hub_context().db, client())


@bp.before_app_request
def _captive_gate():
    path = request.path
    check = CHECKS.get(path)
    foreign = request_host() not in own_hosts()
    if check is None and not foreign:
        return None
    if check is not None and has_passed():
        status, ctype, body = check
        resp = Response(body, status=status, content_type=ctype)
        resp.headers["Cache-Control"] = "no-store"
        return resp
    resp = redirect(portal_url("welcome"), code=302)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/welcome", methods=["GET"])
def welcome():
    return render_template("welcome.html", passed=has_passed(), address=portal_url(""))


@bp.route("/welcome", methods=["POST"])
def welcome_accept():
    captive.accept(hub_context().db, client())
    target = request.form.get("next") or "/"
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    return redirect(target, code=303)


@bp.route(CAPTIVE_API)
def captive_api():
    """RFC 8908: the address DHCP option 114 gives phones."""
    resp = jsonify({
        "captive": not has_passed(),
        "user-portal-url": portal_url("welcome"),
        "venue-info-url": portal_url(""),
    })
    resp.content_type = "application/captive+json"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
