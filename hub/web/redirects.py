"""Where a ``?next=`` may send the browser: only to one of this app's own pages.

The language switch and the console's login both go back to the page the
person came from. Browsers are lenient with a ``Location``: they drop tabs and
newlines (``/\\t/evil.example`` becomes ``//evil.example``) and read ``\\`` as
``/``, so a value is refused unless it is a plain path of this app, checked
both as sent and percent-decoded.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

from flask import current_app
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

#: Longer targets are not a page anyone came from.
MAX_NEXT = 2000


def _plain(text: str) -> bool:
    """A path with no control, format or line-separator characters, no backslash, not ``//``."""
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return False
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)


def safe_next(target: str | None, fallback: str, prefix: str = "/") -> str:
    """*target* if it is one of this app's pages under *prefix*, else *fallback*."""
    if not target or len(target) > MAX_NEXT:
        return fallback
    decoded = unquote(target)
    if not (_plain(target) and _plain(decoded) and _plain(unquote(decoded))):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(prefix):
        return fallback
    try:
        current_app.url_map.bind("localhost").match(unquote(parts.path), method="GET")
    except RequestRedirect:
        pass  # a page that adds its trailing slash is still ours
    except HTTPException:
        return fallback
    return target
