"""Clerk console: loudspeaker announcements, the week ahead, and the proof-of-play log."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date, get_day_names
from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for

from hub.announce import schedule, store
from hub.core import khmer
from hub.core.errors import Busy, DiskFull
from hub.core.media import MediaError
from hub.web.console import done
from hub.web.current import hub_context, hub_settings
from hub.web.i18n import N_, _
from hub.web.security import login_required
from hub.web.uploads import busy_message, discard, media_message, prepare_audio

bp = Blueprint("clerk_announcements", __name__, url_prefix="/clerk/announcements")

REPEAT_CHOICES = tuple(range(1, store.MAX_REPEATS + 1))
#: The words for an occurrence's state, shown in the week view, lists and the log.
STATE_WORDS = {
    "due": N_("Will play"),
    "waiting": N_("Waiting"),
    "playing": N_("Playing"),
    "played": N_("Played"),
    "missed": N_("Missed"),
    "failed": N_("Failed"),
    "cancelled": N_("Cancelled"),
}
#: What the announcer writes when an occurrence did not play, in words a clerk reads.
DETAIL_WORDS = {
    "interrupted by a restart": N_("Cut short: the hub restarted (power cut?)"),
    "interrupted by an urgent announcement": N_("Cut short by an urgent announcement"),
    "stopped: the announcer was shut down": N_("Cut short: the hub was shut down"),
    "stopped by a clerk": N_("Stopped by a clerk"),
}
SCHEDULE_ERRORS = {
    "no_audio": N_("Please upload a recording or choose a notice with audio."),
    "bad_date": N_("Please enter the date and time again."),
    "in_the_past": N_("That time has already passed."),
    "no_weekdays": N_("Please choose at least one day of the week."),
    "ends_before_start": N_("The last day is before the first day."),
    "bad_kind": N_("Please choose when it plays."),
    "title_too_long": N_("A title may be at most 200 characters long."),
    "bad_characters": N_("The title has characters the hub cannot keep (control characters). Please type it again."),
}


# --- words --------------------------------------------------------------------------------------

def error_text(code: str) -> str:
    return _(SCHEDULE_ERRORS.get(code, SCHEDULE_ERRORS["bad_date"]))


def _zone() -> ZoneInfo:
    return ZoneInfo(hub_settings().timezone)


def _lang() -> str:
    return g.get("lang", "km")


def _clock(t: time) -> str:
    return khmer.digits(t.strftime("%H:%M"), _lang())


def day_names() -> list[str]:
    names = get_day_names("wide", locale=_lang())
    return [names[i] for i in range(7)]


def long_day(d: date) -> str:
    text = format_date(d, "EEEE d MMMM y", locale=_lang())
    return khmer.digits(text, _lang())


def detail_words(text: str) -> str:
    if not text:
        return ""
    if text in DETAIL_WORDS:
        return _(DETAIL_WORDS[text])
    m = re.match(r"too late: (\d+) min", text)
    if m:
        return _("Too late: the hub was off or not sure of the time (%(minutes)s min late)",
                 minutes=int(m.group(1)))
    return text


def describe(rule_text: str | None) -> str:
    """A schedule in the clerk's language, e.g. "Every Monday, Thursday at 07:00 until ..."."""
    if not rule_text:
        return _("Play now")
    r = schedule.parse(rule_text)
    names = day_names()
    at = _clock(r.at)
    if r.kind == "once":
        return _("Once, %(day)s at %(time)s", day=khmer.format_day(r.start, _lang()), time=at)
    if r.kind == "daily":
        text = _("Every day at %(time)s", time=at)
    elif r.kind == "weekdays":
        text = _("Every %(days)s at %(time)s", days=", ".join(names[d] for d in r.weekdays),
                 time=at)
    elif r.kind == "weekly":
        text = _("Every week on %(day)s at %(time)s", day=names[r.start.weekday()], time=at)
    else:
        text = _("Every month on day %(day)s at %(time)s", day=r.start.day, time=at)
        if r.start.day > 28:
            text += " " + _("(or the last day of a shorter month)")
    text += " " + _("from %(day)s", day=khmer.format_day(r.start, _lang()))
    if r.until:
        text += " " + _("until %(day)s", day=khmer.format_day(r.until, _lang()))
    return text


