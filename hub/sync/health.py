"""What the hub tells the central server about itself on each sync, for the fleet's care.

Small on purpose (a few hundred bytes): it goes with every hello. The central
server keeps the newest report of each hub and alerts officers from it
(:mod:`hub.central.fleet`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub.backup.upload import age_seconds, last_backup_at
from hub.doctor import SUMMARY as DOCTOR_SUMMARY


def _tables(db) -> set[str]:
    return set(db.table_names())


def missed_plays(db, hours: int = 24) -> int:
    """Announcements the loudspeaker missed in the last *hours*."""
    if "play_log" not in _tables(db):
        return 0
    since = (datetime.now(UTC) - timedelta(hours=hours)).isoformat(timespec="seconds")
    return db.conn.execute("select count(*) from play_log where outcome = 'missed' and created_at >= ?",
                           (since,)).fetchone()[0]


def oldest_waiting_seconds(db) -> int:
    """How long the oldest record still waiting to be sent has waited (0: none waits)."""
    row = db.conn.execute("select min(created_at) from sync_outbox where state = 'pending'").fetchone()
    return age_seconds(row[0]) if row and row[0] else 0


def failing_checks(data_dir: Path) -> list[str]:
    """The checks that failed in the newest `hub doctor` run (the daily timer runs it)."""
    try:
        summary = json.loads((Path(data_dir) / DOCTOR_SUMMARY).read_text())
    except (OSError, ValueError):
        return []
    return [str(n) for n in summary.get("failing", [])][:20]


def fleet_health(ctx) -> dict:
    db = ctx.db
    return {"missed_plays": missed_plays(db), "oldest_waiting_seconds": oldest_waiting_seconds(db),
            "failing_checks": failing_checks(ctx.settings.data_dir), "last_backup_at": last_backup_at(db)}
