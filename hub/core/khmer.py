"""Khmer the way villagers read it: Khmer digits, Khmer dates, line-break points."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

KHMER_DIGITS = str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩")
LATIN_DIGITS = str.maketrans("០១២៣៤៥៦៧៨៩", "0123456789")
ZWSP = "\u200b"
#: Signs that end a sentence or follow a number (។ ៕ ៛, and the repeat sign ៗ): a line never starts with one.
NO_BREAK_BEFORE = frozenset("\u17d4\u17d5\u17db\u17d7")


def is_khmer(ch: str) -> bool:
    return "\u1780" <= ch <= "\u17ff" or "\u19e0" <= ch <= "\u19ff"


def digits(value, lang: str = "km") -> str:
    """Write *value* with Khmer digits when *lang* is Khmer."""
    text = str(value)
    return text.translate(KHMER_DIGITS) if lang == "km" else text


def to_latin_digits(text: str) -> str:
    """Accept Khmer digits where a number is typed (a receipt code, a phone number)."""
    return text.translate(LATIN_DIGITS)


def format_day(value: date | datetime, lang: str = "km") -> str:
    """A date as villagers write it, e.g. ២១ វិច្ឆិកា ២០២៦."""
    from babel.dates import format_date  # imported when first used: daemons that never format dates skip it

    if lang == "km":
        return format_date(value, "d MMMM y", locale="km").translate(KHMER_DIGITS)
    return format_date(value, "d MMMM y", locale="en")


def format_moment(value: datetime, lang: str = "km", tz: str = "Asia/Phnom_Penh") -> str:
    from babel.dates import format_datetime  # as in format_day

    if lang == "km":
        return format_datetime(value, "d MMMM y HH:mm", tzinfo=tz, locale="km").translate(KHMER_DIGITS)
    return format_datetime(value, "d MMMM y HH:mm", tzinfo=tz, locale="en")


#: Parts of the day as villagers say them: (first hour, Khmer, English).
DAY_PARTS = ((0, "យប់", "at night"), (5, "ព្រឹក", "in the morning"), (12, "រសៀល", "in the afternoon"),
             (17, "ល្ងាច", "in the evening"), (20, "យប់", "at night"))


def day_part(hour: int, lang: str = "km") -> str:
    part = [p for p in DAY_PARTS if p[0] <= hour][-1]
    return part[1] if lang == "km" else part[2]


def format_friendly(value: datetime, now: datetime, lang: str = "km", tz: str = "Asia/Phnom_Penh") -> str:
    """*value* as people say it, in local time: "today, 9:30 in the morning", "yesterday ...", else the date.

    Times are 12-hour with the part of the day, the way a clock is read aloud in Khmer.
    """
    zone = ZoneInfo(tz)
    local = value.astimezone(zone)
    days = (now.astimezone(zone).date() - local.date()).days
    clock = f"{(local.hour % 12) or 12}:{local.minute:02d}"
    part = day_part(local.hour, lang)
    if lang == "km":
        when = {0: "ថ្ងៃនេះ", 1: "ម្សិលមិញ"}.get(days) or format_day(local, lang)
        return f"{when} ម៉ោង {clock} {part}".translate(KHMER_DIGITS)
    when = {0: "today", 1: "yesterday"}.get(days) or format_day(local, lang)
    return f"{when}, {clock} {part}"


def add_break_points(text: str) -> str:
    """Put zero-width spaces between Khmer words, so every browser can wrap the line.

    Older Android browsers have no Khmer dictionary and would otherwise run
    a whole sentence off the screen. Text that already has them is left alone.
    """
    if not text or ZWSP in text or not any(is_khmer(c) for c in text):
        return text
    # Imported when first needed: the word list and its model cost several MB,
    # which the daemons that never split Khmer text do not pay.
    from khmercut import tokenize

    out = []
    for line in text.split("\n"):
        words = tokenize(line)
        joined = ""
        for i, w in enumerate(words):
            if i and is_khmer(w[:1]) and is_khmer(words[i - 1][-1:]) and w[:1] not in NO_BREAK_BEFORE:
                joined += ZWSP
            joined += w
        out.append(joined)
    return "\n".join(out)


def strip_break_points(text: str) -> str:
    return text.replace(ZWSP, "")
