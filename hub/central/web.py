"""The central server's web app: the sync API for hubs and the console for officers.

``create_central_app`` is a Flask app of its own, separate from the hub's
portal. Every API answer is signed for the token the request presented
(:func:`hub.sync.wire.sign`), so a hub can tell it from a captive portal.
"""

from __future__ import annotations

import functools
import gzip
import hmac
import time
from datetime import timedelta
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from werkzeug.middleware.proxy_fix import ProxyFix

from hub import accounts
from hub import feedback as fb
from hub.central.store import KINDS, MAX_MEDIA_BYTES, PENDING, CentralError, CentralStore
from hub.core import settings as settings_mod
from hub.sync import wire
from hub.web import i18n
from hub.web.chart import stacked_bars
from hub.web.current import static_url, static_versions
from hub.web.i18n import N_, _, switch_language
from hub.web.icons import icon
from hub.web.security import csrf_token

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
#: A batch may hold at most this many records.
MAX_BATCH = 5000
#: A media chunk may be at most this big.
MAX_CHUNK = 8 * 1024 * 1024

api = Blueprint("central_api", __name__, url_prefix=wire.API)
console = Blueprint("central", __name__)

#: The console's menu: (endpoint, icon, English label).
MENU = [
    ("central.dashboard", "chart", N_("Dashboard")),
    ("central.feedback", "inbox", N_("Feedback")),
    ("central.transcripts", "papers", N_("Transcripts")),
    ("central.plays", "loudspeaker", N_("Playback logs")),
    ("central.hubs", "village", N_("Hubs")),
    ("central.publish", "notice", N_("Publish")),
]


def create_central_app(settings=None, store: CentralStore | None = None) -> Flask:
    """Build the central server's app; its data lives in ``central.db`` in ``data_dir``."""
    if settings is None:
        settings = settings_mod.load()
    store = store or CentralStore.open(settings.data_dir)
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
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=0)
    app.extensions["static_versions"] = static_versions()
    i18n.init_app(app)
    app.register_blueprint(api)
    app.register_blueprint(console)

    @app.before_request
    def _csrf_and_user():
        g.user = None
        if request.path.startswith(wire.API):
            return None
        uid = session.get("user_id")
        if uid:
            g.user = accounts.get_user(store.db, uid)
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
            return _sign(resp)
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
                "user": g.get("user"), "menu": MENU, "hub_name": _("Central server")}

    return app


def store() -> CentralStore:
    return current_app.config["CENTRAL_STORE"]


# --- the API ----------------------------------------------------------------------------------

def _presented_token() -> str:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else ""


def _sign(resp):
    """Sign the answer for the presented token and the request's nonce; gzip big JSON."""
    token, nonce = _presented_token(), request.headers.get("X-Hub-Nonce", "")
    body = b"" if request.method == "HEAD" else resp.get_data()
    if token and nonce:
        resp.headers["X-Hub-Signature"] = wire.sign(token, nonce, body)
    if (len(body) > 1024 and "gzip" in request.headers.get("Accept-Encoding", "")
            and resp.mimetype == "application/json"):
        resp.set_data(gzip.compress(body, 6, mtime=0))
        resp.headers["Content-Encoding"] = "gzip"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _error(status: int, message: str, **extra):
    resp = jsonify({"error": message, **extra})
    resp.status_code = status
    return resp


@api.before_request
def _authenticate():
    hub = store().hub_by_token(_presented_token()) if _presented_token() else None
    if hub is None:
        return _error(401, "unknown or revoked hub token")
    claimed = request.headers.get("X-Hub-Id")
    if hub["id"].startswith(PENDING) and claimed:
        try:
            store().bind_hub(hub["id"], claimed)
        except CentralError as e:
            return _error(403, str(e))
        hub = store().hub_by_token(_presented_token())
    g.hub = hub
    if claimed != hub["id"]:
        return _error(403, "this token belongs to another hub")
    return None


def _json_body():
    try:
        return wire.read_json_body(request.get_data(cache=False), request.headers.get("Content-Encoding"))
    except (ValueError, OSError, EOFError):
        abort(_error(400, "the body is not JSON"))


@api.route("/hello", methods=["POST"])
def hello():
    body = _json_body() or {}
    if body.get("hub_id") not in (None, g.hub["id"]):
        return _error(403, "this token belongs to another hub")
    health = body.get("health") if isinstance(body.get("health"), dict) else None
    store().touch_hub(g.hub["id"], request.remote_addr or "", health)
    return jsonify({"hub_id": g.hub["id"], "hub_name": g.hub["name"], "server_time": time.time()})


