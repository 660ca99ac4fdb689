"""The sync API the hubs speak: hello, records, resumable media, publications, files.

Every answer is signed for the hub's token and the request's nonce
(:mod:`hub.sync.wire`), so a captive portal's fake 200 is never taken for it.
"""

from __future__ import annotations

import gzip
import time

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    request,
)

from hub.central.errors import CentralError
from hub.central.store import MAX_MEDIA_BYTES, PENDING, CentralStore
from hub.sync import wire

#: A batch may hold at most this many records.
MAX_BATCH = 5000
#: A media chunk may be at most this big.
MAX_CHUNK = 8 * 1024 * 1024

api = Blueprint("central_api", __name__, url_prefix=wire.API)


def store() -> CentralStore:
    return current_app.config["CENTRAL_STORE"]


# --- the API ----------------------------------------------------------------------------------

def _presented_token() -> str:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else ""


def sign(resp):
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
    return jsonify({"hub_id": g.hub["id"], "hub_name": g.hub["name"], "server_time": time.time(),
                    "remote": store().waiting_for(g.hub["id"])})


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
    result = store().store_records(g.hub["id"], batch, address=request.remote_addr or "")
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


def _upload_headers() -> tuple[int, int, str]:
    """A resumable upload's chunk: its offset, the whole length and the whole file's SHA-256."""
    try:
        return (int(request.headers["Upload-Offset"]), int(request.headers["Upload-Length"]),
                request.headers["Upload-Sha256"])
    except (KeyError, ValueError):
        raise ValueError("Upload-Offset, Upload-Length and Upload-Sha256 are needed") from None


def _read_chunk() -> bytes:
    """The request's body, of the length it announced, at most MAX_CHUNK."""
    try:
        expected = int(request.headers.get("Content-Length", "-1"))
    except ValueError:
        expected = -1
    if expected < 0 or expected > MAX_CHUNK:
        raise ValueError("a chunk needs a Content-Length of at most 8 MB")
    chunk = request.stream.read(expected)
    if len(chunk) != expected:
        raise ValueError("the chunk was cut short")
    return chunk


@api.route("/media/<media_id>", methods=["PUT"])
def media_put(media_id: str):
    rec, err = _media_owner_check(media_id)
    if err is not None:
        return err
    try:
        offset, total, sha256 = _upload_headers()
    except ValueError as e:
        return _error(400, str(e))
    if total != rec.get("bytes") or sha256 != rec.get("sha256"):
        return _error(400, "length or checksum differ from the media record")
    if total > MAX_MEDIA_BYTES:
        return _error(413, "the file is too large")
    try:
        chunk = _read_chunk()
    except ValueError as e:
        return _error(400, str(e))
    try:
        result = store().append_media(g.hub["id"], media_id, offset, total, sha256, chunk)
    except CentralError as e:
        return _error(400, str(e))
    if result.get("error") == "checksum":
        return _error(422, "checksum", offset=0, complete=False)
    if result.pop("mismatch", False):
        return _error(409, "offset", **result)
    return jsonify(result)


@api.route("/backups/<backup_id>", methods=["HEAD"])
def backup_head(backup_id: str):
    """How much of a hub's backup the central server holds (resumable like media)."""
    try:
        state = store().backup_upload(g.hub["id"], backup_id)
    except CentralError as e:
        return _error(403, str(e))
    if state is None:
        return _error(404, "no such backup yet")
    resp = Response(b"", 200)
    resp.headers["Upload-Offset"] = str(state["received"])
    resp.headers["Upload-Length"] = str(state["total"])
    resp.headers["Upload-Complete"] = "1" if state["complete"] else "0"
    return resp


