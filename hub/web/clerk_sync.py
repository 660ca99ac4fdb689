"""Clerk console: the state of sync with the central server in plain words, "Sync now", flagged records."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for

from hub.core.db import utcnow
from hub.sync import outbox
from hub.sync import state as sync_state
from hub.web.console import done
from hub.web.current import hub_context, hub_settings
from hub.web.i18n import _
from hub.web.security import login_required

bp = Blueprint("clerk_sync", __name__, url_prefix="/clerk/sync")


def problem(state: dict) -> str | None:
    """What the last error means for the clerk, in their words; the raw text stays in `hub sync status`."""
    error = state.get("last_error") or ""
    if not error:
        return None
    if "budget" in error:
        return _("Today's data for sync is used up. The rest goes tomorrow, by itself.")
    if "central_token" in error or "central_url" in error:
        return _("Sync is not set up right on this hub. Please tell the technician.")
    if "answered 401" in error or "answered 403" in error:
        return _("The district server refused this hub. Its key may have been withdrawn. Please tell the"
                 " technician.")
    if state.get("offline_since"):
        return None  # said by the offline sentence
    return _("The last sync stopped part of the way. The hub tries again by itself.")


@bp.route("/")
@login_required
def status():
    db = hub_context().db
    s = hub_settings()
    telegram = {r["state"]: r["n"] for r in db.query(
        "select state, count(*) as n from telegram_posts group by state")}
    state = sync_state.all_state(db)
    return render_template(
        "clerk/sync.html", configured=bool(s.central_url), state=state, waiting=outbox.unsent(db),
        counts=outbox.counts(db), media=outbox.media_counts(db), flagged=outbox.flagged(db), telegram=telegram,
        telegram_on=bool(s.telegram_bot_token and s.telegram_chat_id), problem=problem(state),
        asked=sync_state.sync_requested(db),
    )


@bp.route("/now", methods=["POST"])
@login_required
def sync_now():
    """Ask hub-sync to run a cycle at once instead of at its next turn."""
    if not hub_settings().central_url:
        done(_("Sync is off on this hub, so there is nothing to start."))
    else:
        sync_state.request_sync(hub_context().db, utcnow())
        done(_("Sync starts within a few seconds. Reload this page to see how it went."))
    return redirect(url_for("clerk_sync.status"), code=303)
