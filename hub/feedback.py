"""Villagers' feedback: submissions, receipts, the clerk's workflow and reply.

The only code that writes feedback rows.
"""

from __future__ import annotations

import csv
import io
import secrets
import sqlite3
from datetime import datetime, timedelta

from hub.core.db import new_id, transaction, utcnow
from hub.core.khmer import add_break_points, strip_break_points, to_latin_digits

#: (key, English, Khmer, icon); the order is the order shown to villagers.
CATEGORIES = (
    ("water", "Water and wells", "ទឹក និងអណ្តូង", "water"),
    ("roads", "Roads and bridges", "ផ្លូវ និងស្ពាន", "road"),
    ("health", "Health", "សុខភាព", "health"),
    ("school", "School", "សាលារៀន", "school"),
    ("land", "Land", "ដីធ្លី", "land"),
    ("safety", "Safety", "សន្តិសុខ", "safety"),
    ("papers", "Papers and services", "ឯកសារ និងសេវារដ្ឋបាល", "papers"),
    ("other", "Other", "ផ្សេងៗ", "other"),
)
CATEGORY_KEYS = tuple(c[0] for c in CATEGORIES)
STATUSES = ("new", "in_progress", "answered", "closed")
SOURCES = ("portal", "kiosk", "clerk")
#: Receipts are digits only: read aloud digit by digit, typed on any keypad,
#: and no letters to confuse (O/0, I/1, B/8).
RECEIPT_DIGITS = 6
MAX_TEXT = 4000
MAX_FIELD = 100
#: What of a feedback row goes to the central server. A column not named here stays in the commune.
SHARED_FIELDS = ("receipt", "source", "category", "body", "village", "lang", "consent_share", "status",
                 "reply", "replied_at", "clock_trusted")
#: Who spoke, how to reach them and their voice: shared only when they agreed (consent_share).
SHARED_WITH_CONSENT = ("name", "phone", "audio_id")
#: A reply to an item in these states answers it.
UNANSWERED = ("new", "in_progress")


class FeedbackError(ValueError):
    """Bad input; ``code`` names the message shown to the villager."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def new_receipt() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(RECEIPT_DIGITS))


def normalise_receipt(text: str) -> str:
    """Accept '123 456', '123-456' or Khmer digits; return the bare digits."""
    return "".join(c for c in to_latin_digits(text or "") if c.isdigit())


def format_receipt(receipt: str) -> str:
    return f"{receipt[:3]}-{receipt[3:]}" if len(receipt) == RECEIPT_DIGITS else receipt


def validate(fields: dict) -> dict:
    category = fields.get("category") or ""
    if category not in CATEGORY_KEYS:
        raise FeedbackError("choose_category")
    body = (fields.get("body") or "").strip()
    if len(body) > MAX_TEXT:
        raise FeedbackError("text_too_long")
    out = {"category": category, "body": add_break_points(body)}
    for k in ("name", "phone", "village"):
        v = (fields.get(k) or "").strip()
        if len(v) > MAX_FIELD:
            raise FeedbackError("field_too_long")
        out[k] = v
    out["phone"] = to_latin_digits(out["phone"])
    out["consent_share"] = 1 if fields.get("consent_share") in (True, 1, "1", "yes", "on") else 0
    out["lang"] = fields.get("lang") if fields.get("lang") in ("km", "en", "ko") else "km"
    return out


def submit(ctx, fields: dict, audio_row: dict | None = None, source: str = "portal") -> dict:
    """Check a villager's fields and store them (see :func:`store`)."""
    return store(ctx, validate(fields), audio_row, source)


def store(ctx, row: dict, audio_row: dict | None = None, source: str = "portal") -> dict:
    """Store a feedback item checked by :func:`validate` (and its audio row) at once; return its id and receipt.

    Text or voice is required. If anything fails, the audio files already
    written are removed, so nothing half-stored remains.
    """
    row = dict(row)
    if not row["body"] and audio_row is None:
        raise FeedbackError("say_something")
    if source not in SOURCES:
        raise ValueError(source)
    now = utcnow()
    row.update(
        id=new_id(), hub_id=ctx.hub_id, source=source, status="new",
        audio_id=audio_row["id"] if audio_row else None, created_at=now, updated_at=now,
        clock_trusted=1 if ctx.clock.trusted() else 0,
    )
    try:
        for _ in range(20):
            row["receipt"] = new_receipt()
            try:
                with transaction(ctx.db) as conn:
                    if audio_row:
                        ctx.media.insert(conn, audio_row)
                    cols = ", ".join(row)
                    conn.execute(f"insert into feedback ({cols}) values ({', '.join('?' * len(row))})",
                                 tuple(row.values()))
                break
            except sqlite3.IntegrityError as e:
                if "receipt" not in str(e):
                    raise
        else:
            raise RuntimeError("no free receipt code")
    except BaseException:
        if audio_row:
            ctx.media.discard(audio_row["id"])
        raise
    return {"id": row["id"], "receipt": row["receipt"]}