@bp.app_context_processor
def _words():
    if not request.path.startswith("/clerk/announcements"):
        return {}
    return {"describe": describe, "state_word": lambda s: _(STATE_WORDS.get(s, s)),
            "detail_words": detail_words, "long_day": long_day}


# --- pages ---------------------------------------------------------------------------------------

def _local_times(rows: list[dict], *keys: str) -> list[dict]:
    zone = _zone()
    for r in rows:
        for k in keys:
            if r.get(k):
                r[k + "_local"] = _clock(store.parse_time(r[k]).astimezone(zone).time())
    return rows


@bp.route("/")
@login_required
def index():
    ctx = hub_context()
    now = ctx.clock.now()
    items = store.listing(ctx.db)
    missed = store.missed(ctx.db, now - timedelta(days=14))
    recent = store.recent(ctx.db, 10)
    return render_template("clerk/announcements.html", items=items, missed=missed, recent=recent,
                           queued=request.args.get("queued") == "1")


def _form_defaults() -> dict:
    now = hub_context().clock.now().astimezone(_zone())
    soon = (now + timedelta(minutes=10)).replace(second=0, microsecond=0)
    return {"when": "once", "freq": "weekdays", "date": soon.date().isoformat(),
            "time": soon.strftime("%H:%M"), "repeats": "1", "days": []}


def _recurrence_from_form(f) -> schedule.Recurrence:
    try:
        first = date.fromisoformat(khmer.to_latin_digits(f.get("date", "").strip()))
        at = time.fromisoformat(khmer.to_latin_digits(f.get("time", "").strip()))
        end_text = khmer.to_latin_digits(f.get("end_date", "").strip())
        until = date.fromisoformat(end_text) if end_text else None
    except ValueError:
        raise schedule.ScheduleError("bad_date") from None
    at = at.replace(second=0, microsecond=0)
    if f.get("when") == "once":
        return schedule.Recurrence("once", first, at)
    kind = f.get("freq", "")
    days = tuple(sorted({int(d) for d in f.getlist("days") if d in "0123456"}))
    return schedule.Recurrence(kind, first, at, days, until)


def _render_form(form: dict, error: str | None, status: int = 200):
    ctx = hub_context()
    return render_template("clerk/announcement_form.html", form=form, error=error,
                           notices=store.notices_with_audio(ctx.db), repeat_choices=REPEAT_CHOICES,
                           day_names=day_names(), quiet_start=hub_settings().quiet_hours_start,
                           quiet_end=hub_settings().quiet_hours_end), status


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    if request.method == "GET":
        return _render_form(_form_defaults(), None)
    f = request.form
    form = f.to_dict()
    form["days"] = f.getlist("days")
    ctx = hub_context()
    when = f.get("when")
    fields = {"title": f.get("title", ""), "urgent": f.get("urgent") == "1",
              "notice_id": f.get("notice_id", "")}
    try:
        fields["repeats"] = int(khmer.to_latin_digits(f.get("repeats", "1")))
        if fields["repeats"] not in REPEAT_CHOICES:
            raise ValueError
    except ValueError:
        fields["repeats"] = 1
    rule_text = None
    try:
        if when in ("once", "recurring"):
            rule_text = _recurrence_from_form(f).to_rrule(hub_settings().timezone)
        elif when != "now":
            raise schedule.ScheduleError("bad_kind")
        store.refuse_past(rule_text, ctx.clock.now())  # before the upload is converted
        store.check({**fields, "rrule": rule_text})
    except (ValueError, OverflowError) as e:
        return _render_form(form, error_text(getattr(e, "code", "bad_date")), 400)
    fields["rrule"] = rule_text
    try:
        audio = prepare_audio(request.files.get("audio"))
    except MediaError as e:
        return _render_form(form, media_message(e), 415)
    except Busy:
        return _render_form(form, busy_message(), 503)
    except DiskFull:
        return _render_form(form, _("The hub's storage is full. Nothing was saved."), 507)
    rows = [audio] if audio else []
    if audio:
        fields["audio_id"] = audio["id"]
        del fields["notice_id"]
    try:
        announcement_id = store.create(ctx, fields, rows)
    except schedule.ScheduleError as e:
        discard(rows)
        return _render_form(form, error_text(e.code), 400)
    if not rule_text:
        done(_("It plays in a moment, before anything scheduled."))
        return redirect(url_for(".index", queued="1"), code=303)
    done(_("Saved. Here is when it plays."))
    first = store.get(ctx.db, announcement_id)["next_at"]
    quiet = schedule.QuietHours.from_settings(hub_settings())
    first_start = schedule.play_after(store.parse_time(first), fields["urgent"], quiet)
    day = first_start.astimezone(_zone()).date()
    return redirect(url_for(".week", start=schedule.week_start(day).isoformat(),
                            saved=announcement_id), code=303)


