"""Villagers' feedback: submissions, receipts, the clerk's workflow and reply.

The only code that writes feedback rows.
"""

from __future__ import annotations

import hmac
import secrets
import sqlite3
from datetime import datetime, timedelta

from hub.core import text
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
#: Receipts are digits only: read aloud digit by digit, typed on any keypad, and no letters to
#: confuse (O/0, I/1, B/8). Seven random digits and a check digit (Damm's algorithm: it catches
#: every mistyped digit and every swap of two neighbours), shown as two groups of four.
RECEIPT_DIGITS = 8
#: Codes handed out before receipts had eight digits; they keep working.
OLD_RECEIPT_DIGITS = 6
#: Fresh codes tried before a submission is refused as "busy" (never a 500).
RECEIPT_TRIES = 50
MAX_TEXT = 4000
MAX_FIELD = 100
MAX_PHONE = 30
#: Characters a phone number may hold besides digits (Latin or Khmer).
PHONE_MARKS = set(" +-().")
#: What of a feedback row goes to the central server. A column not named here stays in the commune.
SHARED_FIELDS = ("receipt", "source", "category", "body", "village", "lang", "consent_share", "status",
                 "reply", "replied_at", "clock_trusted")
#: Who spoke, how to reach them and their voice: shared only when they agreed (consent_share).
SHARED_WITH_CONSENT = ("name", "phone", "audio_id")
#: The clerk's spoken reply travels like the written one; the key is sent only when there is one, so rows
#: without it keep the fingerprint they had before spoken replies existed (no revision for nothing).
SHARED_IF_SET = ("reply_audio_id",)
#: Columns that never leave the commune: when a clerk first opened the item.
STAYS_HOME = ("seen_at",)
#: A reply to an item in these states answers it.
UNANSWERED = ("new", "in_progress")


class FeedbackError(ValueError):
    """Bad input; ``code`` names the message shown to the villager."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


# Damm's quasigroup of order 10 (a weakly totally anti-symmetric one).
_DAMM = (
    "0317598642", "7092154863", "4206871359", "1750983426", "6123045978",
    "3674209581", "5869720134", "8945362017", "9438617205", "2581436790",
)


def check_digit(digits: str) -> str:
    interim = 0
    for d in digits:
        interim = int(_DAMM[interim][int(d)])
    return str(interim)


def _random_digits(n: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(n))


def new_receipt() -> str:
    body = _random_digits(RECEIPT_DIGITS - 1)
    return body + check_digit(body)


def normalise_receipt(text) -> str:
    """Accept '1234 5678', '1234-5678', '123-456' or Khmer digits; return the bare ASCII digits."""
    if not isinstance(text, str) or len(text) > 40:
        return ""
    return "".join(c for c in to_latin_digits(text) if c in "0123456789")


def valid_receipt(code: str) -> bool:
    """Could *code* (bare digits) be a receipt: an old six-digit one, or eight digits whose check digit fits?"""
    if len(code) == OLD_RECEIPT_DIGITS:
        return True
    return len(code) == RECEIPT_DIGITS and check_digit(code[:-1]) == code[-1]


def format_receipt(receipt: str) -> str:
    if len(receipt) == RECEIPT_DIGITS:
        return f"{receipt[:4]} {receipt[4:]}"
    return f"{receipt[:3]}-{receipt[3:]}" if len(receipt) == OLD_RECEIPT_DIGITS else receipt


def normalise_phone(text) -> str:
    """A phone number as digits, the Cambodian way: +855 12 345 678 and 012 345 678 are one number."""
    if not isinstance(text, str):
        return ""
    digits = "".join(c for c in to_latin_digits(text) if c in "0123456789")
    if digits.startswith("855"):
        digits = "0" + digits[3:]
    elif digits and not digits.startswith("0"):
        digits = "0" + digits
    return digits


def needs_proof(item: dict) -> bool:
    """Does the receipt page keep the reply until the villager proves the code (they gave a phone number)?"""
    return bool(normalise_phone(item.get("phone") or ""))


def proves(item: dict, phone) -> bool:
    """Is *phone* the number given with *item*?"""
    given = normalise_phone(item.get("phone") or "")
    typed = normalise_phone(phone)
    return bool(given) and hmac.compare_digest(given, typed)


def _text(value, limit: int, code: str, multiline: bool = False) -> str:
    try:
        return text.clean(value, limit, multiline=multiline)
    except text.TextError as e:
        raise FeedbackError(code if e.code == "too_long" else "bad_characters") from None


def validate(fields: dict) -> dict:
    category = fields.get("category") or ""
    if category not in CATEGORY_KEYS:
        raise FeedbackError("choose_category")
    body = _text(fields.get("body"), MAX_TEXT, "text_too_long", multiline=True)
    out = {"category": category, "body": add_break_points(body)}
    for k in ("name", "village"):
        out[k] = _text(fields.get(k), MAX_FIELD, "field_too_long")
    phone = to_latin_digits(_text(fields.get("phone"), MAX_PHONE, "field_too_long"))
    if any(not (c.isascii() and c.isdigit()) and c not in PHONE_MARKS for c in phone):
        raise FeedbackError("bad_phone")
    out["phone"] = phone
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
        for _ in range(RECEIPT_TRIES):
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
            raise FeedbackError("no_receipt")
    except BaseException:
        if audio_row:
            ctx.media.discard(audio_row["id"])
        raise
    return {"id": row["id"], "receipt": row["receipt"]}


_SELECT = """
    select f.*, m.web_name as audio_name, m.duration_ms as audio_ms,
           r.web_name as reply_audio_name, r.duration_ms as reply_audio_ms
    from feedback f left join media m on m.id = f.audio_id left join media r on r.id = f.reply_audio_id
