"""The central server's web app: the sync API for hubs and the console for officers.

``create_central_app`` is a Flask app of its own, separate from the hub's
portal. Every API answer is signed for the token the request presented
(:func:`hub.sync.wire.sign`), so a hub can tell it from a captive portal.

The app keeps nothing of its own between requests: sessions are signed
cookies whose key is in the database, login failures, hubs and
publication targets are rows, so any number of gunicorn workers on any
number of machines can serve the same database.

An officer may be scoped to a province or a district (``g.scope``, an area
code): every page, export and publication is limited to the hubs inside it.
"""

from __future__ import annotations

import functools
import hmac
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)

from hub import accounts
from hub import feedback as fb
from hub.central import cap
from hub.central.api import MAX_CHUNK, api, sign, store
from hub.central.areas import within
from hub.central.errors import CentralError
from hub.central.fleet import PROBLEM_NAMES
from hub.central.publications import KINDS
from hub.central.remote_web import care
from hub.central.store import CentralStore
from hub.core import settings as settings_mod
from hub.sync import wire
from hub.web import i18n
from hub.web.chart import stacked_bars
from hub.web.current import static_url, static_versions
from hub.web.i18n import N_, _, switch_language
from hub.web.icons import icon
from hub.web.redirects import safe_next
from hub.web.security import csrf_token

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
console = Blueprint("central", __name__)

#: The console's menu: (endpoint, icon, English label).
MENU = [
    ("central.dashboard", "chart", N_("Dashboard")),
    ("central.feedback", "inbox", N_("Feedback")),
    ("central.transcripts", "papers", N_("Transcripts")),
    ("central.plays", "loudspeaker", N_("Playback logs")),
    ("central.hubs", "village", N_("Hubs")),
    ("central.fleet", "sync", N_("Fleet health")),
    ("central.publish", "notice", N_("Publish")),
    ("central.export", "papers", N_("Export")),
]
#: Rows per page on the console's long lists.
PER_PAGE = 50


def create_central_app(settings=None, store: CentralStore | None = None) -> Flask:
    """Build the central server's app; its data lives in ``central.db`` in ``data_dir``."""

    if settings is None:

        settings = settings_mod.load()
    store = store or CentralStore.from_settings(settings)
    app = Flask(__name__, template_folder=str(TEMPLATES), static_folder=str(STATIC),
                static_url_path="/static")
    app.config.update(
        SECRET_KEY=settings.secret_key or store.secret_key(),
        MAX_CONTENT_LENGTH=max(settings.max_upload_mb * 1024 * 1024, 2 * MAX_CHUNK),
        SESSION_COOKIE_NAME="central_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        HUB_SETTINGS=settings,
        CENTRAL_STORE=store,
    )
    if settings.behind_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=0)
    app.extensions["static_versions"] = static_versions()
    i18n.init_app(app)
    app.register_blueprint(api)
    app.register_blueprint(console)
    app.register_blueprint(care)

    @app.before_request
    def _csrf_and_user():
        g.user = None
        g.scope = None
        if request.path.startswith(wire.API):
            return None
        token = session.get("sid")
        if token:
            g.user = accounts.session_user(store.db, token)
            if g.user:
                g.scope = store.scope_of(g.user["id"])
            else:
                session.pop("sid", None)
        session.pop("user_id", None)  # cookies from before sessions were kept on the server
        if request.method == "POST":
            sent = request.form.get("csrf_token") or ""
            expected = session.get("csrf") or ""
            if not expected or not hmac.compare_digest(sent, expected):
                return render_template("central/message.html", title=_("This form has expired"),
                                       message=_("Please go back, reload the page and send it again.")), 400
        return None

    @app.after_request
    def _sign_and_headers(resp):
        if request.path.startswith(wire.API):
            return sign(resp)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'")
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.context_processor
    def _globals():
        return {"static_url": static_url, "icon": icon, "csrf_token": csrf_token,
                "user": g.get("user"), "menu": MENU, "hub_name": _("Central server"),
                "scope_area": store.area(g.get("scope")), "area_name": _area_name}

    return app


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("user") is None:
            return redirect(url_for("central.login", next=request.path))
        return view(*args, **kwargs)

    return wrapped


