"""Khmer first, English beside it: the language of each request and its messages.

Every user-facing string is English in the code, wrapped in ``_()``, and
translated in ``hub/translations/km/LC_MESSAGES/messages.po`` where a native
speaker can review it. The catalogue is read once when the app is built.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import abort, current_app, g, redirect, request
from markupsafe import Markup

from hub.core import khmer, lunar
from hub.core.words import LANGUAGES, N_, load_catalog
from hub.web.current import hub_context, hub_settings
from hub.web.redirects import safe_next

COOKIE = "lang"


def init_app(app) -> None:
    catalogs = {lang: load_catalog(lang) for lang in LANGUAGES}
    default = app.config["HUB_SETTINGS"].default_language
    app.extensions["catalogs"] = catalogs

    @app.before_request
    def _pick_language():
        chosen = request.args.get("lang") or request.cookies.get(COOKIE)
        g.lang = chosen if chosen in LANGUAGES else default

    @app.context_processor
    def _i18n():
        current = g.get("lang", default)
        return {"_": gettext, "lang": current, "other_lang": "en" if current == "km" else "km",
                "num": lambda v: khmer.digits(v, current),
                "day": lambda v: khmer.format_day(v, current),
                "moment": _moment, "lunar": _lunar, "both": both, "breaks": khmer.add_break_points,
                "status_word": lambda s: gettext(STATUS_WORDS.get(s, s))}


def gettext(message: str, **values) -> str:
    catalog = current_app.extensions["catalogs"].get(g.get("lang", "km"), {})
    text = catalog.get(message, message)
    if values:
        lang = g.get("lang", "km")
        text = text % {k: khmer.digits(v, lang) if isinstance(v, int) else v for k, v in values.items()}
    return text


_ = gettext


#: Words for feedback statuses, shown to clerks and villagers.
STATUS_WORDS = {
    "new": N_("New"),
    "in_progress": N_("In progress"),
    "answered": N_("Answered"),
    "closed": N_("Closed"),
}


def in_language(message: str, lang: str) -> str:
    return current_app.extensions["catalogs"].get(lang, {}).get(message, message)


def both(message: str) -> Markup:
    """Khmer with English beneath, for the few words people who read little must find."""
    km = in_language(message, "km")
    if km == message:
        return Markup.escape(message)
    return Markup('<span lang="km">%s</span> <small lang="en">%s</small>') % (km, message)


def _moment(value) -> str:
    """When something happened, as people say it: today, yesterday, morning, evening (local time)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    # The central server's console has no hub context: its "now" is its own clock.
    now = hub_context().clock.now() if "HUB_CONTEXT" in current_app.config else datetime.now(UTC)
    return khmer.format_friendly(value, now, g.get("lang", "km"), hub_settings().timezone)


def _lunar(value) -> str:
    """The Khmer lunar day of *value* in local time, e.g. ថ្ងៃសុក្រ ៥ កើត ខែពិសាខ ("" outside 1900-2199)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    day = lunar.lunar_date(value.astimezone(ZoneInfo(hub_settings().timezone)).date())
    if day is None:
        return ""
    return day.khmer() if g.get("lang", "km") == "km" else day.english()


def switch_language(code: str):
    """Remember *code* in a cookie and go back to ``?next=`` (a local path only)."""
    if code not in LANGUAGES:
        abort(404)
    resp = redirect(safe_next(request.args.get("next"), "/"), code=303)
    resp.set_cookie(COOKIE, code, max_age=365 * 86400, samesite="Lax", httponly=True)
    return resp
