"""Announcements, their occurrences and the proof-of-play log: the only code that writes them.

An occurrence is one time an announcement is due to play. It moves through

    due ──► playing ──► played
                   └──► failed     (the audio device or file let us down)
    due ──► missed                 (past its grace window, e.g. after a power cut)
    playing ──► missed             (cut short: a restart, or an urgent announcement)
    due ──► cancelled              (the clerk stopped the announcement first)
    due ──► missed                 (its announcement expired before it could play)

and each state is committed (``synchronous=FULL``) before the next step
happens: ``playing`` before the relay switches on, ``played`` once the last
sample is out. After a crash an occurrence found ``playing`` is marked
missed, never played again: at most once, even if the cut came mid-sentence.
Every end state also gets a row in ``play_log`` (proof of play).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

from hub.announce import schedule
from hub.core import csvsafe, text
from hub.core.db import new_id, transaction

STATES = ("due", "playing", "played", "missed", "failed", "cancelled")
FINAL = ("played", "missed", "failed", "cancelled")
MAX_REPEATS = 5
#: Longest title of an announcement, and of an id it refers to.
MAX_TITLE = 200
MAX_REF = 64


def check(fields: dict) -> None:
    """Refuse fields :func:`create` could not store, before an upload is converted."""
    _checked(fields)


def _checked(fields: dict) -> dict:
    """The clerk's fields with their title checked (bounded, no control characters) and ids that can be ids.

    Raises :class:`schedule.ScheduleError` with ``title_too_long`` or ``bad_characters``.
    """
    try:
        title = text.clean(fields.get("title"), MAX_TITLE)
    except text.TextError as e:
        raise schedule.ScheduleError("title_too_long" if e.code == "too_long" else "bad_characters") from None
    for k in ("notice_id", "audio_id", "rrule", "publication_id"):
        v = fields.get(k)
        limit = 2000 if k == "rrule" else MAX_REF
        fits = isinstance(v, str) and len(v) <= limit and text.bad_character(v, k == "rrule") is None
        if v is not None and not fits:
            raise schedule.ScheduleError("no_audio" if k != "rrule" else "bad_date")
    return {**fields, "title": title}


def iso(moment: datetime) -> str:
    """The one text form of times in these tables (UTC, milliseconds): text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- what clerks do ---------------------------------------------------------------------------

def create(ctx, fields: dict, media_rows: list[dict] = (), now: datetime | None = None) -> str:
    """Store an announcement (and its new media rows) in one transaction; return its id.

    *fields*: ``audio_id`` (or a ``notice_id`` whose audio it plays, and whose
    title it takes when it has none), optional ``title``, ``rrule`` (None: play
    now), ``repeats`` (1 to :data:`MAX_REPEATS`) and ``urgent``; from the central
    server also ``publication_id`` and ``expires_at`` (an aware datetime: after
    it, nothing of the announcement plays). A play-now announcement gets its
    one occurrence in the same transaction.
    """
    fields = _checked(fields)
    clock = ctx.clock
    now = now or clock.now()
    trusted = clock.trusted()
    repeats = fields.get("repeats") or 1
    if not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
        raise ValueError("repeats")
    if not fields.get("audio_id"):
        fields = {**fields, **_notice_audio(ctx.db, fields.get("notice_id"), fields.get("title"))}
    text = fields.get("rrule")
    if text:
        schedule.rule(text)  # refuse what dateutil cannot read before it is stored
        nxt = schedule.next_after(text, now)
    stamp = iso(now)
    row = {
        "id": new_id(), "hub_id": ctx.hub_id, "title": (fields.get("title") or "").strip(),
        "audio_id": fields["audio_id"], "notice_id": fields.get("notice_id") or None,
        "rrule": text or None, "repeats": repeats, "urgent": 1 if fields.get("urgent") else 0,
        "active": 1 if text else 0, "scheduled_until": stamp,
        "next_at": iso(nxt) if text and nxt else None,
        "created_at": stamp, "updated_at": stamp, "clock_trusted": 1 if trusted else 0,
        "publication_id": fields.get("publication_id") or None,
        "expires_at": iso(fields["expires_at"]) if fields.get("expires_at") else None,
    }
    refuse_past(text, now)
    try:
        with transaction(ctx.db) as conn:
            for m in media_rows:
                ctx.media.insert(conn, m)
            conn.execute(f"insert into announcements ({', '.join(row)}) values"
                         f" ({', '.join('?' * len(row))})", tuple(row.values()))
            if not text:
                _queue_now(conn, ctx.hub_id, row, now)
    except BaseException:
        for m in media_rows:
            ctx.media.discard(m["id"])
        raise
    return row["id"]