@api.route("/backups/<backup_id>", methods=["PUT"])
def backup_put(backup_id: str):
    """One chunk of a hub's backup at its offset; the whole file replaces the hub's previous backup."""
    made_at = request.headers.get("Backup-Made-At", "")[:40]
    try:
        offset, total, sha256 = _upload_headers()
        chunk = _read_chunk()
    except ValueError as e:
        return _error(400, str(e))
    try:
        result = store().append_backup(g.hub["id"], backup_id, offset, total, sha256, chunk, made_at)
    except CentralError as e:
        return _error(403 if "another hub" in str(e) else 400, str(e))
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
    return jsonify(store().publications_since(g.hub["id"], since, address=request.remote_addr or ""))


@api.route("/settings/<change_id>", methods=["POST"])
def settings_answer(change_id: str):
    """The hub's answer to a settings change: applied, or refused with the reason."""
    body = _json_body()
    if not isinstance(body, dict) or not isinstance(body.get("values", {}), dict):
        return _error(400, "the answer must be an object")
    try:
        known = store().settings_answer(g.hub["id"], change_id, str(body.get("state", "")),
                                        str(body.get("message", "")), body.get("values") or {})
    except CentralError as e:
        return _error(400, str(e))
    return jsonify({"ok": True}) if known else _error(404, "no such change for this hub")


@api.route("/diagnostics/<request_id>", methods=["PUT"])
def diagnostics_put(request_id: str):
    """A diagnostics bundle an officer asked for."""
    body = _json_body()
    if not isinstance(body, dict):
        return _error(400, "a bundle is a JSON object")
    try:
        known = store().store_diagnostics(g.hub["id"], request_id, body)
    except CentralError as e:
        return _error(413, str(e))
    return jsonify({"ok": True}) if known else _error(404, "no such request for this hub")


@api.route("/urgent", methods=["GET"])
def urgent():
    """The hub's urgent broadcasts; 304 with no body while its If-None-Match is still the list's ETag.

    Hubs ask this every ``sync_urgent_interval_seconds``, so the answer that
    says "nothing new" is a few hundred bytes, and the hub's last contact is
    not written for it (the full sync does that).
    """
    tag, pubs = store().urgent_for(g.hub["id"])
    if tag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        resp = Response(b"", 304)
    else:
        resp = jsonify({"publications": pubs})
    resp.headers["ETag"] = tag
    return resp


@api.route("/acks", methods=["POST"])
def acks():
    """Acknowledgements of urgent broadcasts: what the hub's announcer did with each, and when."""
    body = _json_body()
    items = body.get("acks") if isinstance(body, dict) else None
    if not isinstance(items, list) or len(items) > 100:
        return _error(400, "acks must be a list of at most 100 acknowledgements")
    return jsonify({"stored": store().record_acks(g.hub["id"], items)})


@api.route("/files/<file_id>", methods=["GET"])
def file(file_id: str):
    found = store().file(file_id)
    if found is None:
        return _error(404, "no such file")
    row, content = found
    # Read whole: the answer is signed over its body.
    return Response(content, mimetype=row["type"])


#: Largest range of a release's wheel one answer carries.
MAX_RELEASE_RANGE = 4 * 1024 * 1024


@api.route("/release", methods=["GET"])
def release():
    """The newest hub release: its signed manifest (the hub checks the signature itself)."""
    row = store().newest_release()
    if row is None:
        return jsonify({"release": None})
    return jsonify({"release": {"version": row["version"], "manifest": row["manifest"],
                                "signature": row["signature"], "bytes": row["bytes"]}})


@api.route("/release/<version>/wheel", methods=["GET"])
def release_wheel(version: str):
    """A range of a release's wheel (``?start=N&length=M``): a cut download goes on from where it stopped."""
    try:
        start = max(0, int(request.args.get("start", "0")))
        length = min(MAX_RELEASE_RANGE, max(1, int(request.args.get("length", str(MAX_RELEASE_RANGE)))))
    except ValueError:
        return _error(400, "start and length must be numbers")
    content = store().release_range(version, start, length)
    if content is None:
        return _error(404, "no such release")
    return Response(content, mimetype="application/octet-stream")


# --- the officers' console -----------------------------------------------------------------
