"""The doctor's check of backups: when was the last one made, to a file or to the central server."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.backup import archive
from hub.core.checks import OK, SKIP, WARN, Checkup, Finding
from hub.core.words import N_

FIX = N_("Plug in a USB stick and run `sudo hub backup /media/usb` (or set central_url so the hub sends"
         " one to the central server every backup_interval_hours).")


def _age_days(at: str) -> float:
    made = datetime.fromisoformat(at)
    made = made if made.tzinfo else made.replace(tzinfo=UTC)
    return (datetime.now(UTC) - made).total_seconds() / 86400


def check_backup(checkup: Checkup) -> Finding:
    if checkup.db is None:
        return Finding("backup", SKIP, N_("Needs a working database"))
    s = checkup.settings
    try:
        made = archive.last_made(checkup.db)
    except Exception as e:
        return Finding("backup", WARN, N_("The backup record cannot be read: %(error)s"), {"error": str(e)},
                       N_("Run `hub migrate`."))
    if not made:
        return Finding("backup", WARN, N_("No backup has been made yet"), {}, FIX)
    where, newest = max(made.items(), key=lambda kv: kv[1]["at"])
    days = _age_days(newest["at"])
    values = {"at": newest["at"], "days": int(days), "detail": newest.get("detail", "")}
    if days > s.backup_warn_days:
        return Finding("backup", WARN, N_("The last backup was made %(days)s days ago (%(at)s)"), values, FIX)
    if where == "central":
        return Finding("backup", OK, N_("Last backup %(at)s, to the central server"), values)
    return Finding("backup", OK, N_("Last backup %(at)s, to %(detail)s"), values)
