"""Publications pulled from the central server, kept until applied: the only code that writes ``sync_inbox``."""

from __future__ import annotations

import json
import sqlite3

from hub.core.db import transaction, utcnow
from hub.sync.wire import canonical


def store_publication(db, pub: dict) -> bool:
    """Keep a publication pulled from the central server; False if it was already here."""
    with transaction(db) as conn:
        try:
            conn.execute(
                "insert into sync_inbox (id, seq, kind, body, received_at) values (?, ?, ?, ?, ?)",
                (pub["id"], pub["seq"], pub["kind"], canonical(pub).decode(), utcnow()),
            )
        except sqlite3.IntegrityError:
            conn.execute("update sync_inbox set seq = ?, body = ?, received_at = ?, applied_at = null"
                         " where id = ? and body != ?",
                         (pub["seq"], canonical(pub).decode(), utcnow(), pub["id"],
                          canonical(pub).decode()))
            return conn.execute("select changes()").fetchone()[0] > 0
    return True


def unapplied_publications(db) -> list[dict]:
    return [json.loads(r["body"]) for r in db.query(
        "select body from sync_inbox where applied_at is null order by seq")]


def mark_applied(db, pub_id: str) -> None:
    with transaction(db) as conn:
        conn.execute("update sync_inbox set applied_at = ? where id = ?", (utcnow(), pub_id))