def _queue_now(conn, hub_id: str, announcement: dict, now: datetime) -> str:
    oid = new_id()
    stamp = iso(now)
    conn.execute(
        "insert into occurrences (id, hub_id, announcement_id, due_at, play_after, urgent,"
        " play_now, state, created_at, updated_at) values (?, ?, ?, ?, ?, ?, 1, 'due', ?, ?)",
        (oid, hub_id, announcement["id"], stamp, stamp, announcement["urgent"], stamp, stamp),
    )
    return oid


def play_now(ctx, announcement_id: str, now: datetime | None = None) -> str:
    """Queue an existing announcement to play at once, ahead of scheduled ones."""
    now = now or ctx.clock.now()
    with transaction(ctx.db) as conn:
        row = conn.execute("select id, urgent from announcements where id = ?",
                           (announcement_id,)).fetchone()
        if row is None:
            raise KeyError(announcement_id)
        return _queue_now(conn, ctx.hub_id, {"id": row[0], "urgent": row[1]}, now)


def stop(ctx, announcement_id: str, now: datetime | None = None) -> None:
    """Stop scheduling an announcement and cancel what it still had waiting."""
    stamp = iso(now or ctx.clock.now())
    with transaction(ctx.db) as conn:
        cur = conn.execute("update announcements set active = 0, next_at = null, updated_at = ?"
                           " where id = ?", (stamp, announcement_id))
        if cur.rowcount == 0:
            raise KeyError(announcement_id)
        conn.execute("update occurrences set state = 'cancelled', updated_at = ?,"
                     " detail = 'stopped by a clerk' where announcement_id = ? and state = 'due'",
                     (stamp, announcement_id))


_SELECT = """
    select a.*, m.web_name, m.loud_name, m.duration_ms,
           n.title_km as notice_title_km, n.title_en as notice_title_en
    from announcements a
    join media m on m.id = a.audio_id
    left join notices n on n.id = a.notice_id
"""


def get(db, announcement_id: str) -> dict | None:
    rows = list(db.query(_SELECT + " where a.id = ?", [announcement_id]))
    return rows[0] if rows else None


def listing(db, include_stopped: bool = False) -> list[dict]:
    """Scheduled announcements still active (or all), next to play first."""
    where = "" if include_stopped else " where a.active = 1"
    return list(db.query(_SELECT + where + " order by a.active desc, a.next_at is null,"
                         " a.next_at, a.created_at desc"))


def recent(db, limit: int = 20) -> list[dict]:
    """Occurrences of the last few plays and what is waiting, newest first."""
    return list(db.query(
        "select o.*, a.title, m.web_name from occurrences o join announcements a on"
        " a.id = o.announcement_id join media m on m.id = a.audio_id"
        " order by o.play_after desc limit ?", [limit]))


def missed(db, since: datetime) -> list[dict]:
    """Occurrences missed since *since*, newest first, for the clerk to see."""
    return list(db.query(
        "select o.*, a.title, a.id as announcement_id from occurrences o join announcements a on"
        " a.id = o.announcement_id where o.state = 'missed' and o.due_at >= ?"
        " order by o.due_at desc", [iso(since)]))


def occurrences_between(db, lo: datetime, hi: datetime) -> list[dict]:
    return list(db.query(
        "select * from occurrences where play_after >= ? and play_after < ?"
        " and state != 'cancelled'",
        [iso(lo), iso(hi)]))


def refuse_past(rule_text: str | None, now: datetime) -> None:
    """A schedule whose every time has passed would never play: in_the_past."""
    if rule_text and schedule.next_after(rule_text, now) is None:
        raise schedule.ScheduleError("in_the_past")