@bp.route("/<announcement_id>/play", methods=["POST"])
@login_required
def play(announcement_id: str):
    try:
        store.play_now(hub_context(), announcement_id)
    except KeyError:
        abort(404)
    done(_("It plays in a moment, before anything scheduled."))
    return redirect(url_for(".index", queued="1"), code=303)


@bp.route("/<announcement_id>/stop", methods=["GET", "POST"])
@login_required
def stop(announcement_id: str):
    """GET asks first (works without JavaScript); POST, from that page, stops the announcement."""
    ctx = hub_context()
    item = store.get(ctx.db, announcement_id)
    if item is None:
        abort(404)
    if request.method == "GET":
        return render_template("clerk/confirm.html", title=_("Stop this announcement?"),
                               question=_("“%(title)s” will not play again, and a playing that has begun is cut"
                                          " short. To play it later, make a new announcement.",
                                          title=item.get("title") or _("(no title)")),
                               action=url_for(".stop", announcement_id=announcement_id),
                               button=_("Yes, stop it"), cancel=url_for(".index"))
    try:
        store.stop(ctx, announcement_id)
    except KeyError:
        abort(404)
    done(_("Stopped. It will not play again."))
    return redirect(url_for(".index"), code=303)


@bp.route("/week")
@login_required
def week():
    ctx = hub_context()
    now = ctx.clock.now()
    today = now.astimezone(_zone()).date()
    try:
        first = schedule.week_start(date.fromisoformat(request.args.get("start", "")))
        if not 2000 <= first.year <= 2200:  # a week a schedule can hold; far ones overflow a date
            raise ValueError(first)
    except ValueError:
        first = schedule.week_start(today)
    quiet = schedule.QuietHours.from_settings(hub_settings())
    lo = datetime.combine(first, time(0), _zone())
    occurrences = store.occurrences_between(ctx.db, lo, lo + timedelta(days=7))
    days = schedule.week(store.listing(ctx.db, include_stopped=True), occurrences, first, quiet,
                         now)
    zone = _zone()
    shown = [(d, [(_clock(s.starts.astimezone(zone).time()), s) for s in slots])
             for d, slots in days]
    return render_template("clerk/announcement_week.html", days=shown, first=first, today=today,
                           prev=(first - timedelta(days=7)).isoformat(),
                           next=(first + timedelta(days=7)).isoformat(),
                           saved=request.args.get("saved"))


@bp.route("/log")
@login_required
def log():
    db = hub_context().db
    rows = _local_times(store.log(db, limit=200), "due_at", "started_at")
    return render_template("clerk/announcement_log.html", rows=rows)


@bp.route("/log.csv")
@login_required
def log_csv():
    data = "\ufeff" + store.export_csv(hub_context().db)  # BOM: spreadsheets then read Khmer right
    return Response(data, mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="play-log.csv"'})
