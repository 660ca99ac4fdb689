"""The clerk's CSV of feedback: headings in the clerk's language, local times, categories and statuses in words."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import g

from hub import feedback
from hub.core import csvsafe
from hub.web.current import hub_settings
from hub.web.i18n import N_, STATUS_WORDS, _

#: Column headings, in the order of feedback.CSV_COLUMNS.
HEADINGS = {
    "receipt": N_("Receipt number"),
    "created_at": N_("Received"),
    "source": N_("Sent from"),
    "category": N_("Category"),
    "status": N_("Status"),
    "body": N_("Message"),
    "name": N_("Name"),
    "phone": N_("Phone"),
    "village": N_("Village"),
    "lang": N_("Language"),
    "consent_share": N_("May be shared with the district"),
    "audio_name": N_("Voice recording"),
    "reply": N_("Answer"),
    "reply_audio_name": N_("Spoken answer"),
    "replied_at": N_("Answered at"),
    "clock_trusted": N_("Time sure"),
    "id": N_("Id"),
    "hub_id": N_("Hub"),
}
SOURCE_WORDS = {"portal": N_("Phone (portal)"), "kiosk": N_("Kiosk"), "clerk": N_("Clerk")}
LANGUAGE_WORDS = {"km": N_("Khmer"), "en": N_("English"), "ko": N_("Korean")}
TIME_COLUMNS = ("created_at", "replied_at")
YES_NO_COLUMNS = ("consent_share", "clock_trusted")


def _local(value: str | None, zone: ZoneInfo) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _cell(column: str, value, zone: ZoneInfo, categories: dict) -> str:
    if column in TIME_COLUMNS:
        return _local(value, zone)
    if column in YES_NO_COLUMNS:
        return _("Yes") if value else _("No")
    if column == "category":
        return categories.get(value, value or "")
    if column == "status":
        return _(STATUS_WORDS.get(value, value or ""))
    if column == "source":
        return _(SOURCE_WORDS.get(value, value or ""))
    if column == "lang":
        return _(LANGUAGE_WORDS.get(value, value or ""))
    if value is None:
        return ""
    return str(value).replace("\u200b", "")  # break points help browsers, not spreadsheets


def feedback_csv(db) -> str:
    """Every feedback item as CSV text with a BOM, in the language of this request."""
    zone = ZoneInfo(hub_settings().timezone)
    khmer = g.get("lang", "km") == "km"
    categories = {key: (km if khmer else en) for key, en, km, _icon in feedback.CATEGORIES}
    head = [_(HEADINGS[c]) for c in feedback.CSV_COLUMNS]
    rows = ([_cell(c, r[c], zone, categories) for c in feedback.CSV_COLUMNS] for r in feedback.export_rows(db))
    return csvsafe.to_text([head, *rows])