def _notice_audio(db, notice_id: str | None, title: str | None) -> dict:
    """The audio of the notice an announcement plays, and the notice's title when it has none."""
    chosen = [n for n in notices_with_audio(db) if n["id"] == notice_id] if notice_id else []
    if not chosen:
        raise schedule.ScheduleError("no_audio")
    notice = chosen[0]
    return {"audio_id": notice["audio_id"], "notice_id": notice_id,
            "title": title or notice["title_km"] or notice["title_en"]}


def notices_with_audio(db) -> list[dict]:
    return list(db.query(
        "select n.id, n.title_km, n.title_en, n.audio_id, m.web_name from notices n"
        " join media m on m.id = n.audio_id where m.loud_name is not null"
        " order by n.published_at desc limit 50"))


# --- what the announcer does ------------------------------------------------------------------

def schedule_due(db, hub_id: str, upto: datetime, quiet: schedule.QuietHours) -> list[str]:
    """Make occurrences for every rule time up to *upto*; return the new occurrence ids.

    Each announcement advances in its own transaction together with its
    ``scheduled_until`` mark, and ``unique (announcement_id, due_at)`` makes a
    repeat after a crash harmless.
    """
    made = []
    stamp = iso(upto)
    for a in db.query("select id, rrule, urgent, scheduled_until from announcements"
                      " where active = 1 and rrule is not null and next_at is not null"
                      " and next_at <= ?", [stamp]):
        since = parse_time(a["scheduled_until"])
        if since >= upto:
            continue
        dues = schedule.between(a["rrule"], since, upto)
        nxt = schedule.next_after(a["rrule"], upto)
        with transaction(db) as conn:
            for due in dues:
                oid = new_id()
                start = schedule.play_after(due, bool(a["urgent"]), quiet)
                cur = conn.execute(
                    "insert or ignore into occurrences (id, hub_id, announcement_id, due_at,"
                    " play_after, urgent, play_now, state, created_at, updated_at)"
                    " values (?, ?, ?, ?, ?, ?, 0, 'due', ?, ?)",
                    (oid, hub_id, a["id"], iso(due), iso(start), a["urgent"], stamp, stamp))
                if cur.rowcount:
                    made.append(oid)
            conn.execute("update announcements set scheduled_until = ?, next_at = ? where id = ?",
                         (stamp, iso(nxt) if nxt else None, a["id"]))
    return made


_QUEUE = """
    select o.*, a.title, a.repeats, a.expires_at, m.loud_name, m.duration_ms
    from occurrences o
    join announcements a on a.id = o.announcement_id
    join media m on m.id = a.audio_id
    where o.state = 'due' and o.play_after <= ? and (o.play_now = 1 or ?)
      and (a.expires_at is null or a.expires_at > ?)
"""


def next_ready(db, horizon: datetime, scheduled_ok: bool) -> dict | None:
    """The occurrence to play next among those that may start by *horizon*.

    Urgent first, then play-now (it preempts the queue), then the earliest.
    While the clock is not trusted (*scheduled_ok* false) only play-now items
    qualify: scheduled ones wait.
    """
    rows = list(db.query(_QUEUE + " order by o.urgent desc, o.play_now desc, o.play_after, o.due_at"
                         " limit 1", [iso(horizon), 1 if scheduled_ok else 0, iso(horizon)]))
    return rows[0] if rows else None


def urgent_waiting(db, now: datetime, scheduled_ok: bool) -> bool:
    """Is an urgent occurrence ready now (it interrupts a routine one)?"""
    return bool(list(db.query(_QUEUE + " and o.urgent = 1 limit 1",
                              [iso(now), 1 if scheduled_ok else 0, iso(now)])))


def expire(db, hub_id: str, now: datetime, trusted: bool) -> int:
    """Occurrences still due whose announcement has expired: missed, never played. Return how many."""
    ids = [r["id"] for r in db.query(
        "select o.id from occurrences o join announcements a on a.id = o.announcement_id"
        " where o.state = 'due' and a.expires_at is not null and a.expires_at <= ?", [iso(now)])]
    for oid in ids:
        finish(db, hub_id, oid, "missed", now, trusted, detail="expired before it could play")
    return len(ids)