@console.route("/login", methods=["GET", "POST"])
def login():
    error, status = None, 200
    if request.method == "POST":
        s = current_app.config["HUB_SETTINGS"]
        outcome, user, wait = accounts.attempt_login(
            store().db, request.form.get("username") or "", request.form.get("password") or "",
            request.remote_addr or "unknown", s.login_attempts, s.login_window_minutes * 60)
        if outcome == "ok":
            session.clear()
            session.permanent = True
            session["sid"] = accounts.start_session(store().db, user["id"], s.session_hours)
            return redirect(safe_next(request.args.get("next"), url_for("central.dashboard")), code=303)
        if outcome == "locked":
            error = _("Too many failed logins. Please wait %(minutes)s minutes and try again.",
                      minutes=max(1, -(-int(wait) // 60)))
            status = 429
        else:
            error, status = _("Wrong name or password."), 401
    return render_template("central/login.html", error=error), status


@console.route("/logout", methods=["POST"])
def logout():
    accounts.end_session(store().db, session.get("sid"))
    session.clear()
    return redirect(url_for("central.login"), code=303)


@console.route("/lang/<code>")
def set_language(code: str):

    return switch_language(code)


def _category_names() -> dict[str, str]:

    return {c[0]: (c[2] if g.lang == "km" else c[1]) for c in fb.CATEGORIES}


def _area_name(a: dict | None) -> str:
    if not a:
        return _("Cambodia")
    return a.get("name_km") if g.lang == "km" else a.get("name_en")


def _page() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


def _area_arg() -> str | None:
    """The area a page is asked for; outside the officer's scope it is a 404."""
    code = (request.args.get("area") or "").strip() or g.scope
    if code and (store().area(code) is None or not code.startswith(g.scope or "")):
        abort(404)
    return code


@console.route("/")
@login_required
def dashboard():

    area = _area_arg()
    o = store().feedback_overview(scope=area)
    names = _category_names()
    series = [(names.get(k, k), v) for k, v in o["weekly"].items()]
    chart = stacked_bars([w[5:] for w in o["weeks"]], series or [(names["other"], [0] * len(o["weeks"]))])
    page = _page()
    if area and len(area) == 6:
        below, hubs = None, store().hubs(area=area, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
        pages = max(1, -(-store().hub_count(area=area) // PER_PAGE))
    else:
        below = store().areas_overview(area, page=page, per_page=PER_PAGE)
        # Hubs registered before they were put in a commune are shown to national officers.
        hubs = [] if area else store().hubs(unplaced=True, limit=PER_PAGE)
        pages = below["pages"]
    return render_template("central/dashboard.html", o=o, chart=chart, names=names, area=store().area(area),
                           path=[a for a in store().area_path(area) if len(a["code"]) >= len(g.scope or "")],
                           below=below, hubs=hubs, page=page, pages=pages)


@console.route("/feedback")
@login_required
def feedback():

    args = {k: request.args.get(k) or None for k in ("category", "status", "hub")}
    page = _page()
    items = store().feedback_items(**args, scope=g.scope, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    return render_template("central/feedback.html", items=items, args=args, names=_category_names(),
                           statuses=fb.STATUSES, page=page, more=len(items) == PER_PAGE)


@console.route("/transcripts")
@login_required
def transcripts():
    items = store().records("transcript", limit=300, scope=g.scope) \
        + store().records("transcript.revision", limit=300, scope=g.scope)
    items.sort(key=lambda r: r["created_at"], reverse=True)
    return render_template("central/records.html", items=items[:300], title=_("Transcripts"),
                           icon_name="papers")


@console.route("/plays")
@login_required
def plays():
    items = store().records("play", limit=300, scope=g.scope) + store().records("play.revision", limit=300,
                                                                                 scope=g.scope)
    items.sort(key=lambda r: r["created_at"], reverse=True)
    return render_template("central/records.html", items=items[:300], title=_("Playback logs"),
                           icon_name="loudspeaker")


@console.route("/hubs")
@login_required
def hubs():
    page = _page()
    total = store().hub_count(g.scope)
    return render_template("central/hubs.html", now=time.time(), page=page, pages=max(1, -(-total // PER_PAGE)),
                           hubs=store().hubs(g.scope, limit=PER_PAGE, offset=(page - 1) * PER_PAGE), total=total)


@console.route("/fleet")
@login_required
def fleet():
    """Each hub's health, newest backup and problems; the ones with problems first."""
    hubs = store().fleet(g.scope, current_app.config["HUB_SETTINGS"])
    page, pages = _page(), max(1, -(-len(hubs) // PER_PAGE))
    return render_template("central/fleet.html", hubs=hubs[(page - 1) * PER_PAGE:page * PER_PAGE], total=len(hubs),
                           with_problems=sum(1 for h in hubs if h["problems"]), page=page, pages=pages,
                           problem_names=PROBLEM_NAMES)


@console.route("/media/<media_id>")
@login_required
def media(media_id: str):
    rec = store().media_record(media_id)
    name = store().media_name(media_id)
    if name is None or rec is None or not within(rec["commune_code"], g.scope):
        abort(404)
    path = store().media.local_path(name)
    if path is not None:
        return send_file(path, mimetype=rec.get("type") or "application/octet-stream")
    return Response(store().media.read(name), mimetype=rec.get("type") or "application/octet-stream")


@console.route("/export")
@login_required
def export():
    """Every record inside the officer's scope, as CSV or JSON lines."""
    import io
    import tempfile

    fmt = "csv" if request.args.get("format") == "csv" else "jsonl"
    # Spooled to disk past 8 MB: a national export can be large.
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    store().export(fmt, text, scope=g.scope)
    text.flush()
    text.detach()
    out.seek(0)
    return send_file(out, mimetype="text/csv" if fmt == "csv" else "application/x-ndjson", as_attachment=True,
                     download_name=f"central-{g.scope or 'all'}.{fmt}")


def _targetable_areas() -> list[dict]:
    """Provinces and districts an officer may address (a district officer: only their own)."""
    scope = g.scope
    if scope and len(scope) == 4:
        return [store().area(scope)]
    provinces = [store().area(scope)] if scope else store().areas()
    out = []
    for p in provinces:
        out.append(p)
        out.extend(store().areas(p["code"]))
    return out


@console.route("/publish", methods=["GET", "POST"])
@login_required
def publish():
    error = None
    hub_total = store().hub_count(g.scope)
    if request.method == "POST":
        f = request.form
        data = {k: (f.get(k) or "").strip() for k in ("title_km", "title_en", "body_km", "body_en")}
        data["urgent"] = f.get("urgent") == "1"
        expires = (f.get("expires_at") or "").strip()
        if expires:
            data["expires_at"] = expires if "T" in expires else expires + "T23:59:59+07:00"
        kind = f.get("kind") if f.get("kind") in KINDS else "notice"
        if kind == "announcement" and data["urgent"]:
            # An urgent broadcast: CAP's urgency, severity and certainty, and an expiry to the minute.
            for name in ("urgency", "severity", "certainty"):
                data[name] = f.get(name) or "Unknown"
            data["expires_at"] = _local_time((f.get("urgent_expires") or "").strip())
        play_at = (f.get("play_at") or "").strip()
        if kind == "announcement" and play_at:
            data["play_at"] = play_at
        to = f.get("to") or "all"
        targets = f.getlist("hub") if to == "chosen" else []
        areas = []
        if to == "area":
            areas = [c for c in f.getlist("area") if c]
        elif to == "communes":
            areas = [c for c in (f.get("communes") or "").replace(",", " ").split() if c]
        upload = request.files.get("audio")
        try:
            if to != "all" and not (targets or areas):
                raise CentralError(_("Choose at least one hub, or send to all hubs."))
            if to == "communes" and any(len(c) != 6 for c in areas):
                raise CentralError(_("A commune code has 6 digits, like 120101."))
            if upload is not None and upload.filename:
                content = upload.read()
                row = store().add_file(content, upload.filename, upload.mimetype or "audio/mpeg")
                data["audio"] = {"id": row["id"], "sha256": row["sha256"], "bytes": row["bytes"]}
            store().publish(kind, data, targets, g.user["username"], areas=areas, scope=g.scope)
            return redirect(url_for("central.publish"), code=303)
        except cap.CapError as e:
            error = _cap_words(e)
        except CentralError as e:
            error = str(e) if "title" not in str(e) else _("A notice needs a title in Khmer or English.")
    return _publish_page(error, hub_total)


def _publish_page(error, hub_total: int, status: int = 200):
    hubs = store().hubs(g.scope, limit=200) if hub_total <= 200 else []
    return render_template("central/publish.html", hubs=hubs, pubs=store().publications(g.scope, limit=100),
                           error=error, kinds=KINDS, areas=_targetable_areas(), hub_total=hub_total,
                           hub_names={h["id"]: h["name"] for h in hubs}, cap=cap), status


def _cap_words(e: cap.CapError) -> str:
    """A refused CAP message or urgent broadcast in the officer's language, the English beside it."""
    said = _(e.message, **e.values)
    english = str(e)
    return said if said == english else f"{said} ({english})"


def _local_time(text: str) -> str:
    """A time typed in the console (no offset: the server's time zone) as ISO 8601 with its offset."""
    if not text:
        return ""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise cap.CapError("bad_time", field="expires", value=text[:40]) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(current_app.config["HUB_SETTINGS"].timezone))
    return moment.isoformat()


@console.route("/publish/cap", methods=["POST"])
@login_required
def publish_cap():
    """An urgent broadcast from a CAP 1.2 XML message, with the audio files its <resource> names."""
    f = request.form
    message = request.files.get("cap")
    areas = [c for c in f.getlist("area") if c]
    try:
        if message is None or not message.filename:
            raise cap.CapError("not_xml", detail="no file")
        uploads = {Path(u.filename).name: u.read() for u in request.files.getlist("audio") if u and u.filename}
        store().publish_cap(message.read(cap.MAX_BYTES + 1), uploads, None, g.user["username"], areas=areas,
                            scope=g.scope)
    except cap.CapError as e:
        return _publish_page(_cap_words(e), store().hub_count(g.scope), 400)
    except CentralError as e:
        return _publish_page(str(e), store().hub_count(g.scope), 400)
    return redirect(url_for("central.publish"), code=303)


@console.route("/publications/<pub_id>/acks")
@login_required
def acks(pub_id: str):
    """Which hubs played an urgent broadcast, and when; which did not, or have not said yet."""
    pub = next((p for p in store().publications(g.scope) if p["id"] == pub_id), None)
    if pub is None or not pub["urgent"]:
        abort(404)
    rows = store().acks(pub_id)
    played = sum(1 for r in rows if r["outcome"] == "played")
    return render_template("central/acks.html", pub=pub, rows=rows, played=played)


@console.route("/publications/<pub_id>/withdraw", methods=["POST"])
@login_required
def withdraw(pub_id: str):
    try:
        store().withdraw(pub_id, scope=g.scope)
    except CentralError:
        abort(404)
    return redirect(url_for("central.publish"), code=303)
