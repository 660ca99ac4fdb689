"""What a clerk's or officer's password must be: long, not the user's name, not a common one.

The common passwords are a plain text file in the package
(``hub/common-passwords.txt``, one a line, lower case). A password is
compared with it in lower case, as typed and with spaces and punctuation
taken out, so "Password 2026!" counts as "password2026".
"""

from __future__ import annotations

import functools
from pathlib import Path

from hub.core.errors import HubError
from hub.core.words import N_, load_catalog

MIN_LENGTH = 12
#: Longer passwords would only make hashing slow; nobody types more.
MAX_LENGTH = 1024
COMMON_FILE = Path(__file__).with_name("common-passwords.txt")

TOO_SHORT = N_("The password must be at least %(n)s characters long.")
TOO_LONG = N_("The password must be at most %(n)s characters long.")
HAS_NAME = N_("The password must not contain the user name.")
TOO_COMMON = N_("This password is too common. Choose another one: a few words make a good one.")


class PasswordRefused(HubError):
    """A password the rules refuse; ``str()`` gives the reason in Khmer, then English."""

    def __init__(self, message: str, **values):
        self.message, self.values = message, values
        super().__init__(f"{_km(message) % values} / {message % values}")


@functools.cache
def _catalog() -> dict[str, str]:
    return load_catalog("km")


def _km(message: str) -> str:
    return _catalog().get(message, message)


@functools.cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(x.strip() for x in lines if x.strip() and not x.startswith("#"))


def _squeezed(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def check(password: str, username: str = "") -> None:
    """Raise :class:`PasswordRefused` unless *password* may be used by *username*."""
    if len(password) < MIN_LENGTH:
        raise PasswordRefused(TOO_SHORT, n=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        raise PasswordRefused(TOO_LONG, n=MAX_LENGTH)
    name = username.strip().lower()
    lowered = password.lower()
    squeezed_name = _squeezed(name)
    if name and (lowered == name or (len(name) >= 3 and name in lowered)
                 or (len(squeezed_name) >= 3 and squeezed_name in _squeezed(password))):
        raise PasswordRefused(HAS_NAME)
    common = common_passwords()
    if lowered in common or lowered.strip() in common or _squeezed(password) in common or len(set(lowered)) < 4:
        raise PasswordRefused(TOO_COMMON)
