"""The central server's storage: the one module that reads and writes its database and files.

SQLite by default (``central.db`` in the data directory). Everything the
web app and the commands need goes through :class:`CentralStore`, with
plain SQL and JSON text columns, so a larger deployment can put PostgreSQL
behind the same methods without touching the sync protocol.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import secrets
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub.core import db as dbmod
from hub.core.db import new_id, run_script, transaction, utcnow
from hub.core.errors import HubError
from hub.core.media import fsync_dir, sha256_of, write_durably
from hub.migrations import ACCOUNTS_SQL
from hub.sync import wire

#: Largest media file a hub may upload.
MAX_MEDIA_BYTES = 200 * 1024 * 1024
KINDS = ("notice", "announcement")
#: Prefix of a registered hub's id until its first hello tells the central server its own id.
PENDING = "pending:"


class CentralError(HubError):
    pass


def central_tables(db) -> None:
    run_script(
        db,
        """
        create table hubs (
            id text primary key,
            name text not null unique,
            token_hash text not null unique,
            created_at text not null,
            revoked_at text,
            last_contact text,
            last_address text,
            health text not null default '{}'
        );
        create table records (
            seq integer primary key autoincrement,
            id text not null unique,
            hub_id text not null references hubs (id),
            kind text not null,
            created_at text not null,
            of_id text,
            data text not null,
            sha256 text not null,
            received_at text not null
        );
        create index records_kind on records (kind, created_at);
        create index records_of on records (of_id);
        create table uploads (
            id text primary key,
            hub_id text not null references hubs (id),
            total integer not null,
            sha256 text not null,
            received integer not null default 0,
            complete integer not null default 0,
            created_at text not null,
            completed_at text
        );
        create table files (
            id text primary key,
            name text not null,
            type text not null,
            bytes integer not null,
            sha256 text not null,
            created_at text not null
        );
        create table publications (
            id text primary key,
            seq integer not null unique,
            kind text not null check (kind in ('notice', 'announcement')),
            data text not null,
            targets text,
            withdrawn integer not null default 0,
            created_by text not null default '',
            created_at text not null,
            updated_at text not null
        );
        create table counters (
            name text primary key,
            value integer not null
        );
        create table pull_cursors (
            hub_id text primary key references hubs (id),
            cursor integer not null,
            at text not null
        );
        create table central_state (
            key text primary key,
            value text not null
        );
        """,
    )
    run_script(db, ACCOUNTS_SQL.read_text(encoding="utf-8"))


MIGRATIONS = [("c0001_central", central_tables)]


class CentralStore:
    """Hubs, their records and media, publications and officer accounts."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / "central.db"
        self.media_dir = self.data_dir / "central-media"
        self._local = threading.local()

    @classmethod
    def open(cls, data_dir: Path) -> CentralStore:
        store = cls(data_dir)
        store.data_dir.mkdir(parents=True, exist_ok=True)
        store.media_dir.mkdir(parents=True, exist_ok=True)
        dbmod.integrity_check(store.db)
        dbmod.migrate(store.db, MIGRATIONS)
        return store

    @property
    def db(self):
        conn = getattr(self._local, "db", None)
        if conn is None:
            conn = dbmod.connect(self.path)
            self._local.db = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "db", None)
        if conn is not None:
            conn.conn.close()
            self._local.db = None

    def secret_key(self) -> str:
        with transaction(self.db) as conn:
            row = conn.execute("select value from central_state where key = 'secret_key'").fetchone()
            if row:
                return row[0]
            key = secrets.token_hex(32)
            conn.execute("insert into central_state (key, value) values ('secret_key', ?)", (key,))
            return key

    # --- the hub registry ---
    def add_hub(self, name: str, hub_id: str | None = None) -> tuple[str, str]:
        """Register a hub; return (hub_id, token). Only the token's hash is kept."""
        name = name.strip()
        if not name or len(name) > 64 or any(c.isspace() for c in name):
            raise CentralError("hub name must be 1-64 characters with no spaces")
        token = secrets.token_urlsafe(32)
        # Without the hub's own id, the hub's first authenticated hello binds it.
        hub_id = hub_id or PENDING + new_id()
        with transaction(self.db) as conn:
            if conn.execute("select 1 from hubs where name = ? or id = ?", (name, hub_id)).fetchone():
                raise CentralError(f"hub {name!r} is already registered")
            conn.execute("insert into hubs (id, name, token_hash, created_at) values (?, ?, ?, ?)",
                         (hub_id, name, wire.token_hash(token), utcnow()))
        return hub_id, token

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
        with transaction(self.db) as conn:
            if conn.execute("select 1 from hubs where id = ?", (hub_id,)).fetchone():
                raise CentralError("another hub already has this id")
            conn.execute("update hubs set id = ? where id = ?", (hub_id, pending_id))
            # Publications addressed to the hub before its first hello.
            conn.execute("update publications set targets = replace(targets, ?, ?) where targets like ?",
                         (json.dumps(pending_id), json.dumps(hub_id), f"%{pending_id}%"))

    def hubs(self) -> list[dict]:
        rows = list(self.db.query("select * from hubs order by name"))
        for r in rows:
            r["health"] = json.loads(r["health"] or "{}")
            r.pop("token_hash", None)
        return rows

    def hub_by_token(self, token: str) -> dict | None:
        rows = list(self.db.query("select id, name from hubs where token_hash = ? and revoked_at is null",
                                  [wire.token_hash(token)]))
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
    def store_records(self, hub_id: str, records: list[dict]) -> dict[str, list[str]]:
        """Store each record once; same id and content is a duplicate, different content a conflict.

        Records in another hub's name refuse the whole batch, so nothing of it is stored.
        """
        refused = [r.get("id") for r in records if r.get("hub_id") != hub_id]
        if refused:
            return {"refused": refused}
        out = {"stored": [], "duplicate": [], "conflict": []}
        now = utcnow()
        with transaction(self.db) as conn:
            for r in records:
                digest = wire.content_hash(r)
                row = conn.execute("select sha256 from records where id = ?", (r["id"],)).fetchone()
                if row:
                    out["duplicate" if row[0] == digest else "conflict"].append(r["id"])
                    continue
                data = r["data"]
                conn.execute(
                    "insert into records (id, hub_id, kind, created_at, of_id, data, sha256, received_at)"
                    " values (?, ?, ?, ?, ?, ?, ?, ?)",
                    (r["id"], hub_id, r["kind"], r["created_at"], data.get("of"),
                     wire.canonical(data).decode(), digest, now),
                )
                out["stored"].append(r["id"])
        return out

    def record(self, record_id: str) -> dict | None:
        rows = list(self.db.query("select * from records where id = ?", [record_id]))
        return _record_out(rows[0]) if rows else None

    def records(self, kind: str | None = None, limit: int | None = None) -> list[dict]:
        sql = "select r.*, h.name as hub_name from records r join hubs h on h.id = r.hub_id"
        args: list = []
        if kind:
            sql += " where r.kind = ?"
            args.append(kind)
        sql += " order by r.created_at desc, r.seq desc"
        if limit:
            sql += " limit ?"
            args.append(limit)
        return [_record_out(r) for r in self.db.query(sql, args)]

    # --- media uploads, resumable by offset ---
    def _upload_path(self, media_id: str, part: bool) -> Path:
        if not all(c in "0123456789abcdef-" for c in media_id) or len(media_id) > 64:
            raise CentralError("bad media id")
        return self.media_dir / (media_id + (".part" if part else ".bin"))

    def media_record(self, media_id: str) -> dict | None:
        rows = list(self.db.query("select hub_id, data from records where id = ? and kind = 'media'",
                                  [media_id]))
        if not rows:
            return None
        return {"hub_id": rows[0]["hub_id"], **json.loads(rows[0]["data"])}

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
        """
        with transaction(self.db) as conn:
            row = conn.execute("select received, complete, total, sha256 from uploads where id = ?",
                               (media_id,)).fetchone()
            if row is None:
                conn.execute("insert into uploads (id, hub_id, total, sha256, created_at) values (?, ?, ?, ?, ?)",
                             (media_id, hub_id, total, sha256, utcnow()))
                received, complete = 0, 0
            else:
                received, complete = row[0], row[1]
                if (row[2], row[3]) != (total, sha256):
                    raise CentralError("length or checksum differ from the upload's start")
            if complete:
                return {"offset": received, "complete": True, "mismatch": offset != received}
            if offset != received:
                return {"offset": received, "complete": False, "mismatch": True}
            if offset + len(chunk) > total:
                raise CentralError("chunk goes past the declared length")
            part = self._upload_path(media_id, part=True)
            with open(part, "ab") as f:
                f.truncate(received)
                f.seek(received)
                f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            received += len(chunk)
            if received < total:
                conn.execute("update uploads set received = ? where id = ?", (received, media_id))
                return {"offset": received, "complete": False}
            digest = sha256_of(part)
            if digest != sha256:
                part.unlink(missing_ok=True)
                conn.execute("update uploads set received = 0 where id = ?", (media_id,))
                return {"offset": 0, "complete": False, "error": "checksum"}
            os.replace(part, self._upload_path(media_id, part=False))
            fsync_dir(self.media_dir)
            conn.execute("update uploads set received = ?, complete = 1, completed_at = ? where id = ?",
                         (received, utcnow(), media_id))
            return {"offset": received, "complete": True}

    def media_path(self, media_id: str) -> Path | None:
        state = self.upload_state(media_id)
        if not state or not state["complete"]:
            return None
        return self._upload_path(media_id, part=False)

    # --- files officers attach to publications ---
    def add_file(self, content: bytes, name: str, type_: str) -> dict:
        file_id = new_id()
        row = {"id": file_id, "name": Path(name).name[:100] or "audio", "type": type_,
               "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest(), "created_at": utcnow()}
        write_durably(self.media_dir / f"file-{file_id}", content)
        with transaction(self.db) as conn:
            conn.execute("insert into files (id, name, type, bytes, sha256, created_at) values (?, ?, ?, ?, ?, ?)",
                         tuple(row.values()))
        return row

    def file(self, file_id: str) -> tuple[dict, Path] | None:
        rows = list(self.db.query("select * from files where id = ?", [file_id]))
        if not rows:
            return None
        return rows[0], self.media_dir / f"file-{file_id}"

    # --- publications ---
    def _next_seq(self, conn) -> int:
        conn.execute("insert into counters (name, value) values ('publication', 0) on conflict do nothing")
        conn.execute("update counters set value = value + 1 where name = 'publication'")
        return conn.execute("select value from counters where name = 'publication'").fetchone()[0]

    def publish(self, kind: str, data: dict, targets: list[str] | None, user: str = "") -> str:
        """Publish to every hub (*targets* None) or to the hubs with these ids."""
        if kind not in KINDS:
            raise CentralError(f"kind must be one of {', '.join(KINDS)}")
        if not (data.get("title_km") or data.get("title_en")):
            raise CentralError("a publication needs a title")
        pub_id = new_id()
        now = utcnow()
        with transaction(self.db) as conn:
            conn.execute(
                "insert into publications (id, seq, kind, data, targets, created_by, created_at, updated_at)"
                " values (?, ?, ?, ?, ?, ?, ?, ?)",
                (pub_id, self._next_seq(conn), kind, wire.canonical(data).decode(),
                 json.dumps(sorted(targets)) if targets else None, user, now, now),
            )
        return pub_id

    def withdraw(self, pub_id: str) -> None:
        """Withdraw a publication; hubs expire the notice at their next pull."""
        with transaction(self.db) as conn:
            cur = conn.execute("update publications set withdrawn = 1, seq = ?, updated_at = ? where id = ?",
                               (self._next_seq(conn), utcnow(), pub_id))
            if cur.rowcount == 0:
                raise CentralError(f"no publication {pub_id}")

    def publications(self) -> list[dict]:
        return [_pub_out(r) for r in self.db.query("select * from publications order by seq desc")]

    def publications_since(self, hub_id: str, since: int, limit: int = 100) -> dict:
        """What *hub_id* has not pulled yet; the hub's cursor is kept here as well."""
        rows = list(self.db.query("select * from publications where seq > ? order by seq limit ?",
                                  [since, limit + 1]))
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = rows[-1]["seq"] if rows else since
        pubs = [p for p in (_pub_out(r) for r in rows) if p["targets"] is None or hub_id in p["targets"]]
        for p in pubs:
            p.pop("targets")
            p.pop("created_by")
        with transaction(self.db) as conn:
            conn.execute("insert into pull_cursors (hub_id, cursor, at) values (?, ?, ?)"
                         " on conflict (hub_id) do update set cursor = excluded.cursor, at = excluded.at",
                         (hub_id, since, utcnow()))
        return {"publications": pubs, "cursor": cursor, "more": more}

    def pull_cursor(self, hub_id: str) -> int | None:
        row = self.db.conn.execute("select cursor from pull_cursors where hub_id = ?", (hub_id,)).fetchone()
        return row[0] if row else None

    # --- what the dashboard shows ---
    def feedback_overview(self, weeks: int = 8, today: datetime | None = None) -> dict:
        """Feedback by hub, category, current status and week (Monday first)."""
        today = today or datetime.now(UTC)
        monday = (today - timedelta(days=today.weekday())).date()
        starts = [monday - timedelta(weeks=i) for i in range(weeks - 1, -1, -1)]
        latest: dict[str, tuple[str, str]] = {}
        for r in self.db.query("select of_id, created_at, data from records where kind = 'feedback.revision'"):
            status = json.loads(r["data"]).get("status")
            if status and (r["of_id"] not in latest or latest[r["of_id"]][0] <= r["created_at"]):
                latest[r["of_id"]] = (r["created_at"], status)
        by_category, by_status, by_hub = Counter(), Counter(), Counter()
        weekly: dict[str, list[int]] = {}
        for r in self.db.query("select r.id, r.created_at, r.data, h.name from records r"
                               " join hubs h on h.id = r.hub_id where r.kind = 'feedback'"):
            data = json.loads(r["data"])
            category = data.get("category", "other")
            status = latest.get(r["id"], ("", data.get("status", "new")))[1]
            by_category[category] += 1
            by_status[status] += 1
            by_hub[r["name"]] += 1
            try:
                idx = (datetime.fromisoformat(r["created_at"]).date() - starts[0]).days // 7
            except ValueError:
                continue
            if 0 <= idx < weeks:
                weekly.setdefault(category, [0] * weeks)[idx] += 1
        return {"weeks": [s.isoformat() for s in starts], "weekly": weekly,
                "by_category": dict(by_category), "by_status": dict(by_status), "by_hub": dict(by_hub),
                "total": sum(by_category.values())}

    def feedback_items(self, category: str | None = None, status: str | None = None,
                       hub: str | None = None, limit: int = 200) -> list[dict]:
        items = []
        for r in self.records("feedback"):
            revs = list(self.db.query("select data from records where of_id = ? order by created_at, seq",
                                      [r["id"]]))
            for rev in revs:
                r["data"].update({k: v for k, v in json.loads(rev["data"]).items() if k != "of"})
            d = r["data"]
            if (category and d.get("category") != category) or (status and d.get("status") != status) \
                    or (hub and r["hub_name"] != hub):
                continue
            items.append(r)
            if len(items) >= limit:
                break
        return items

    # --- export ---
    def export(self, fmt: str, out) -> int:
        """Write every record held (and every publication) as JSON lines or CSV; return the count."""
        n = 0
        rows = self.db.query("select r.*, h.name as hub_name from records r join hubs h on h.id = r.hub_id"
                             " order by r.seq")
        if fmt == "csv":
            w = csv.writer(out)
            w.writerow(["id", "kind", "hub_id", "hub_name", "created_at", "received_at", "sha256", "data"])
        for r in rows:
            if fmt == "jsonl":
                out.write(json.dumps({"id": r["id"], "kind": r["kind"], "hub_id": r["hub_id"],
                                      "hub_name": r["hub_name"], "created_at": r["created_at"],
                                      "received_at": r["received_at"], "sha256": r["sha256"],
                                      "data": json.loads(r["data"])}, ensure_ascii=False) + "\n")
            else:
                w.writerow([_csv_safe(v) for v in (r["id"], r["kind"], r["hub_id"], r["hub_name"],
                                                   r["created_at"], r["received_at"], r["sha256"], r["data"])])
            n += 1
        for p in self.publications():
            kind = "published." + p["kind"]
            if fmt == "jsonl":
                out.write(json.dumps({"id": p["id"], "kind": kind, "hub_id": None, "hub_name": None,
                                      "created_at": p["created_at"], "received_at": None, "sha256": None,
                                      "data": {**p["data"], "targets": p["targets"],
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
            "withdrawn": bool(r["withdrawn"]), "created_by": r["created_by"],
            "created_at": r["created_at"], "updated_at": r["updated_at"]}
