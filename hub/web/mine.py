"""'My messages on this phone': the receipt codes this phone sent, kept in a cookie, listed with their status.

The cookie holds only receipt codes, which the villager was shown anyway; it
grants nothing a typed code would not. Its list has a page of its own, so the
pages everyone shares stay the same for everyone.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from hub import feedback
from hub.web.current import hub_context
from hub.web.throttle import receipt_missed, receipt_misses_used_up

bp = Blueprint("mine", __name__)

COOKIE = "mine"
#: The newest codes kept; an older one can still be typed on the receipt page.
MAX_CODES = 20


def codes() -> list[str]:
    raw = request.cookies.get(COOKIE, "")
    out = []
    for c in raw.split("."):
        c = feedback.normalise_receipt(c)
        if c and c not in out:
            out.append(c)
    return out[:MAX_CODES]


def remember(resp, receipt: str):
    """Add *receipt* to this phone's list (newest first) on *resp*."""
    kept = [receipt, *(c for c in codes() if c != receipt)][:MAX_CODES]
    resp.set_cookie(COOKIE, ".".join(kept), max_age=2 * 365 * 86400, samesite="Lax", httponly=True)
    return resp


@bp.route("/mine")
def my_messages():
    db = hub_context().db
    items = []
    for c in codes():
        # Codes in a cookie are typed codes too: one that matches nothing counts against the phone.
        if receipt_misses_used_up():
            break
        item = feedback.by_receipt(db, c)
        if item is None:
            receipt_missed()
        else:
            items.append(item)
    resp = render_template("mine.html", items=items, categories={c[0]: c for c in feedback.CATEGORIES},
                           format_receipt=feedback.format_receipt)
    return resp, 200, {"Cache-Control": "private, no-store"}
