"""The hub's outbox: the records and media files that must reach the central server.

The only code that writes ``sync_outbox``, ``sync_seen`` and ``sync_media``, and that
empties ``sync_changes`` (triggers fill it); the sync state and data budget are in
:mod:`hub.sync.state`, pulled publications in :mod:`hub.sync.inbox`, and the Telegram
queue in :mod:`hub.sync.telegram`.

Records are not copied into the outbox by the modules that write them.
Instead :func:`scan` looks at each source table in :data:`SOURCES` (tables
that do not exist yet are skipped, and picked up once a migration makes
them) and turns every new or changed row into a wire record. Which rows
changed, it reads from ``sync_changes``, the log the tables' triggers
write (migration 0013): a scan costs what changed since the last one, not
the size of the tables. A source without such triggers is compared row by
row with ``sync_seen``.

- a row seen for the first time travels under its own UUID;
- a row that changed later (a clerk's status or reply, a corrected
  transcript, a playback that ended) travels as a *revision*: a new record
  with its own UUID and kind ``<kind>.revision`` whose data names the
  original in ``"of"``.

So a record's content never changes after it is made, and the central
server's rule "same id, different content: 409" holds for honest hubs.
A record is marked sent only when the central server names its id as
stored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hub import feedback
from hub.core.db import new_id, transaction, utcnow
from hub.core.files import sha256_of
from hub.sync.wire import canonical
from hub.voice import transcripts

#: Fields that name a media row; the file behind it is uploaded too.
MEDIA_FIELDS = ("audio_id", "image_id", "media_id", "reply_audio_id")
#: Rows changed this recently are re-checked on every scan (updated_at has one-second steps).
RECENT_SECONDS = 5
STATES = ("pending", "sent", "conflict", "refused")


# --- sources --------------------------------------------------------------------------------

def _plain_data(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("id", "hub_id", "created_at", "updated_at")}


@dataclass(frozen=True)
class Source:
    """A table whose rows travel to the central server, as records of *kind*.

    *where* (SQL on the table's alias ``t``) picks the rows that may leave the hub.
    *logged*: triggers write the table's changes to ``sync_changes``, so a scan
    reads only those; otherwise it compares every row with ``sync_seen``.
    """

    table: str
    kind: str
    data: object = _plain_data
    where: str = ""
    logged: bool = False


#: Every table the hub sends; what of a row leaves is decided by the module that owns the table.
SOURCES: tuple[Source, ...] = (
    Source("feedback", "feedback", feedback.outgoing, logged=True),
    Source("transcripts", "transcript", transcripts.outgoing, transcripts.SHARED_ROWS, logged=True),
    Source("play_log", "play", logged=True),
)


def _columns(db, table: str) -> list[str]:
    return [r[1] for r in db.conn.execute(f"pragma table_info({table})").fetchall()]


def fingerprint(data: dict) -> str:
    return hashlib.sha256(canonical(data)).hexdigest()


def _sources(db):
    """The sources whose tables exist, each with whether it has ``updated_at``."""
    tables = set(db.table_names())
    for source in SOURCES:
        if source.table not in tables:
            continue
        cols = _columns(db, source.table)
        if {"id", "hub_id", "created_at"} <= set(cols):
            yield source, "updated_at" in cols


def scan(ctx) -> int:
    """Turn new and changed rows of every source into outbox records; return how many."""
    _ = ctx.hub_id  # made (and stored) now, not inside the transactions below
    return sum(_scan_source(ctx, source, has_updated_at) for source, has_updated_at in _sources(ctx.db))


def unscanned(db) -> int:
    """How many records the next :func:`scan` would make; it reads only, and writes nothing."""
    return sum(1 for source, has_updated_at in _sources(db)
               for batch, _upto in _changes(db, source, has_updated_at)
               for _row, data, _fp in batch if data)


def unsent(db) -> int:
    """Records that have not reached the central server: pending in the outbox, or still to be queued."""
    return counts(db)["pending"] + unscanned(db)


BATCH = 500


def _changes(db, source: Source, has_updated_at: bool):
    """Batches of (row, data, fingerprint seen before), each with the last change-log seq it covers.

    data is empty when the row has nothing new to send (only its marker moves, or it
    may not leave the hub, or it is gone).
    """
    if source.logged:
        yield from _logged_changes(db, source)
        return
    if has_updated_at:
        recent = (datetime.now(UTC) - timedelta(seconds=RECENT_SECONDS)).isoformat(timespec="seconds")
        sql = (f"select t.*, s.fingerprint as _fp from {source.table} t left join sync_seen s"
               " on s.source = ? and s.source_id = t.id"
               " where (s.source_id is null or s.marker is not t.updated_at or t.updated_at >= ?)")
        args = [source.table, recent]
    else:
        sql = (f"select t.*, s.fingerprint as _fp from {source.table} t left join sync_seen s"
               " on s.source = ? and s.source_id = t.id where 1")
        args = [source.table]
    if source.where:
        sql += f" and ({source.where})"
    batch = []
    for row in db.query(sql, args):
        seen_fp = row.pop("_fp")
        data = source.data(row)
        if fingerprint(data) == seen_fp:
            if has_updated_at:
                batch.append((row, {}, None))
        else:
            batch.append((row, data, seen_fp))
        if len(batch) >= BATCH:
            yield batch, None
            batch = []
    if batch:
        yield batch, None


def _logged_changes(db, source: Source):
    # The log is read first, in full (it holds what changed since the last scan, one line a
    # write): the scan deletes from it while it works through the batches.
    changed = db.conn.execute(
        "select source_id, max(seq) as upto from sync_changes where source = ? group by source_id order by upto",
        (source.table,)).fetchall()
    ok = f"({source.where})" if source.where else "1"
    for i in range(0, len(changed), BATCH):
        part = changed[i:i + BATCH]
        marks = ", ".join("?" * len(part))
        rows = {r["id"]: r for r in db.query(
            f"select t.*, s.fingerprint as _fp, {ok} as _ok from {source.table} t left join sync_seen s"
            f" on s.source = ? and s.source_id = t.id where t.id in ({marks})",
            [source.table, *(c[0] for c in part)])}
        batch = []
        for source_id, _upto in part:
            row = rows.get(source_id)
            if row is None:
                continue  # deleted since
            seen_fp, may_leave = row.pop("_fp"), row.pop("_ok")
            data = source.data(row) if may_leave else {}
            if data and fingerprint(data) != seen_fp:
                batch.append((row, data, seen_fp))
        yield batch, part[-1][1]


def _scan_source(ctx, source: Source, has_updated_at: bool) -> int:
    return sum(_enqueue_rows(ctx, source, batch, upto)
               for batch, upto in _changes(ctx.db, source, has_updated_at))


def _enqueue_rows(ctx, source: Source, batch, upto: int | None) -> int:
    made = 0
    now = utcnow()
    with transaction(ctx.db) as conn:
        for row, data, seen_fp in batch:
            marker = row.get("updated_at")
            if not data:
                conn.execute("update sync_seen set marker = ? where source = ? and source_id = ?",
                             (marker, source.table, row["id"]))
                continue
            if seen_fp is None:
                record = {"id": row["id"], "kind": source.kind, "hub_id": row["hub_id"],
                          "created_at": row["created_at"], "data": data}
            else:
                record = {"id": new_id(), "kind": source.kind + ".revision", "hub_id": row["hub_id"],
                          "created_at": marker or now, "data": {"of": row["id"], **data}}
            _insert_record(conn, record, source.table, row["id"])
            for field in MEDIA_FIELDS:
                if data.get(field):
                    _enqueue_media(ctx, conn, data[field])
            conn.execute(
                "insert into sync_seen (source, source_id, marker, fingerprint) values (?, ?, ?, ?)"
                " on conflict (source, source_id) do update set marker = excluded.marker,"
                " fingerprint = excluded.fingerprint",
                (source.table, row["id"], marker, fingerprint(data)),
            )
            made += 1
        if upto is not None:
            # Lines written after the log was read have a larger seq, and wait for the next scan.
            conn.execute("delete from sync_changes where source = ? and seq <= ?", (source.table, upto))
    return made


def _insert_record(conn, record: dict, source: str, source_id: str) -> None:
    conn.execute(
        "insert into sync_outbox (id, kind, source, source_id, body, created_at) values (?, ?, ?, ?, ?, ?)"
        " on conflict (id) do nothing",
        (record["id"], record["kind"], source, source_id, canonical(record).decode(), utcnow()),
    )


def _enqueue_media(ctx, conn, media_id: str) -> None:
    """Queue the web copy of a media row (small: the line is paid) and its description."""
    if conn.execute("select 1 from sync_media where media_id = ?", (media_id,)).fetchone():
        return
    cur = conn.execute("select * from media where id = ?", (media_id,))
    row = cur.fetchone()
    if row is None:
        return
    m = dict(zip([d[0] for d in cur.description], row, strict=True))

    path = ctx.media.path(m["web_name"])
    if path.exists():
        size, digest, state = path.stat().st_size, sha256_of(path), "pending"
    else:
        size, digest, state = 0, "", "missing"
    conn.execute(
        "insert into sync_media (media_id, name, bytes, sha256, state, created_at) values (?, ?, ?, ?, ?, ?)",
        (media_id, m["web_name"], size, digest, state, utcnow()),
    )
    record = {"id": media_id, "kind": "media", "hub_id": m["hub_id"], "created_at": m["created_at"],
              "data": {"media_kind": m["kind"], "type": m["web_type"], "duration_ms": m["duration_ms"],
                       "bytes": size, "sha256": digest, "original_format": m["original_format"]}}
    _insert_record(conn, record, "media", media_id)


def add_health(ctx, health: dict) -> str:
    """Queue one health report (a new record each time)."""
    record = {"id": new_id(), "kind": "health", "hub_id": ctx.hub_id, "created_at": utcnow(),
              "data": health}
    with transaction(ctx.db) as conn:
        _insert_record(conn, record, "health", record["id"])
    return record["id"]


# --- pushing ---------------------------------------------------------------------------------

def pending(db, limit: int) -> list[dict]:
    return [json.loads(r["body"]) for r in db.query(
        "select body from sync_outbox where state = 'pending' order by seq limit ?", [limit])]


def mark(db, ids: list[str], state: str, error: str | None = None) -> None:
    """Record the central server's verdict on *ids* (sent only for ids it confirmed)."""
    if not ids:
        return
    if state not in STATES:
        raise ValueError(state)
    now = utcnow()
    with transaction(db) as conn:
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            conn.execute(
                f"update sync_outbox set state = ?, last_error = ?, attempts = attempts + 1,"
                f" sent_at = case when ? = 'sent' then ? else sent_at end"
                f" where id in ({marks}) and state = 'pending'",
                (state, error, state, now, *chunk),
            )


def counts(db) -> dict[str, int]:
    out = dict.fromkeys(STATES, 0)
    for r in db.query("select state, count(*) as n from sync_outbox group by state"):
        out[r["state"]] = r["n"]
    return out


def flagged(db, limit: int = 50) -> list[dict]:
    """Records the central server refused (409 or another hub's name): shown in the console."""
    return list(db.query(
        "select id, kind, source, source_id, state, last_error, created_at from sync_outbox"
        " where state in ('conflict', 'refused') order by seq desc limit ?", [limit]))


def media_pending(db) -> list[dict]:
    return list(db.query("select * from sync_media where state = 'pending' order by created_at"))


def media_counts(db) -> dict[str, int]:
    out = {"pending": 0, "done": 0, "missing": 0, "failed": 0}
    for r in db.query("select state, count(*) as n from sync_media group by state"):
        out[r["state"]] = r["n"]
    return out


def media_progress(db, media_id: str, sent: int, state: str | None = None,
                   error: str | None = None) -> None:
    with transaction(db) as conn:
        conn.execute(
            "update sync_media set bytes_sent = bytes_sent + ?, attempts = attempts + 1,"
            " last_error = ?, state = coalesce(?, state),"
            " done_at = case when ? = 'done' then ? else done_at end where media_id = ?",
            (sent, error, state, state, utcnow(), media_id),
        )