"""


def by_receipt(db, receipt: str) -> dict | None:
    code = normalise_receipt(receipt)
    if not valid_receipt(code):
        return None
    rows = list(db.query(_SELECT + " where f.receipt = ?", [code]))
    return rows[0] if rows else None


def get(db, feedback_id: str) -> dict | None:
    rows = list(db.query(_SELECT + " where f.id = ?", [feedback_id]))
    return rows[0] if rows else None


def _search_clause(text: str) -> tuple[str, list]:
    """Rows whose receipt, phone or words contain *text* (Khmer digits and 123-456 as typed)."""
    text = (text or "").strip()[:MAX_FIELD]
    digits = normalise_receipt(text)
    clauses, args = [], []
    if len(digits) >= 3 and all(c in "0123456789០១២៣៤៥៦៧៨៩ -" for c in text):
        clauses += ["f.receipt like ?", "replace(replace(replace(f.phone, ' ', ''), '-', ''), '.', '') like ?"]
        args += [f"%{digits}%", f"%{digits}%"]
    words = text.replace("\u200b", "")
    if words:
        like = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        for col in ("f.body", "f.reply", "f.name", "f.village"):
            clauses.append(f"replace({col}, char(8203), '') like ? escape '\\'")
            args.append(like)
    return "(" + " or ".join(clauses) + ")", args


def inbox(db, status: str | None = None, category: str | None = None, limit: int = 200,
          offset: int = 0, search: str | None = None, unread: bool = False) -> list[dict]:
    where, args = [], []
    if status in STATUSES:
        where.append("f.status = ?")
        args.append(status)
    if category in CATEGORY_KEYS:
        where.append("f.category = ?")
        args.append(category)
    if unread:
        where.append("f.seen_at is null")
    if search and search.strip():
        clause, more = _search_clause(search)
        where.append(clause)
        args += more
    sql = _SELECT + (" where " + " and ".join(where) if where else "")
    sql += " order by f.created_at desc limit ? offset ?"
    return list(db.query(sql, [*args, limit, offset]))


def unread_counts(db) -> dict[str, int]:
    """Items no clerk has opened yet: in all, and per category (kept by migration 0014's triggers)."""
    out = {"all": 0}
    for r in db.query("select category, n from feedback_unread where n > 0"):
        out[r["category"]] = r["n"]
        out["all"] += r["n"]
    return out


def mark_seen(ctx, feedback_id: str) -> None:
    """A clerk opened the item. Kept home: updated_at stays, so nothing is synced for it."""
    with transaction(ctx.db) as conn:
        conn.execute("update feedback set seen_at = ? where id = ? and seen_at is null", (utcnow(), feedback_id))


def set_status(ctx, feedback_id: str, status: str, reply: str | None = None,
               reply_audio: dict | None = None, remove_reply_audio: bool = False) -> None:
    """Move an item to *status*, with the clerk's *reply* if given; a reply to an unanswered item answers it.

    *reply_audio* is a converted media row of a spoken reply (stored in the same transaction; on any
    failure its files are removed); *remove_reply_audio* takes the spoken reply away.
    """
    try:
        _set_status(ctx, feedback_id, status, reply, reply_audio, remove_reply_audio)
    except BaseException:
        if reply_audio:
            ctx.media.discard(reply_audio["id"])
        raise


def _set_status(ctx, feedback_id, status, reply, reply_audio, remove_reply_audio) -> None:
    if reply is not None:
        # Stored as typed, without break points: a reply is copied into messages and
        # spreadsheets, where a zero-width space breaks search. Pages add them when shown.
        reply = strip_break_points(_text(reply, MAX_TEXT, "text_too_long", multiline=True)).strip()
    replying = bool(reply) or reply_audio is not None
    if replying and status in UNANSWERED:
        status = "answered"
    if status not in STATUSES:
        raise FeedbackError("bad_status")
    now = utcnow()
    with transaction(ctx.db) as conn:
        if reply is not None:
            cur = conn.execute(
                "update feedback set status = ?, reply = ?, replied_at = ?, updated_at = ? where id = ?",
                (status, reply, now if reply or reply_audio else None, now, feedback_id),
            )
        else:
            cur = conn.execute("update feedback set status = ?, updated_at = ? where id = ?",
                               (status, now, feedback_id))
        if cur.rowcount == 0:
            raise KeyError(feedback_id)
        if reply_audio is not None:
            ctx.media.insert(conn, reply_audio)
            conn.execute("update feedback set reply_audio_id = ?, replied_at = ? where id = ?",
                         (reply_audio["id"], now, feedback_id))
        elif remove_reply_audio:
            conn.execute("update feedback set reply_audio_id = null where id = ?", (feedback_id,))


def outgoing(row: dict) -> dict:
    """What of a feedback row leaves the commune: the shared fields, and who spoke only with consent."""
    fields = SHARED_FIELDS + (SHARED_WITH_CONSENT if row.get("consent_share") else ())
    out = {k: row[k] for k in fields if k in row}
    out.update({k: row[k] for k in SHARED_IF_SET if row.get(k)})
    return out


#: The columns of the clerk's CSV export, in order.
CSV_COLUMNS = ("receipt", "created_at", "source", "category", "status", "body", "name", "phone", "village",
               "lang", "consent_share", "audio_name", "reply", "reply_audio_name", "replied_at", "clock_trusted",
               "id", "hub_id")


def export_rows(db):
    """Every item, oldest first, as dicts with the :data:`CSV_COLUMNS`."""
    for r in db.query(_SELECT + " order by f.created_at"):
        yield {c: r[c] for c in CSV_COLUMNS}


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