_SELECT = """
    select f.*, m.web_name as audio_name, m.duration_ms as audio_ms
    from feedback f left join media m on m.id = f.audio_id
"""


def by_receipt(db, receipt: str) -> dict | None:
    rows = list(db.query(_SELECT + " where f.receipt = ?", [normalise_receipt(receipt)]))
    return rows[0] if rows else None


def get(db, feedback_id: str) -> dict | None:
    rows = list(db.query(_SELECT + " where f.id = ?", [feedback_id]))
    return rows[0] if rows else None


def inbox(db, status: str | None = None, category: str | None = None, limit: int = 200,
          offset: int = 0) -> list[dict]:
    where, args = [], []
    if status in STATUSES:
        where.append("f.status = ?")
        args.append(status)
    if category in CATEGORY_KEYS:
        where.append("f.category = ?")
        args.append(category)
    sql = _SELECT + (" where " + " and ".join(where) if where else "")
    sql += " order by f.created_at desc limit ? offset ?"
    return list(db.query(sql, [*args, limit, offset]))


def set_status(ctx, feedback_id: str, status: str, reply: str | None = None) -> None:
    """Move an item to *status*, with the clerk's *reply* if given; a reply to an unanswered item answers it."""
    if reply is not None and reply.strip() and status in UNANSWERED:
        status = "answered"
    if status not in STATUSES:
        raise FeedbackError("bad_status")
    now = utcnow()
    with transaction(ctx.db) as conn:
        if reply is not None:
            # Stored as typed, without break points: a reply is copied into messages and
            # spreadsheets, where a zero-width space breaks search. Pages add them when shown.
            reply = strip_break_points(reply).strip()
            if len(reply) > MAX_TEXT:
                raise FeedbackError("text_too_long")
            cur = conn.execute(
                "update feedback set status = ?, reply = ?, replied_at = ?, updated_at = ? where id = ?",
                (status, reply, now if reply else None, now, feedback_id),
            )
        else:
            cur = conn.execute("update feedback set status = ?, updated_at = ? where id = ?",
                               (status, now, feedback_id))
        if cur.rowcount == 0:
            raise KeyError(feedback_id)


def outgoing(row: dict) -> dict:
    """What of a feedback row leaves the commune: the shared fields, and who spoke only with consent."""
    fields = SHARED_FIELDS + (SHARED_WITH_CONSENT if row.get("consent_share") else ())
    return {k: row[k] for k in fields if k in row}


CSV_COLUMNS = ("id", "receipt", "created_at", "source", "category", "status", "body", "name",
               "phone", "village", "lang", "consent_share", "audio_name", "reply", "replied_at",
               "clock_trusted", "hub_id")


def export_csv(db) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for r in db.query(_SELECT + " order by f.created_at"):
        # A leading = + - @ would run as a formula in a spreadsheet.
        cells = [strip_break_points(v) if isinstance(v, str) else v for v in (r[c] for c in CSV_COLUMNS)]
        w.writerow(["'" + v if isinstance(v, str) and v[:1] in "=+-@" else v for v in cells])
    return out.getvalue()


def weekly_counts(db, weeks: int, today: datetime) -> tuple[list[str], dict[str, list[int]]]:
    """Feedback per category for each of the last *weeks* weeks (Monday first)."""
    monday = (today - timedelta(days=today.weekday())).date()
    starts = [monday - timedelta(weeks=i) for i in range(weeks - 1, -1, -1)]
    counts = {k: [0] * weeks for k in CATEGORY_KEYS}
    since = starts[0].isoformat()
    for r in db.query("select category, created_at from feedback where created_at >= ?", [since]):
        day = datetime.fromisoformat(r["created_at"]).date()
        idx = (day - starts[0]).days // 7
        if 0 <= idx < weeks and r["category"] in counts:
            counts[r["category"]][idx] += 1
    return [s.isoformat() for s in starts], counts