def expired(occurrence: dict, now: datetime) -> bool:
    """Has the announcement of this queued occurrence expired by *now*?"""
    return bool(occurrence.get("expires_at")) and occurrence["expires_at"] <= iso(now)


def urgent_outcomes(db) -> list[dict]:
    """The proof of play of announcements from the central server's urgent broadcasts, oldest first."""
    return list(db.query(
        "select a.publication_id, p.id as play_id, p.outcome, p.started_at, p.ended_at, p.detail"
        " from play_log p join announcements a on a.id = p.announcement_id"
        " where a.publication_id is not null and a.urgent = 1 order by p.created_at, p.id"))


def mark_playing(db, occurrence_id: str, now: datetime) -> bool:
    """due → playing, committed before anything is heard. False if it was no longer due."""
    stamp = iso(now)
    with transaction(db) as conn:
        cur = conn.execute("update occurrences set state = 'playing', started_at = ?,"
                           " updated_at = ? where id = ? and state = 'due'",
                           (stamp, stamp, occurrence_id))
        return cur.rowcount == 1


def finish(db, hub_id: str, occurrence_id: str, outcome: str, now: datetime, trusted: bool,
           started: datetime | None = None, ended: datetime | None = None,
           detail: str = "") -> None:
    """Put an occurrence in its end state and write its proof-of-play row, in one transaction."""
    if outcome not in ("played", "missed", "failed"):
        raise ValueError(outcome)
    stamp = iso(now)
    with transaction(db) as conn:
        o = conn.execute(
            "select o.announcement_id, o.due_at, a.title, a.repeats from occurrences o"
            " join announcements a on a.id = o.announcement_id where o.id = ?",
            (occurrence_id,)).fetchone()
        if o is None:
            raise KeyError(occurrence_id)
        conn.execute(
            "update occurrences set state = ?, started_at = coalesce(?, started_at), ended_at = ?,"
            " detail = ?, updated_at = ? where id = ?",
            (outcome, iso(started) if started else None, iso(ended) if ended else None, detail,
             stamp, occurrence_id))
        duration = int((ended - started).total_seconds() * 1000) if started and ended else 0
        conn.execute(
            "insert into play_log (id, hub_id, created_at, occurrence_id, announcement_id, title,"
            " due_at, started_at, ended_at, duration_ms, repeats, outcome, detail, clock_trusted)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (new_id(), hub_id, stamp, occurrence_id, o[0], o[2], o[1],
             iso(started) if started else None, iso(ended) if ended else None, duration, o[3],
             outcome, detail, 1 if trusted else 0))


def recover(db, hub_id: str, now: datetime, trusted: bool) -> int:
    """After a crash: whatever was ``playing`` was cut short. Mark it missed; never replay it."""
    ids = [r["id"] for r in db.query("select id from occurrences where state = 'playing'")]
    for oid in ids:
        finish(db, hub_id, oid, "missed", now, trusted, detail="interrupted by a restart")
    return len(ids)


def states(db) -> dict[str, int]:
    return {r["state"]: r["n"] for r in
            db.query("select state, count(*) as n from occurrences group by state")}


# --- proof of play ----------------------------------------------------------------------------

def log(db, limit: int = 200, offset: int = 0) -> list[dict]:
    return list(db.query("select * from play_log order by created_at desc, id limit ? offset ?",
                         [limit, offset]))


CSV_COLUMNS = ("id", "created_at", "title", "due_at", "started_at", "ended_at", "duration_ms",
               "repeats", "outcome", "detail", "clock_trusted", "announcement_id", "occurrence_id",
               "hub_id")


def export_csv(db) -> str:
    """The whole proof-of-play log as CSV, oldest first."""
    out = io.StringIO()
    rows = db.query(f"select {', '.join(CSV_COLUMNS)} from play_log order by created_at, id")
    csvsafe.write_rows(out, [CSV_COLUMNS, *([r[c] for c in CSV_COLUMNS] for r in rows)])
    return out.getvalue()
