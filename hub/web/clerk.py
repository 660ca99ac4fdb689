"""The clerk console: login, logout, the dashboard and the clock."""

from __future__ import annotations

import math

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from hub import accounts, feedback
from hub.core import problems
from hub.core.clock import ClockRefused, parse_device_time
from hub.web.chart import stacked_bars
from hub.web.current import hub_context, hub_settings
from hub.web.i18n import N_, _
from hub.web.redirects import safe_next
from hub.web.security import client_address, log_in, log_out, login_required, on_staff_side

bp = Blueprint("clerk", __name__, url_prefix="/clerk")

#: The console's menu: (endpoint, icon, English label). Each console page adds its entry here.
CONSOLE_MENU = [
    ("clerk.dashboard", "chart", N_("Dashboard")),
    ("clerk_notices.index", "notice", N_("Notices")),
    ("clerk_feedback.inbox", "inbox", N_("Feedback")),
    ("clerk_sync.status", "sync", N_("Sync")),
    ("clerk_announcements.index", "loudspeaker", N_("Announcements")),
    ("clerk_voice.recordings", "mic", N_("Recordings")),
    ("clerk_voice.prompts", "listen", N_("Spoken prompts")),
    ("clerk_poster.poster", "qr", N_("Poster")),
]


def _safe_next(target: str | None) -> str:
    return safe_next(target, url_for("clerk.dashboard"), prefix="/clerk")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not on_staff_side():
        abort(404)
    error = None
    status = 200
    if request.method == "POST":
        s = hub_settings()
        outcome, user, wait = accounts.attempt_login(
            hub_context().db, request.form.get("username") or "", request.form.get("password") or "",
            client_address(), s.login_attempts, s.login_window_minutes * 60)
        if outcome == "ok":
            log_in(user)
            return redirect(_safe_next(request.args.get("next")), code=303)
        if outcome == "locked":
            error = _("Too many failed logins. Please wait %(minutes)s minutes and try again.",
                      minutes=max(1, math.ceil(wait / 60)))
            status = 429
        else:
            error = _("Wrong name or password.")
            status = 401
    return render_template("clerk/login.html", error=error), status


@bp.route("/logout", methods=["POST"])
def logout():
    log_out()
    return redirect(url_for("clerk.login"), code=303)


#: The daemons that report equipment they cannot use, as the console names them.
DAEMON_NAMES = {"announcer": N_("Loudspeaker announcer"), "recorder": N_("Recording kiosk")}


@bp.route("/")
@login_required
def dashboard():
    ctx = hub_context()
    weeks, counts = feedback.weekly_counts(ctx.db, 8, ctx.clock.now())
    names = {c[0]: (c[2] if g.lang == "km" else c[1]) for c in feedback.CATEGORIES}
    series = [(names[k], v) for k, v in counts.items() if any(v)]
    chart = stacked_bars([w[5:] for w in weeks], series or [(names["other"], [0] * len(weeks))],
                         label=_("Feedback per week and category, the last %(n)s weeks", n=len(weeks)),
                         table_id="chart-table")
    by_status = {s: 0 for s in feedback.STATUSES}
    for r in ctx.db.query("select status, count(*) as n from feedback group by status"):
        by_status[r["status"]] = r["n"]
    devices = [(DAEMON_NAMES.get(daemon, daemon), p["text"])
               for daemon, parts in problems.current(hub_settings().data_dir).items() for p in parts.values()]
    return render_template("clerk/dashboard.html", chart=chart, by_status=by_status,
                           weeks=weeks, counts=counts, names=names, devices=devices)


@bp.route("/clock", methods=["POST"])
@login_required
def set_clock():
    """Trust the time the clerk's device shows (JavaScript fills it in; typed otherwise)."""
    ctx = hub_context()
    try:
        true_time = parse_device_time(request.form.get("device_epoch_ms"), request.form.get("local_time"),
                                      hub_settings().timezone)
        ctx.clock.set_trusted_time("clerk", true_time)
    except ClockRefused as e:
        return render_template("message.html", title=_("The time was not understood"),
                               message=_(e.message, **e.values)), 400
    flash(_("The hub's clock is set. Scheduled announcements play on time again."), "ok")
    return redirect(_safe_next(request.form.get("next")), code=303)
