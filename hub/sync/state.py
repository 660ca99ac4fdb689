"""The sync state: the last success and error, the central server's answers kept between cycles, and the data budget.

The only code that writes ``sync_state``.
"""

from __future__ import annotations

from hub.core.db import transaction


def get_state(db, key: str, default: str | None = None) -> str | None:
    row = db.conn.execute("select value from sync_state where key = ?", (key,)).fetchone()
    return row[0] if row else default


def all_state(db) -> dict[str, str]:
    return {r["key"]: r["value"] for r in db.query("select key, value from sync_state")}


def set_state(db, **values) -> None:
    with transaction(db) as conn:
        for k, v in values.items():
            if v is None:
                conn.execute("delete from sync_state where key = ?", (k,))
            else:
                conn.execute("insert into sync_state (key, value) values (?, ?)"
                             " on conflict (key) do update set value = excluded.value", (k, str(v)))


def add_usage(db, day: str, nbytes: int) -> int:
    """Count *nbytes* against *day*'s data budget; return the day's total."""
    with transaction(db) as conn:
        row = conn.execute("select value from sync_state where key = 'budget'").fetchone()
        used_day, used = (row[0].split(" ") if row else (day, "0"))
        total = (int(used) if used_day == day else 0) + nbytes
        conn.execute("insert into sync_state (key, value) values ('budget', ?)"
                     " on conflict (key) do update set value = excluded.value", (f"{day} {total}",))
    return total


def usage(db, day: str) -> int:
    value = get_state(db, "budget")
    if not value:
        return 0
    used_day, used = value.split(" ")
    return int(used) if used_day == day else 0


def request_sync(db, at: str) -> None:
    """A clerk pressed "Sync now": hub-sync runs a cycle at its next poll instead of waiting."""
    set_state(db, sync_requested=at)


def sync_requested(db) -> str | None:
    return get_state(db, "sync_requested")
