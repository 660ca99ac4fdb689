"""Notices villagers read on the portal: the only code that writes them."""

from __future__ import annotations

from datetime import datetime

from hub.core import pagefiles, text
from hub.core.db import new_id, transaction, utcnow
from hub.core.khmer import add_break_points
from hub.core.words import N_

FIELDS = ("title_km", "title_en", "body_km", "body_en", "urgent", "pinned", "expires_at",
          "image_id", "audio_id")
#: Longest title and body, in characters as typed (Khmer line-break points come on top).
MAX_TITLE = 200
MAX_BODY = 8000
#: Longest media id or time stamp a notice refers to.
MAX_REF = 64
NEEDS_TITLE = N_("A notice needs a title in Khmer or English.")
TITLE_TOO_LONG = N_("A title may be at most 200 characters long.")
BODY_TOO_LONG = N_("A notice's text may be at most 8000 characters long.")
BAD_CHARACTERS = N_("The notice has characters the hub cannot keep (control characters). Please type it again.")
BAD_EXPIRY = N_("The expiry date was not understood.")


class NoticeError(ValueError):
    """A notice that cannot be stored; the message is catalogue text to show the clerk."""


def _text(value, limit: int, too_long: str, multiline: bool) -> str:
    try:
        return text.clean(value, limit, multiline=multiline)
    except text.TextError as e:
        raise NoticeError(too_long if e.code == "too_long" else BAD_CHARACTERS) from None


def _expiry(value) -> str | None:
    """An expiry as stored: None, or an ISO date and time with its offset."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_REF:
        raise NoticeError(BAD_EXPIRY)
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise NoticeError(BAD_EXPIRY) from None
    return value


def check(fields: dict) -> None:
    """Refuse a notice that could not be stored (before its uploads are converted): see :func:`_clean`."""
    check_title(fields)
    _clean(fields)


def check_title(fields: dict) -> None:
    """A notice needs a title in Khmer or English (spaces alone are no title)."""
    titles = [fields.get(k) for k in ("title_km", "title_en")]
    if not any(isinstance(t, str) and t.strip() for t in titles):
        raise NoticeError(NEEDS_TITLE)


def _clean(fields: dict) -> dict:
    """The fields as stored: text of bounded length without control characters, flags as 0/1."""
    out = {}
    for k in FIELDS:
        if k in fields:
            v = fields[k]
            if k in ("title_km", "title_en"):
                v = _text(v, MAX_TITLE, TITLE_TOO_LONG, multiline=False)
            elif k in ("body_km", "body_en"):
                v = _text(v, MAX_BODY, BODY_TOO_LONG, multiline=True)
            elif k in ("urgent", "pinned"):
                v = 1 if v else 0
            elif k == "expires_at":
                v = _expiry(v)
            elif v is not None and not (isinstance(v, str) and len(v) <= MAX_REF):
                raise NoticeError(BAD_CHARACTERS)
            if k in ("title_km", "body_km"):
                v = add_break_points(v)
            out[k] = v
    return out


def create(ctx, fields: dict, media_rows: list[dict] = (), origin: str = "hub",
           notice_id: str | None = None) -> str:
    """Store a new notice (and the media rows it refers to) in one transaction."""
    check_title(fields)
    row = _clean(fields)
    now = utcnow()
    row.update(
        id=notice_id or new_id(), hub_id=ctx.hub_id, origin=origin, published_at=now,
        created_at=now, updated_at=now, clock_trusted=1 if ctx.clock.trusted() else 0,
    )
    _write(ctx, "insert", row, media_rows)
    return row["id"]


def update(ctx, notice_id: str, fields: dict, media_rows: list[dict] = ()) -> None:
    row = _clean(fields)
    row["updated_at"] = utcnow()
    row["id"] = notice_id
    _write(ctx, "update", row, media_rows)


def _write(ctx, how: str, row: dict, media_rows) -> None:
    try:
        with transaction(ctx.db) as conn:
            for m in media_rows:
                ctx.media.insert(conn, m)
            if how == "insert":
                cols = ", ".join(row)
                conn.execute(f"insert into notices ({cols}) values ({', '.join('?' * len(row))})",
                             tuple(row.values()))
            else:
                sets = ", ".join(f"{k} = ?" for k in row if k != "id")
                values = [v for k, v in row.items() if k != "id"]
                cur = conn.execute(f"update notices set {sets} where id = ?", (*values, row["id"]))
                if cur.rowcount == 0:
                    raise KeyError(row["id"])
    except BaseException:
        for m in media_rows:
            ctx.media.discard(m["id"])
        raise
    pagefiles.refresh(ctx)  # nginx serves no page of the old notices from now on


def expire(ctx, notice_id: str) -> None:
    now = utcnow()
    with transaction(ctx.db) as conn:
        conn.execute("update notices set expires_at = ?, updated_at = ? where id = ?",
                     (now, now, notice_id))
    pagefiles.refresh(ctx)


def set_pinned(ctx, notice_id: str, pinned: bool) -> None:
    with transaction(ctx.db) as conn:
        conn.execute("update notices set pinned = ?, updated_at = ? where id = ?",
                     (1 if pinned else 0, utcnow(), notice_id))
    pagefiles.refresh(ctx)


_SELECT = """
    select n.*, a.web_name as audio_name, a.duration_ms as audio_ms, i.web_name as image_name,
           i.width as image_width, i.height as image_height
    from notices n
    left join media a on a.id = n.audio_id
    left join media i on i.id = n.image_id
"""


def current(db, now: datetime, limit: int = -1, offset: int = 0) -> list[dict]:
    """Notices not yet expired: urgent first, then pinned, then newest."""
    stamp = now.isoformat(timespec="seconds")
    return list(db.query(
        _SELECT + " where n.expires_at is null or n.expires_at > ?"
        " order by n.urgent desc, n.pinned desc, n.published_at desc limit ? offset ?",
        [stamp, limit, offset],
    ))


def all_notices(db) -> list[dict]:
    return list(db.query(_SELECT + " order by n.published_at desc"))


def get(db, notice_id: str) -> dict | None:
    rows = list(db.query(_SELECT + " where n.id = ?", [notice_id]))
    return rows[0] if rows else None