def _valid(record) -> bool:
    return (isinstance(record, dict) and set(record) == set(wire.RECORD_FIELDS)
            and isinstance(record["id"], str) and 0 < len(record["id"]) <= 64
            and isinstance(record["kind"], str) and 0 < len(record["kind"]) <= 40
            and isinstance(record["created_at"], str) and isinstance(record["data"], dict))


@api.route("/records", methods=["POST"])
def records():
    body = _json_body()
    batch = body.get("records") if isinstance(body, dict) else None
    if not isinstance(batch, list) or len(batch) > MAX_BATCH or not all(_valid(r) for r in batch):
        return _error(400, "records must be a list of well-formed records")
    result = store().store_records(g.hub["id"], batch)
    store().touch_hub(g.hub["id"], request.remote_addr or "")
    if "refused" in result:
        return _error(403, "records in another hub's name", refused=result["refused"])
    result["status"] = {i: 201 for i in result["stored"]} | {i: 200 for i in result["duplicate"]} \
        | {i: 409 for i in result["conflict"]}
    return jsonify(result)


@api.route("/records/<record_id>", methods=["PUT"])
def record_put(record_id: str):
    """One record: 201 stored, 200 already held with the same content, 409 held with other content."""
    record = _json_body()
    if not _valid(record) or record["id"] != record_id:
        return _error(400, "not a well-formed record")
    result = store().store_records(g.hub["id"], [record])
    if "refused" in result:
        return _error(403, "records in another hub's name", refused=result["refused"])
    if result["conflict"]:
        return _error(409, "a different record with this id is already stored", conflict=[record_id])
    status = 201 if result["stored"] else 200
    resp = jsonify(result)
    resp.status_code = status
    return resp


def _media_owner_check(media_id: str):
    rec = store().media_record(media_id)
    if rec is None:
        return None, _error(404, "send the media record before its file")
    if rec["hub_id"] != g.hub["id"]:
        return None, _error(403, "this media belongs to another hub")
    return rec, None


@api.route("/media/<media_id>", methods=["HEAD"])
def media_head(media_id: str):
    rec, err = _media_owner_check(media_id)
    if err is not None:
        return err
    state = store().upload_state(media_id)
    resp = Response(b"", 200)
    resp.headers["Upload-Offset"] = str(state["received"] if state else 0)
    resp.headers["Upload-Length"] = str(rec.get("bytes", 0))
    resp.headers["Upload-Complete"] = "1" if state and state["complete"] else "0"
    return resp


@api.route("/media/<media_id>", methods=["PUT"])
def media_put(media_id: str):
    rec, err = _media_owner_check(media_id)
    if err is not None:
        return err
    try:
        offset = int(request.headers["Upload-Offset"])
        total = int(request.headers["Upload-Length"])
        sha256 = request.headers["Upload-Sha256"]
        expected = int(request.headers.get("Content-Length", "-1"))
    except (KeyError, ValueError):
        return _error(400, "Upload-Offset, Upload-Length and Upload-Sha256 are needed")
    if total != rec.get("bytes") or sha256 != rec.get("sha256"):
        return _error(400, "length or checksum differ from the media record")
    if total > MAX_MEDIA_BYTES:
        return _error(413, "the file is too large")
    if expected < 0 or expected > MAX_CHUNK:
        return _error(400, "a chunk needs a Content-Length of at most 8 MB")
    chunk = request.stream.read(expected)
    if len(chunk) != expected:
        return _error(400, "the chunk was cut short")
    try:
        result = store().append_media(g.hub["id"], media_id, offset, total, sha256, chunk)
    except CentralError as e:
        return _error(400, str(e))
    if result.get("error") == "checksum":
        return _error(422, "checksum", offset=0, complete=False)
    if result.pop("mismatch", False):
        return _error(409, "offset", **result)
    return jsonify(result)


@api.route("/publications", methods=["GET"])
def publications():
    try:
        since = max(0, int(request.args.get("since", "0")))
    except ValueError:
        return _error(400, "since must be a number")
    store().touch_hub(g.hub["id"], request.remote_addr or "")
    return jsonify(store().publications_since(g.hub["id"], since))


@api.route("/files/<file_id>", methods=["GET"])
def file(file_id: str):
    found = store().file(file_id)
    if found is None:
        return _error(404, "no such file")
    row, path = found
    # Read whole: the answer is signed over its body.
    return Response(path.read_bytes(), mimetype=row["type"])


