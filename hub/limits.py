"""How often one address may do something on the villagers' side: the only code that writes ``rate_limits``.

The counts live in the database, not in a worker's memory: gunicorn runs
several worker processes, and a limit kept in each would let an address
through once per worker. A window is a fixed span of ``window`` seconds;
a count is one row per scope, address and window, written in one short
transaction (so parallel requests cannot slip past the count), and windows
that have ended are deleted as a new one starts. Only what a limit must see
is counted (a wrong receipt number, not a right one), so a busy portal adds
few writes to the SD card.
"""

from __future__ import annotations

import time

from hub.core.db import transaction

#: Scopes, and what they count.
SUBMIT = "feedback"  # messages sent
RECEIPT_MISS = "receipt_miss"  # receipt numbers, or phone numbers, that did not match
#: Longest address kept (an IPv6 address is at most 45 characters).
MAX_CLIENT = 64


def _window(window: int, now: float | None) -> int:
    now = time.time() if now is None else now
    return int(now // window) * window


def count(db, scope: str, client: str, window: int, now: float | None = None) -> int:
    """How many times *client* did *scope* in the current window."""
    row = db.execute("select hits from rate_limits where scope = ? and client = ? and window_start = ?",
                     [scope, client[:MAX_CLIENT], _window(window, now)]).fetchone()
    return row[0] if row else 0


def over(db, scope: str, client: str, limit: int, window: int, now: float | None = None) -> bool:
    """Has *client* used up its *limit* in this window? A *limit* of 0 means no limit."""
    return bool(limit) and count(db, scope, client, window, now) >= limit


def hit(db, scope: str, client: str, limit: int, window: int, now: float | None = None) -> bool:
    """Count one more *scope* for *client*; False if that goes past *limit* (0: no limit, nothing counted)."""
    if not limit:
        return True
    start = _window(window, now)
    with transaction(db) as conn:
        conn.execute("delete from rate_limits where scope = ? and window_start < ?", (scope, start))
        conn.execute(
            "insert into rate_limits (scope, client, window_start, hits) values (?, ?, ?, 1)"
            " on conflict (scope, client, window_start) do update set hits = hits + 1",
            (scope, client[:MAX_CLIENT], start))
        hits = conn.execute("select hits from rate_limits where scope = ? and client = ? and window_start = ?",
                            (scope, client[:MAX_CLIENT], start)).fetchone()[0]
    return hits <= limit
