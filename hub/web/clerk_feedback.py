"""Clerk console: the feedback inbox, replies, and the CSV export."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for

from hub import feedback
from hub.web.current import hub_context
from hub.web.i18n import _
from hub.web.portal import feedback_message, page_number
from hub.web.security import login_required

bp = Blueprint("clerk_feedback", __name__, url_prefix="/clerk/feedback")
#: Items per page of the inbox, so a page stays small on a clerk's phone.
ITEMS_PER_PAGE = 40


@bp.route("/")
@login_required
def inbox():
    status = request.args.get("status") or None
    category = request.args.get("category") or None
    page = page_number()
    items = feedback.inbox(hub_context().db, status, category, ITEMS_PER_PAGE + 1, (page - 1) * ITEMS_PER_PAGE)
    return render_template("clerk/inbox.html", items=items[:ITEMS_PER_PAGE], page=page,
                           more=len(items) > ITEMS_PER_PAGE, status=status, category=category,
                           statuses=feedback.STATUSES, categories=feedback.CATEGORIES,
                           names={c[0]: c for c in feedback.CATEGORIES})


@bp.route("/<feedback_id>", methods=["GET", "POST"])
@login_required
def item(feedback_id: str):
    ctx = hub_context()
    row = feedback.get(ctx.db, feedback_id)
    if row is None:
        abort(404)
    error = None
    if request.method == "POST":
        try:
            feedback.set_status(ctx, feedback_id, request.form.get("status", row["status"]),
                                request.form.get("reply"))
            return redirect(url_for("clerk_feedback.item", feedback_id=feedback_id), code=303)
        except feedback.FeedbackError as e:
            error = feedback_message(e.code) if e.code != "bad_status" else _("That change could not be saved.")
    return render_template("clerk/feedback_item.html", item=row, error=error,
                           statuses=feedback.STATUSES, names={c[0]: c for c in feedback.CATEGORIES},
                           code=feedback.format_receipt(row["receipt"]))


@bp.route("/export.csv")
@login_required
def export():
    data = "\ufeff" + feedback.export_csv(hub_context().db)  # BOM: spreadsheets then read Khmer right
    return Response(data, mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="feedback.csv"'})