# --- the officers' console -----------------------------------------------------------------

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
        outcome, user = accounts.attempt_login(
            store().db, request.form.get("username") or "", request.form.get("password") or "",
            request.remote_addr or "unknown", s.login_attempts, s.login_window_minutes * 60)
        if outcome == "ok":
            session.clear()
            session.permanent = True
            session["user_id"] = user["id"]
            target = request.args.get("next") or ""
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("central.dashboard")
            return redirect(target, code=303)
        if outcome == "locked":
            error = _("Too many failed logins. Please wait %(minutes)s minutes and try again.",
                      minutes=s.login_window_minutes)
            status = 429
        else:
            error, status = _("Wrong name or password."), 401
    return render_template("central/login.html", error=error), status


@console.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("central.login"), code=303)


@console.route("/lang/<code>")
def set_language(code: str):
    return switch_language(code)


def _category_names() -> dict[str, str]:
    return {c[0]: (c[2] if g.lang == "km" else c[1]) for c in fb.CATEGORIES}


@console.route("/")
@login_required
def dashboard():
    o = store().feedback_overview()
    names = _category_names()
    series = [(names.get(k, k), v) for k, v in o["weekly"].items()]
    chart = stacked_bars([w[5:] for w in o["weeks"]], series or [(names["other"], [0] * len(o["weeks"]))])
    return render_template("central/dashboard.html", o=o, chart=chart, names=names, hubs=store().hubs())


@console.route("/feedback")
@login_required
def feedback():
    args = {k: request.args.get(k) or None for k in ("category", "status", "hub")}
    items = store().feedback_items(**args)
    return render_template("central/feedback.html", items=items, args=args, names=_category_names(),
                           statuses=fb.STATUSES, hubs=store().hubs())


@console.route("/transcripts")
@login_required
def transcripts():
    items = store().records("transcript", limit=300) + store().records("transcript.revision", limit=300)
    items.sort(key=lambda r: r["created_at"], reverse=True)
    return render_template("central/records.html", items=items[:300], title=_("Transcripts"),
                           icon_name="papers")


@console.route("/plays")
@login_required
def plays():
    items = store().records("play", limit=300) + store().records("play.revision", limit=300)
    items.sort(key=lambda r: r["created_at"], reverse=True)
    return render_template("central/records.html", items=items[:300], title=_("Playback logs"),
                           icon_name="loudspeaker")


@console.route("/hubs")
@login_required
def hubs():
    return render_template("central/hubs.html", hubs=store().hubs(), now=time.time())


@console.route("/media/<media_id>")
@login_required
def media(media_id: str):
    path = store().media_path(media_id)
    rec = store().media_record(media_id)
    if path is None or rec is None:
        abort(404)
    return send_file(path, mimetype=rec.get("type") or "application/octet-stream")


@console.route("/publish", methods=["GET", "POST"])
@login_required
def publish():
    error = None
    if request.method == "POST":
        f = request.form
        data = {k: (f.get(k) or "").strip() for k in ("title_km", "title_en", "body_km", "body_en")}
        data["urgent"] = f.get("urgent") == "1"
        expires = (f.get("expires_at") or "").strip()
        if expires:
            data["expires_at"] = expires if "T" in expires else expires + "T23:59:59+07:00"
        kind = f.get("kind") if f.get("kind") in KINDS else "notice"
        play_at = (f.get("play_at") or "").strip()
        if kind == "announcement" and play_at:
            data["play_at"] = play_at
        targets = None if f.get("to") != "chosen" else f.getlist("hub")
        upload = request.files.get("audio")
        try:
            if targets is not None and not targets:
                raise CentralError(_("Choose at least one hub, or send to all hubs."))
            if upload is not None and upload.filename:
                content = upload.read()
                row = store().add_file(content, upload.filename, upload.mimetype or "audio/mpeg")
                data["audio"] = {"id": row["id"], "sha256": row["sha256"], "bytes": row["bytes"]}
            store().publish(kind, data, targets, g.user["username"])
            return redirect(url_for("central.publish"), code=303)
        except CentralError as e:
            error = str(e) if "title" not in str(e) else _("A notice needs a title in Khmer or English.")
    return render_template("central/publish.html", hubs=store().hubs(), pubs=store().publications(),
                           error=error, kinds=KINDS)


@console.route("/publications/<pub_id>/withdraw", methods=["POST"])
@login_required
def withdraw(pub_id: str):
    try:
        store().withdraw(pub_id)
    except CentralError:
        abort(404)
    return redirect(url_for("central.publish"), code=303)
