"""Khmer the way villagers read it: Khmer digits, Khmer dates, line-break points."""

from __future__ import annotations

from datetime import date, datetime

from babel.dates import format_date, format_datetime
from khmercut import tokenize

KHMER_DIGITS = str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩")
LATIN_DIGITS = str.maketrans("០១២៣៤៥៦៧៨៩", "0123456789")
ZWSP = "\u200b"


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
    if lang == "km":
        return format_date(value, "d MMMM y", locale="km").translate(KHMER_DIGITS)
    return format_date(value, "d MMMM y", locale="en")


def format_moment(value: datetime, lang: str = "km", tz: str = "Asia/Phnom_Penh") -> str:
    if lang == "km":
        return format_datetime(value, "d MMMM y HH:mm", tzinfo=tz, locale="km").translate(KHMER_DIGITS)
    return format_datetime(value, "d MMMM y HH:mm", tzinfo=tz, locale="en")


def add_break_points(text: str) -> str:
    """Put zero-width spaces between Khmer words, so every browser can wrap the line.

    Older Android browsers have no Khmer dictionary and would otherwise run
    a whole sentence off the screen. Text that already has them is left alone.
    """
    if not text or ZWSP in text or not any(is_khmer(c) for c in text):
        return text

    out = []
    for line in text.split("\n"):
        words = tokenize(line)
        joined = ""
        for i, w in enumerate(words):
            if i and is_khmer(w[:1]) and is_khmer(words[i - 1][-1:]):
                joined += ZWSP
            joined += w
        out.append(joined)
    return "\n".join(out)


def strip_break_points(text: str) -> str:
    return text.replace(ZWSP, "")
