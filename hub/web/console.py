"""What every console page shows around its content: the menu and where the clerk is, unread feedback,
the clock banner, and the messages that confirm what the last action did."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, flash, g, request

from hub import feedback
from hub.sync import state as sync_state
from hub.web.clerk import CONSOLE_MENU
from hub.web.current import hub_context, hub_settings

bp = Blueprint("console", __name__)

#: Pages without a menu entry of their own, and the entry they belong to.
PARENT_ENTRY = {
    "clerk_voice.transcript": "clerk_voice.recordings",
    "clerk_voice.retry": "clerk_voice.recordings",
    "clerk_voice.replace_prompt": "clerk_voice.prompts",
}
#: Pages where a quiet clock note is shown while the hub waits for its first sync.
CLOCK_NOTE_PAGES = ("clerk.dashboard", "clerk_announcements.index", "clerk_announcements.new",
                    "clerk_announcements.week")


def done(message: str) -> None:
    """Confirm on the next page what an action did (\"Published.\", \"Stopped.\")."""
    flash(message, "ok")


def current_entry(endpoint: str | None) -> str | None:
    """The menu entry the page at *endpoint* belongs to, for aria-current."""
    if not endpoint:
        return None
    entries = [e for e, _icon, _label in CONSOLE_MENU]
    if endpoint in entries:
        return endpoint
    if endpoint in PARENT_ENTRY:
        return PARENT_ENTRY[endpoint]
    blueprint = endpoint.split(".")[0]
    if blueprint == "clerk":
        return None
    return next((e for e in entries if e.split(".")[0] == blueprint), None)


def clock_banner(ctx, settings) -> str | None:
    """None when the clock is trusted; "waiting" while a first sync should vouch for it; else "alert"."""
    if ctx.clock.trusted():
        return None
    if settings.central_url and not sync_state.get_state(ctx.db, "offline_since"):
        return "waiting"
    return "alert"


@bp.app_context_processor
def _console():
    if not request.path.startswith("/clerk") or g.get("user") is None:
        return {"console_menu": CONSOLE_MENU, "menu_current": None}
    ctx, s = hub_context(), hub_settings()
    banner = clock_banner(ctx, s)
    if banner == "waiting" and request.endpoint not in CLOCK_NOTE_PAGES:
        banner = None
    now = ctx.clock.now().astimezone(ZoneInfo(s.timezone))
    return {"console_menu": CONSOLE_MENU, "menu_current": current_entry(request.endpoint),
            "clock_banner": banner, "clock_trusted": banner is None,
            "hub_local_time": now.strftime("%Y-%m-%dT%H:%M"),
            "unread": feedback.unread_counts(ctx.db)}
