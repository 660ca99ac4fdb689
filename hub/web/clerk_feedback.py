"""Clerk console: the feedback inbox, search, replies written and spoken, reply templates, and the CSV export."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for

from hub import feedback, reply_templates
from hub.core.errors import Busy, DiskFull
from hub.core.media import MediaError
from hub.voice import transcripts
from hub.web.console import done
from hub.web.current import hub_context
from hub.web.feedback_csv import feedback_csv
from hub.web.i18n import STATUS_WORDS, _
from hub.web.portal import feedback_message, page_number
from hub.web.security import login_required
from hub.web.uploads import busy_message, media_message, prepare_audio

bp = Blueprint("clerk_feedback", __name__, url_prefix="/clerk/feedback")
#: Items per page of the inbox, so a page stays small on a clerk's phone.
ITEMS_PER_PAGE = 40


@bp.route("/")
@login_required
def inbox():
    status = request.args.get("status") or None
    category = request.args.get("category") or None
    q = (request.args.get("q") or "").strip()
    unread_only = request.args.get("unread") == "1"
    page = page_number()
    items = feedback.inbox(hub_context().db, status, category, ITEMS_PER_PAGE + 1, (page - 1) * ITEMS_PER_PAGE,
                           search=q, unread=unread_only)
    return render_template("clerk/inbox.html", items=items[:ITEMS_PER_PAGE], page=page,
                           more=len(items) > ITEMS_PER_PAGE, status=status, category=category, q=q,
                           unread_only=unread_only, statuses=feedback.STATUSES, categories=feedback.CATEGORIES,
                           names={c[0]: c for c in feedback.CATEGORIES})


def _render_item(row: dict, error: str | None = None, reply: str | None = None, status: int = 200):
    db = hub_context().db
    return render_template("clerk/feedback_item.html", item=row, error=error,
                           reply=row["reply"] if reply is None else reply,
                           statuses=feedback.STATUSES, names={c[0]: c for c in feedback.CATEGORIES},
                           code=feedback.format_receipt(row["receipt"]),
                           transcript=transcripts.for_feedback(db, row["id"]) if row["audio_id"] else None,
                           templates=reply_templates.all_templates(db)), status


@bp.route("/<feedback_id>", methods=["GET", "POST"])
@login_required
def item(feedback_id: str):
    ctx = hub_context()
    row = feedback.get(ctx.db, feedback_id)
    if row is None:
        abort(404)
    if request.method == "GET":
        feedback.mark_seen(ctx, feedback_id)
        chosen = reply_templates.get(ctx.db, request.args.get("template", ""))
        return _render_item(row, reply=chosen["body"] if chosen else None)
    f = request.form
    reply = f.get("reply")
    try:
        reply_audio = prepare_audio(request.files.get("reply_audio"))
    except MediaError as e:
        return _render_item(row, media_message(e), reply, 415)
    except Busy:
        return _render_item(row, busy_message(), reply, 503)
    except DiskFull:
        return _render_item(row, _("The hub's storage is full. Nothing was saved."), reply, 507)
    try:
        feedback.set_status(ctx, feedback_id, f.get("status", row["status"]), reply, reply_audio,
                            remove_reply_audio=f.get("remove_reply_audio") == "1")
    except feedback.FeedbackError as e:
        message = {"text_too_long": _("Your answer is too long."),
                   "bad_characters": feedback_message(e.code)}.get(e.code, _("That change could not be saved."))
        return _render_item(row, message, reply, 400)
    after = feedback.get(ctx.db, feedback_id)
    code = feedback.format_receipt(after["receipt"])
    if reply_audio is not None:
        done(_("Spoken answer saved. The villager hears it with receipt number %(code)s.", code=code))
    elif (after["reply"] or "") != (row["reply"] or ""):
        done(_("Answer saved. The villager sees it with receipt number %(code)s.", code=code))
    elif f.get("remove_reply_audio") == "1" and row["reply_audio_id"]:
        done(_("The spoken answer was removed."))
    else:
        done(_("Saved: %(status)s.", status=_(STATUS_WORDS[after["status"]])))
    return redirect(url_for("clerk_feedback.item", feedback_id=feedback_id), code=303)


@bp.route("/export.csv")
@login_required
def export():
    return Response(feedback_csv(hub_context().db), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="feedback.csv"'})


# --- reply templates -------------------------------------------------------------------------------

def _template_message(e: reply_templates.TemplateError) -> str:
    if e.code == "too_long":
        return _("That title or text is too long.")
    return _("A template needs a title and a text.")


def _save_template(save, page: str, done_message: str, **page_values):
    """Save a template from the form with *save(title, body)*; on a refusal, the *page* again with why."""
    try:
        save(request.form.get("title", ""), request.form.get("body", ""))
    except reply_templates.TemplateError as e:
        return render_template(page, form=request.form, error=_template_message(e), **page_values), 400
    done(done_message)
    return redirect(url_for("clerk_feedback.templates"), code=303)


@bp.route("/templates", methods=["GET", "POST"])
@login_required
def templates():
    db = hub_context().db
    if request.method == "POST":
        return _save_template(lambda title, body: reply_templates.create(db, title, body),
                              "clerk/reply_templates.html", _("Template added."),
                              items=reply_templates.all_templates(db))
    return render_template("clerk/reply_templates.html", items=reply_templates.all_templates(db), form={},
                           error=None)


@bp.route("/templates/<template_id>", methods=["GET", "POST"])
@login_required
def template(template_id: str):
    db = hub_context().db
    row = reply_templates.get(db, template_id)
    if row is None:
        abort(404)
    if request.method == "POST":
        return _save_template(lambda title, body: reply_templates.update(db, template_id, title, body),
                              "clerk/reply_template.html", _("Template saved."), item=row)
    return render_template("clerk/reply_template.html", item=row, form=row, error=None)


@bp.route("/templates/<template_id>/delete", methods=["GET", "POST"])
@login_required
def delete_template(template_id: str):
    db = hub_context().db
    row = reply_templates.get(db, template_id)
    if row is None:
        abort(404)
    if request.method == "GET":
        return render_template("clerk/confirm.html", title=_("Delete this template?"),
                               question=_("The template “%(title)s” will be deleted. Answers already sent stay"
                                          " as they are.", title=row["title"]),
                               action=url_for("clerk_feedback.delete_template", template_id=template_id),
                               button=_("Yes, delete it"), cancel=url_for("clerk_feedback.templates"))
    reply_templates.delete(db, template_id)
    done(_("Template deleted."))
    return redirect(url_for("clerk_feedback.templates"), code=303)
