"""The central server's storage: the one module that reads and writes its database and files.

SQLite by default (``central.db`` in the data directory), PostgreSQL when
the ``database_url`` setting names one (:mod:`hub.central.database`).
Everything the web app and the commands need goes through
:class:`CentralStore`, in SQL both databases speak, so the sync protocol
never knows which one is behind it. Media files go through
:mod:`hub.central.storage`.

Several processes may serve the same store at once (gunicorn workers):
nothing that matters is kept in a process, and every read-then-write is
either one statement (``insert ... on conflict``) or done under a row lock.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import uuid
from pathlib import Path

from hub.central import database
from hub.central.areas import Areas, scope_clause
from hub.central.errors import CentralError
from hub.central.fleet import Fleet
from hub.central.publications import Publications
from hub.central.releases import Releases
from hub.central.remote import Remote
from hub.central.reports import Reports, _record_out
from hub.central.storage import FileStorage, MediaStorage
from hub.core import db as dbmod
from hub.core.db import new_id, transaction, utcnow
from hub.migrations import ACCOUNTS_SQL, SESSIONS_SQL
from hub.sync import wire

#: Largest media file a hub may upload.
MAX_MEDIA_BYTES = 200 * 1024 * 1024
#: Prefix of a registered hub's id until its first hello tells the central server its own id.
PENDING = "pending:"




def _accounts_tables(db, sql_file=ACCOUNTS_SQL) -> None:
    for statement in database.statements(database.for_backend(sql_file.read_text(encoding="utf-8"), db.backend)):
        db.conn.execute(statement)


def _sessions_tables(db) -> None:
    _accounts_tables(db, SESSIONS_SQL)


def _backfill_feedback_state(db) -> None:
    """Feedback stored before the dashboard kept its current state beside it."""
    latest: dict[str, tuple[str, str]] = {}
    for r in db.query("select of_id, created_at, data from records where kind = 'feedback.revision'"):
        status = json.loads(r["data"]).get("status")
        if status and (r["of_id"] not in latest or latest[r["of_id"]][0] <= r["created_at"]):
            latest[r["of_id"]] = (r["created_at"], status)
    for r in db.query("select id, hub_id, created_at, data from records where kind = 'feedback'"):
        data = json.loads(r["data"])
        at, status = latest.get(r["id"], (r["created_at"], data.get("status", "new")))
        db.conn.execute("insert into feedback_state (id, hub_id, category, status, status_at, created_at)"
                        " values (?, ?, ?, ?, ?, ?)",
                        (r["id"], r["hub_id"], data.get("category", "other"), status, at, r["created_at"]))
    for p in db.query("select id, targets from publications where targets is not null"):
        for hub_id in json.loads(p["targets"]):
            db.conn.execute("insert into publication_targets (publication_id, hub_id) values (?, ?)",
                            (p["id"], hub_id))


#: Python steps run inside the transaction of the SQL migration of the same name.
MIGRATION_STEPS = {"c0001_central": _accounts_tables, "c0002_areas": _backfill_feedback_state,
                   "c0004_sessions": _sessions_tables}


class CentralStore(Areas, Publications, Reports, Fleet, Remote, Releases):
    """Hubs, their records and media, publications, areas and officer accounts."""

    def __init__(self, data_dir: Path, database_url: str = "", media: MediaStorage | None = None):
        self.data_dir = Path(data_dir)
        self.database_url = database_url or ""
        self.backend = database.backend_of(self.database_url)
        self.path = self.data_dir / "central.db"
        self.media_dir = self.data_dir / "central-media"
        self._media = media
        self._local = threading.local()

    @classmethod
    def open(cls, data_dir: Path, database_url: str = "") -> CentralStore:

        store = cls(data_dir, database_url)
        store.data_dir.mkdir(parents=True, exist_ok=True)
        store.media_dir.mkdir(parents=True, exist_ok=True)
        try:
            if store.backend == database.SQLITE:
                dbmod.integrity_check(store.db)
            database.migrate(store.db, MIGRATION_STEPS)
            store.load_areas()
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def from_settings(cls, settings) -> CentralStore:
        return cls.open(settings.data_dir, settings.database_url)

    @property
    def db(self):
        conn = getattr(self._local, "db", None)
        if conn is not None and conn.backend == database.POSTGRESQL and (conn.conn.raw.broken or conn.conn.raw.closed):
            conn = None  # the server restarted or the network cut the connection: open a new one
        if conn is None:
            conn = database.connect(self.database_url, self.path)
            self._local.db = conn
        return conn

    @property
    def media(self) -> MediaStorage:
        if self._media is None:
            self._media = FileStorage(self.media_dir)
        return self._media

    def close(self) -> None:
        conn = getattr(self._local, "db", None)
        if conn is not None:
            conn.conn.close()
            self._local.db = None

    def secret_key(self) -> str:
        with transaction(self.db) as conn:
            conn.execute("insert into central_state (key, value) values ('secret_key', ?) on conflict do nothing",
                         (secrets.token_hex(32),))
            return conn.execute("select value from central_state where key = 'secret_key'").fetchone()[0]


    # --- the hub registry ---
    def add_hub(self, name: str, hub_id: str | None = None, commune: str | None = None) -> tuple[str, str]:
        """Register a hub, in *commune* if given; return (hub_id, token). Only the token's hash is kept."""
        name = name.strip()
        if not name or len(name) > 64 or any(c.isspace() for c in name):
            raise CentralError("hub name must be 1-64 characters with no spaces")
        if commune:
            self._require_area(commune, "commune")
        token = secrets.token_urlsafe(32)
        # Without the hub's own id, the hub's first authenticated hello binds it.
        hub_id = hub_id or PENDING + new_id()
        with transaction(self.db) as conn:
            if conn.execute("select 1 from hubs where name = ? or id = ?", (name, hub_id)).fetchone():
                raise CentralError(f"hub {name!r} is already registered")
            conn.execute("insert into hubs (id, name, token_hash, created_at, province_code, district_code,"
                         " commune_code) values (?, ?, ?, ?, ?, ?, ?)",
                         (hub_id, name, wire.token_hash(token), utcnow(), commune[:2] if commune else None,
                          commune[:4] if commune else None, commune))
        return hub_id, token

    def place_hub(self, name: str, commune: str) -> None:
        """Put a registered hub in a commune (and so in its district and province)."""
        self._require_area(commune, "commune")
        with transaction(self.db) as conn:
            cur = conn.execute("update hubs set province_code = ?, district_code = ?, commune_code = ?"
                               " where name = ?", (commune[:2], commune[:4], commune, name))
            if cur.rowcount == 0:
                raise CentralError(f"no hub {name!r}")

    def revoke_hub(self, name: str) -> None:
        with transaction(self.db) as conn:
            cur = conn.execute("update hubs set revoked_at = ? where name = ? and revoked_at is null",
                               (utcnow(), name))
            if cur.rowcount == 0:
                raise CentralError(f"no active hub {name!r}")

    def bind_hub(self, pending_id: str, hub_id: str) -> None:
        """Give a hub registered without an id the id it stamps on its records (first hello)."""
        try:
            hub_id = str(uuid.UUID(hub_id))
        except (ValueError, TypeError, AttributeError):
            raise CentralError("a hub id must be a UUID") from None
        try:
            with transaction(self.db) as conn:
                if conn.execute("select 1 from hubs where id = ?", (hub_id,)).fetchone():
                    raise CentralError("another hub already has this id")
                if conn.execute("update hubs set id = ? where id = ?", (hub_id, pending_id)).rowcount == 0:
                    return  # another worker bound it a moment ago
                # Publications addressed to the hub before its first hello.
                conn.execute("update publication_targets set hub_id = ? where hub_id = ?", (hub_id, pending_id))
                conn.execute("update publications set targets = replace(targets, ?, ?) where targets like ?",
                             (json.dumps(pending_id), json.dumps(hub_id), f"%{pending_id}%"))
        except database.integrity_errors():
            raise CentralError("another hub already has this id") from None

    def hubs(self, scope: str | None = None, limit: int | None = None, offset: int = 0,
             area: str | None = None, unplaced: bool = False) -> list[dict]:
        """Hubs inside *scope* and *area*, by name; *unplaced*: only those not yet put in a commune."""
        where, args = scope_clause(scope)
        if area:
            more, more_args = scope_clause(area)
            where, args = f"{where} and {more}", args + more_args
        if unplaced:
            where += " and h.commune_code is null"
        sql = ("select h.*, c.name_km as commune_km, c.name_en as commune_en from hubs h"
               f" left join areas c on c.code = h.commune_code where {where} order by h.name")
        if limit:
            sql += " limit ? offset ?"
            args += [limit, offset]
        rows = list(self.db.query(sql, args))
        for r in rows:
            r["health"] = json.loads(r["health"] or "{}")
            r.pop("token_hash", None)
        return rows

    def hub_count(self, scope: str | None = None, area: str | None = None) -> int:
        where, args = scope_clause(scope)
        if area:
            more, more_args = scope_clause(area)
            where, args = f"{where} and {more}", args + more_args
        return self.db.conn.execute(f"select count(*) from hubs h where {where}", args).fetchone()[0]

    def hub_by_token(self, token: str) -> dict | None:
        rows = list(self.db.query("select id, name, province_code, district_code, commune_code from hubs"
                                  " where token_hash = ? and revoked_at is null", [wire.token_hash(token)]))
        return rows[0] if rows else None

    def touch_hub(self, hub_id: str, address: str, health: dict | None = None) -> None:
        with transaction(self.db) as conn:
            if health:
                conn.execute("update hubs set last_contact = ?, last_address = ?, health = ? where id = ?",
                             (utcnow(), address, wire.canonical(health).decode(), hub_id))
            else:
                conn.execute("update hubs set last_contact = ?, last_address = ? where id = ?",
                             (utcnow(), address, hub_id))

    # --- records: stored exactly once ---
    def store_records(self, hub_id: str, records: list[dict], address: str | None = None) -> dict[str, list[str]]:
        """Store each record once; same id and content is a duplicate, different content a conflict.

        Records in another hub's name refuse the whole batch, so nothing of it is stored.
        Each insert is one ``on conflict do nothing`` statement: when two
        workers race on the same id, one stores it and the other waits for
        that commit and then finds it held. Ids are taken in sorted order so
        two overlapping batches lock them in the same order and never deadlock.
        With *address*, the hub's last contact is noted in the same transaction.
        """
        refused = [r.get("id") for r in records if r.get("hub_id") != hub_id]
        if refused:
            return {"refused": refused}
        out = {"stored": [], "duplicate": [], "conflict": []}
        now = utcnow()
        stored: dict[str, dict] = {}
        with transaction(self.db) as conn:
            for r in sorted(records, key=lambda r: r["id"]):
                digest = wire.content_hash(r)
                data = r["data"]
                row = conn.execute(
                    "insert into records (id, hub_id, kind, created_at, of_id, data, sha256, received_at)"
                    " values (?, ?, ?, ?, ?, ?, ?, ?) on conflict (id) do nothing returning id",
                    (r["id"], hub_id, r["kind"], r["created_at"], data.get("of"),
                     wire.canonical(data).decode(), digest, now),
                ).fetchone()
                if row is None:
                    held = conn.execute("select sha256 from records where id = ?", (r["id"],)).fetchone()
                    (out["duplicate"] if held[0] == digest else out["conflict"]).append(r["id"])
                    continue
                stored[r["id"]] = r
            self._feedback_state(conn, hub_id, list(stored.values()))
            if address is not None:
                conn.execute("update hubs set last_contact = ?, last_address = ? where id = ?",
                             (now, address, hub_id))
        # Answered in the order the hub sent them.
        out["stored"] = [r["id"] for r in records if r["id"] in stored]
        return out

    @staticmethod
    def _feedback_state(conn, hub_id: str, stored: list[dict]) -> None:
        """Keep each feedback's current category and status beside it, for the dashboard's counts."""
        feedback = {r["id"]: r for r in stored if r["kind"] == "feedback"}
        state = {fid: (r["created_at"], r["data"].get("status", "new")) for fid, r in feedback.items()}
        if feedback:
            # Replies already held, or in this batch: one can arrive before the message it answers.
            for rev in conn.execute(
                    f"select of_id, created_at, data from records where kind = 'feedback.revision'"
                    f" and of_id in ({', '.join('?' * len(feedback))})", tuple(feedback)).fetchall():
                rev_status = json.loads(rev[2]).get("status")
                if rev_status and rev[1] >= state[rev[0]][0]:
                    state[rev[0]] = (rev[1], rev_status)
        for fid, r in feedback.items():
            at, status = state[fid]
            conn.execute("insert into feedback_state (id, hub_id, category, status, status_at, created_at)"
                         " values (?, ?, ?, ?, ?, ?) on conflict (id) do nothing",
                         (fid, hub_id, r["data"].get("category", "other"), status, at, r["created_at"]))
        for r in stored:
            of = r["data"].get("of")
            if r["kind"] == "feedback.revision" and r["data"].get("status") and of and of not in feedback:
                conn.execute("update feedback_state set status = ?, status_at = ? where id = ? and status_at <= ?",
                             (r["data"]["status"], r["created_at"], of, r["created_at"]))

    def record(self, record_id: str) -> dict | None:
        rows = list(self.db.query("select * from records where id = ?", [record_id]))
        return _record_out(rows[0]) if rows else None

    def records(self, kind: str | None = None, limit: int | None = None, scope: str | None = None) -> list[dict]:
        where, args = scope_clause(scope)
        sql = f"select r.*, h.name as hub_name from records r join hubs h on h.id = r.hub_id where {where}"
        if kind:
            sql += " and r.kind = ?"
            args.append(kind)
        sql += " order by r.created_at desc, r.seq desc"
        if limit:
            sql += " limit ?"
            args.append(limit)
        return [_record_out(r) for r in self.db.query(sql, args)]

    # --- media uploads, resumable by offset ---
    @staticmethod
    def _upload_name(media_id: str, part: bool) -> str:
        if not media_id or not all(c in "0123456789abcdef-" for c in media_id) or len(media_id) > 64:
            raise CentralError("bad media id")
        return media_id + (".part" if part else ".bin")

    def media_record(self, media_id: str) -> dict | None:
        rows = list(self.db.query("select r.hub_id, r.data, h.commune_code from records r join hubs h"
                                  " on h.id = r.hub_id where r.id = ? and r.kind = 'media'", [media_id]))
        if not rows:
            return None
        return {"hub_id": rows[0]["hub_id"], "commune_code": rows[0]["commune_code"], **json.loads(rows[0]["data"])}

    def upload_state(self, media_id: str) -> dict | None:
        rows = list(self.db.query("select * from uploads where id = ?", [media_id]))
        return rows[0] if rows else None

    def append_media(self, hub_id: str, media_id: str, offset: int, total: int, sha256: str,
                     chunk: bytes) -> dict:
        """Append *chunk* at *offset*; verify the SHA-256 when the file is whole.

        Returns {"offset", "complete"} and, on a wrong offset, "mismatch": True;
        on a bad checksum "error": "checksum" (the partial copy is dropped).
        The database says how much is received; the file is cut back to it
        first, so bytes written before a crash but never committed do not count.
        The upload's row is locked while its file is written, so two workers
        never write the same file at once.
        """
        lock = " for update" if self.backend == database.POSTGRESQL else ""
        part, whole = self._upload_name(media_id, True), self._upload_name(media_id, False)
        with transaction(self.db) as conn:
            conn.execute("insert into uploads (id, hub_id, total, sha256, created_at) values (?, ?, ?, ?, ?)"
                         " on conflict (id) do nothing", (media_id, hub_id, total, sha256, utcnow()))
            row = conn.execute(f"select received, complete, total, sha256 from uploads where id = ?{lock}",
                               (media_id,)).fetchone()
            received, complete = row[0], row[1]
            if (row[2], row[3]) != (total, sha256):
                raise CentralError("length or checksum differ from the upload's start")
            if complete:
                return {"offset": received, "complete": True, "mismatch": offset != received}
            if offset != received:
                return {"offset": received, "complete": False, "mismatch": True}
            if offset + len(chunk) > total:
                raise CentralError("chunk goes past the declared length")
            received = self.media.append(part, received, chunk)
            if received < total:
                conn.execute("update uploads set received = ? where id = ?", (received, media_id))
                return {"offset": received, "complete": False}
            if self.media.sha256(part) != sha256:
                self.media.delete(part)
                conn.execute("update uploads set received = 0 where id = ?", (media_id,))
                return {"offset": 0, "complete": False, "error": "checksum"}
            self.media.finish(part, whole)
            conn.execute("update uploads set received = ?, complete = 1, completed_at = ? where id = ?",
                         (received, utcnow(), media_id))
            return {"offset": received, "complete": True}

    def media_name(self, media_id: str) -> str | None:
        """The stored name of a hub's finished upload, or None."""
        state = self.upload_state(media_id)
        if not state or not state["complete"]:
            return None
        return self._upload_name(media_id, part=False)

    def media_path(self, media_id: str) -> Path | None:
        name = self.media_name(media_id)
        return self.media.local_path(name) if name else None

    # --- files officers attach to publications ---
    def add_file(self, content: bytes, name: str, type_: str) -> dict:
        file_id = new_id()
        row = {"id": file_id, "name": Path(name).name[:100] or "audio", "type": type_,
               "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest(), "created_at": utcnow()}
        self.media.put(f"file-{file_id}", content)
        with transaction(self.db) as conn:
            conn.execute("insert into files (id, name, type, bytes, sha256, created_at) values (?, ?, ?, ?, ?, ?)",
                         tuple(row.values()))
        return row

    def file(self, file_id: str) -> tuple[dict, bytes] | None:
        rows = list(self.db.query("select * from files where id = ?", [file_id]))
        if not rows:
            return None
        return rows[0], self.media.read(f"file-{file_id}")


