"""The villager portal: notices, feedback, receipts. Works with JavaScript off."""

from __future__ import annotations

import shutil

from flask import Blueprint, abort, redirect, render_template, request, url_for

from hub import feedback, notices
from hub.core.errors import Busy, DiskFull
from hub.core.khmer import digits
from hub.core.media import MediaError
from hub.web.current import hub_context, hub_settings, lang
from hub.web.i18n import _, switch_language
from hub.web.mine import remember
from hub.web.throttle import may_send, receipt_missed, receipt_misses_used_up
from hub.web.uploads import busy_message, media_message, prepare_audio
from hub.web.voice import spoken

bp = Blueprint("portal", __name__)


def feedback_message(code: str) -> str:
    return {
        "choose_category": _("Please choose what your message is about."),
        "say_something": _("Please write a message or record your voice."),
        "text_too_long": _("Your message is too long."),
        "field_too_long": _("A name, phone or village is too long."),
        "bad_characters": _("Your message has characters the hub cannot keep. Please type it again."),
        "bad_phone": _("A phone number may only have digits, spaces, + and -."),
        "no_receipt": _("The hub is busy. Please send your message again in a minute."),
        "limited": _("You have sent many messages. Please wait an hour, or come to the commune office."),
        "disk_full": _("The hub's storage is full. Please tell the commune office; your message was not saved."),
    }.get(code, _("Something is wrong with the form."))


@bp.app_context_processor
def _villager_helpers():
    s = hub_settings()
    return {
        "spoken": spoken,
        "duration": duration,
        "max_minutes": max(1, s.max_audio_seconds // 60),
        "max_bytes": s.max_upload_mb * 1024 * 1024,
        "too_big": _("That recording is too big. A recording may be up to %(minutes)s minutes long."
                     " Please record a shorter message and send it again.",
                     minutes=max(1, s.max_audio_seconds // 60)),
    }


def duration(ms) -> str:
    """A recording's length as a phone shows it: 0:42, 2:05 (Khmer digits in Khmer)."""
    seconds = round((ms or 0) / 1000)
    return num_text(f"{seconds // 60}:{seconds % 60:02d}")


def num_text(text: str) -> str:
    return digits(text, lang())


#: Notices per page of the home page: a page stays well under 30 KB on a slow phone.
NOTICES_PER_PAGE = 15
#: Highest page number read from an address; past it a page is simply empty.
MAX_PAGE = 10_000


def page_number() -> int:
    """``?page=`` as a number from 1 to MAX_PAGE; anything else is page 1."""
    text = request.args.get("page", "1")
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        return 1
    return min(MAX_PAGE, max(1, int(text)))


@bp.route("/")
def home():
    ctx = hub_context()
    page = page_number()
    items = notices.current(ctx.db, ctx.clock.now(), NOTICES_PER_PAGE + 1, (page - 1) * NOTICES_PER_PAGE)
    return render_template("home.html", notices=items[:NOTICES_PER_PAGE], page=page,
                           more=len(items) > NOTICES_PER_PAGE)


@bp.route("/notice/<notice_id>")
def notice(notice_id: str):
    ctx = hub_context()
    item = notices.get(ctx.db, notice_id)
    if item is None:
        abort(404)
    return render_template("notice.html", n=item)


@bp.route("/lang/<code>")
def set_language(code: str):
    return switch_language(code)


@bp.route("/feedback", methods=["GET"])
def feedback_form():
    return render_template("feedback.html", categories=feedback.CATEGORIES, form={}, error=None)


def _disk_is_full() -> bool:
    s = hub_settings()
    return shutil.disk_usage(s.data_dir).free < s.min_free_mb * 1024 * 1024


@bp.route("/feedback", methods=["POST"])
def feedback_submit():
    form = request.form.to_dict()
    form["lang"] = lang()

    def again(message: str, status: int):
        return render_template("feedback.html", categories=feedback.CATEGORIES, form=form,
                               error=message), status

    if not may_send():
        return again(feedback_message("limited"), 429)
    try:
        fields = feedback.validate(form)
    except feedback.FeedbackError as e:
        return again(feedback_message(e.code), 400)
    upload = request.files.get("voice")
    if upload is not None and upload.filename and _disk_is_full():
        return again(feedback_message("disk_full"), 507)
    try:
        audio = prepare_audio(upload)
        result = feedback.store(hub_context(), fields, audio, source="portal")
    except MediaError as e:
        return again(media_message(e), 415 if e.code.startswith("not_") else 422)
    except feedback.FeedbackError as e:
        return again(feedback_message(e.code), 503 if e.code == "no_receipt" else 400)
    except Busy:
        return again(busy_message(), 503)
    except DiskFull:
        return again(feedback_message("disk_full"), 507)
    return remember(redirect(url_for("portal.receipt", code=result["receipt"], new=1), code=303),
                    result["receipt"])


def _receipt_refused():
    return render_template("receipt_lookup.html", error=_(
        "Too many wrong numbers were tried from this phone. Please wait an hour, or ask at the commune office.")), 429


@bp.route("/receipt", methods=["GET"])
def receipt_lookup():
    typed = request.args.get("code", "")
    code = feedback.normalise_receipt(typed)
    if code and feedback.valid_receipt(code):
        return redirect(url_for("portal.receipt", code=code), code=303)
    if typed.strip():
        # A typing mistake the check digit caught: no lookup, so nothing counted against the phone.
        return render_template("receipt_lookup.html",
                               error=_("That is not a receipt number. Please check the digits.")), 400
    return render_template("receipt_lookup.html", error=None)


@bp.route("/receipt/<code>", methods=["GET", "POST"])
def receipt(code: str):
    """What a receipt shows: the status for the code alone; the reply once the phone number given is typed."""
    if receipt_misses_used_up():
        return _receipt_refused()
    item = feedback.by_receipt(hub_context().db, code)
    if item is None:
        receipt_missed()
        return render_template("receipt_lookup.html",
                               error=_("No message has that receipt number. Please check the digits.")), 404
    proof_error = None
    shown = not feedback.needs_proof(item)
    if request.method == "POST" and not shown:
        shown = feedback.proves(item, request.form.get("phone", ""))
        if not shown:
            receipt_missed()
            proof_error = _("That is not the phone number given with this message.")
    return render_template("receipt.html", item=item, new=request.args.get("new") == "1",
                           code=feedback.format_receipt(item["receipt"]), shown=shown, proof_error=proof_error,
                           categories={c[0]: c for c in feedback.CATEGORIES}), 400 if proof_error else 200
