"""Clerk console: write, edit, pin and expire notices."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, redirect, render_template, request, url_for

from hub import notices
from hub.core.errors import Busy, DiskFull
from hub.core.media import MediaError
from hub.web.console import done
from hub.web.current import hub_context, hub_settings
from hub.web.i18n import _
from hub.web.security import login_required
from hub.web.uploads import busy_message, discard, media_message, prepare_audio, prepare_image

bp = Blueprint("clerk_notices", __name__, url_prefix="/clerk/notices")


@bp.route("/")
@login_required
def index():
    return render_template("clerk/notices.html", items=notices.all_notices(hub_context().db),
                           now=hub_context().clock.now().isoformat(timespec="seconds"))


def _fields_from_form() -> dict:
    f = request.form
    fields = {k: f.get(k, "") for k in ("title_km", "title_en", "body_km", "body_en")}
    fields["urgent"] = f.get("urgent") == "1"
    fields["pinned"] = f.get("pinned") == "1"
    expires = f.get("expires_at", "").strip()
    if expires:
        local = datetime.fromisoformat(expires).replace(tzinfo=ZoneInfo(hub_settings().timezone))
        fields["expires_at"] = local.astimezone(ZoneInfo("UTC")).isoformat(timespec="seconds")
    else:
        fields["expires_at"] = None
    return fields


def _save(notice_id: str | None):
    form = request.form.to_dict()

    def again(message: str, status: int = 400):
        return render_template("clerk/notice_form.html", form=form, notice_id=notice_id, error=message), status

    try:
        fields = _fields_from_form()
    except (ValueError, OverflowError):
        return again(_(notices.BAD_EXPIRY))
    try:
        notices.check(fields)  # before the uploads are converted
    except notices.NoticeError as e:
        return again(_(str(e)))
    rows = []
    try:
        audio = prepare_audio(request.files.get("audio"))
        if audio:
            rows.append(audio)
        image = prepare_image(request.files.get("image"))
        if image:
            rows.append(image)
    except (MediaError, Busy, DiskFull) as e:
        discard(rows)  # a recording converted before the picture failed stays nowhere
        if isinstance(e, Busy):
            return again(busy_message(), 503)
        if isinstance(e, DiskFull):
            return again(_("The hub's storage is full. Nothing was saved."), 507)
        return again(media_message(e), 415)
    if audio:
        fields["audio_id"] = audio["id"]
    if image:
        fields["image_id"] = image["id"]
    if request.form.get("remove_audio") == "1" and not audio:
        fields["audio_id"] = None
    if request.form.get("remove_image") == "1" and not image:
        fields["image_id"] = None
    ctx = hub_context()
    try:
        if notice_id:
            notices.update(ctx, notice_id, fields, rows)
            done(_("Notice saved. Villagers see the new version now."))
        else:
            notice_id = notices.create(ctx, fields, rows)
            done(_("Published. Villagers see the notice on the portal now."))
    except KeyError:
        abort(404)
    except notices.NoticeError as e:
        return again(_(str(e)))
    return redirect(url_for("clerk_notices.index"), code=303)


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    if request.method == "POST":
        return _save(None)
    return render_template("clerk/notice_form.html", form={}, notice_id=None, error=None)


@bp.route("/<notice_id>/edit", methods=["GET", "POST"])
@login_required
def edit(notice_id: str):
    item = notices.get(hub_context().db, notice_id)
    if item is None:
        abort(404)
    if request.method == "POST":
        return _save(notice_id)
    form = dict(item)
    if item["expires_at"]:
        local = datetime.fromisoformat(item["expires_at"]).astimezone(ZoneInfo(hub_settings().timezone))
        form["expires_at"] = local.strftime("%Y-%m-%dT%H:%M")
    return render_template("clerk/notice_form.html", form=form, notice_id=notice_id, error=None,
                           item=item)


@bp.route("/<notice_id>/expire", methods=["GET", "POST"])
@login_required
def expire(notice_id: str):
    """GET asks first (works without JavaScript); POST, from that page, expires the notice."""
    item = notices.get(hub_context().db, notice_id)
    if item is None:
        abort(404)
    if request.method == "GET":
        return render_template("clerk/confirm.html", title=_("Expire this notice now?"),
                               question=_("“%(title)s” leaves the portal at once. You can give it a later expiry"
                                          " date again by editing it.",
                                          title=(item["title_km"] or item["title_en"]).replace("\u200b", "")),
                               action=url_for("clerk_notices.expire", notice_id=notice_id),
                               button=_("Yes, expire it now"), cancel=url_for("clerk_notices.index"))
    notices.expire(hub_context(), notice_id)
    done(_("Expired. The notice is no longer on the portal."))
    return redirect(url_for("clerk_notices.index"), code=303)


@bp.route("/<notice_id>/pin", methods=["POST"])
@login_required
def pin(notice_id: str):
    pinned = request.form.get("pinned") == "1"
    notices.set_pinned(hub_context(), notice_id, pinned)
    done(_("Pinned to the top of the portal.") if pinned else _("Unpinned."))
    return redirect(url_for("clerk_notices.index"), code=303)
