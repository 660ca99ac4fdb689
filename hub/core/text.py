"""What a stored text field may hold: a string, of bounded length, with no control characters.

Every domain module checks its own fields with :func:`clean`, with its own
limits, and turns a :class:`TextError` into its own message. Browsers send a
textarea's line breaks as CR LF; they are stored as LF.
"""

from __future__ import annotations

import unicodedata

#: Characters a multi-line text may hold besides printable ones.
TEXT_CONTROLS = frozenset("\n\t")


class TextError(ValueError):
    """A field that cannot be stored; ``code`` is ``not_text``, ``too_long`` or ``bad_characters``."""

    def __init__(self, code: str, field: str = ""):
        super().__init__(f"{field}: {code}" if field else code)
        self.code = code
        self.field = field


def bad_character(text: str, multiline: bool = False) -> str | None:
    """The first character *text* may not hold (a control character, a lone surrogate), or None."""
    allowed = TEXT_CONTROLS if multiline else frozenset()
    for c in text:
        if c in allowed:
            continue
        if unicodedata.category(c) in ("Cc", "Cs") or c in "\u2028\u2029":
            return c
    return None


def clean(value, max_length: int, field: str = "", multiline: bool = False, strip: bool = True) -> str:
    """*value* as text to store: a string (None is empty), CR LF made LF, stripped, checked.

    Raises :class:`TextError` for a value that is not a string, is longer than
    *max_length* characters, or holds a control character (only LF and TAB, and
    only in a *multiline* field, are allowed).
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TextError("not_text", field)
    text = value.replace("\r\n", "\n")
    if strip:
        text = text.strip()
    if len(text) > max_length:
        raise TextError("too_long", field)
    if bad_character(text, multiline) is not None:
        raise TextError("bad_characters", field)
    return text


def sanitise(text: str, multiline: bool = True) -> str:
    """*text* with the characters :func:`clean` refuses removed: for text no person typed (an engine's output)."""
    allowed = TEXT_CONTROLS if multiline else frozenset()
    return "".join(c for c in (text or "").replace("\r\n", "\n")
                   if c in allowed or not (unicodedata.category(c) in ("Cc", "Cs") or c in "\u2028\u2029"))
