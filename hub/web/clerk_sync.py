"""Clerk console: the state of sync with the central server, its last error, flagged records."""

from __future__ import annotations

from flask import Blueprint, render_template

from hub.sync import outbox
from hub.sync import state as sync_state
from hub.web.current import hub_context, hub_settings
from hub.web.security import login_required

bp = Blueprint("clerk_sync", __name__, url_prefix="/clerk/sync")


@bp.route("/")
@login_required
def status():
    db = hub_context().db
    s = hub_settings()
    telegram = {r["state"]: r["n"] for r in db.query(
        "select state, count(*) as n from telegram_posts group by state")}
    return render_template(
        "clerk/sync.html", configured=bool(s.central_url), central_url=s.central_url,
        state=sync_state.all_state(db), counts=outbox.counts(db), media=outbox.media_counts(db),
        flagged=outbox.flagged(db), telegram=telegram,
        telegram_on=bool(s.telegram_bot_token and s.telegram_chat_id),
    )
