"""The hub's one SQLite database: connection settings, migrations and checks.

Every connection uses WAL (readers never block the writer), ``synchronous=FULL``
(a committed write survives a power cut), a busy timeout, foreign keys and
recursive triggers.
Only the domain modules (``hub.notices``, ``hub.feedback``, ...) write to it.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from hub.core.errors import DiskFull, HubError

BUSY_TIMEOUT_MS = 10_000
MIGRATIONS_TABLE = "_migrations"


class StoreError(HubError):
    """The database cannot be used (corrupt, or from a newer hub)."""


class Database:
    """One SQLite connection, and the two calls the store makes of it.

    The hub writes plain SQL through :mod:`sqlite3`; this adds only
    :meth:`query` (rows as dicts) and :meth:`table_names`. Every daemon
    holds one, so it stays this small: a wrapper library that brought a
    command line, plugins and date parsing along cost each daemon about
    12 MB for these two methods.
    """

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql: str, params: Sequence = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params or ())

    def query(self, sql: str, params: Sequence = ()) -> Iterator[dict]:
        """The rows of *sql* as dicts, read as they are iterated."""
        cursor = self.conn.execute(sql, params or ())
        if cursor.description is None:
            raise ValueError("query() is for SQL that returns rows; use execute()")
        keys = [d[0] for d in cursor.description]
        return (dict(zip(keys, row, strict=True)) for row in cursor)

    def table_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("select name from sqlite_master where type = 'table'")]

    def close(self) -> None:
        self.conn.close()


def connect(path: str | Path | None = None) -> Database:
    """Open the database at *path* (``None``: in memory) with the hub's pragmas."""
    if path is None:
        conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
            isolation_level=None,
        )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if path is not None:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA recursive_triggers = ON")
    except sqlite3.DatabaseError as e:
        conn.close()
        raise StoreError(f"database {path} is unusable: {e}") from None
    return Database(conn)


class transaction:
    """``with transaction(db):`` runs the block in one IMMEDIATE transaction.

    IMMEDIATE takes the write lock at the start, so two writers never both
    read-then-write and then fail on upgrade; the busy timeout queues them.
    """

    def __init__(self, db: Database):
        self.conn = db.conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.conn.execute("COMMIT")
                return False
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except sqlite3.OperationalError as e:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            _disk_full_as_such(e)
            raise
        if isinstance(exc, sqlite3.OperationalError):
            _disk_full_as_such(exc)
        return False


def _disk_full_as_such(error: sqlite3.OperationalError) -> None:
    """SQLite's "database or disk is full" as the one error every caller knows to expect."""
    if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        raise DiskFull("the data disk is full") from error


def run_script(db: Database, sql: str) -> None:
    """Run several statements inside the current transaction.

    ``sqlite3``'s own ``executescript`` commits first, which would split a
    migration into pieces a power cut could separate.
    """
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement: {statement.strip()[:60]}")


def new_id() -> str:
    """A record id made on the hub; sync relies on it being globally unique."""
    return str(uuid.uuid4())


def utcnow() -> str:
    """Now, as the ISO 8601 UTC text every table stores."""
    return datetime.now(UTC).isoformat(timespec="seconds")


#: A migration step: changes the schema inside the transaction :func:`migrate` opens for it.
Migration = Callable[[Database], None]


def sql_files(*paths: Path) -> Migration:
    """A migration step that runs these SQL files, in order."""

    def run(db: Database) -> None:
        for path in paths:
            run_script(db, path.read_text(encoding="utf-8"))

    return run


def applied_migrations(db: Database) -> list[str]:
    if MIGRATIONS_TABLE not in db.table_names():
        return []
    return [r["name"] for r in db.query(f"select name from {MIGRATIONS_TABLE} order by rowid")]


def migrate(db: Database, migrations: list[tuple[str, Migration]]) -> list[str]:
    """Apply the migrations not yet recorded; return the names applied now.

    Each migration runs in its own transaction together with its record, so a
    power cut leaves it either wholly applied or not at all.
    """
    db.conn.execute(
        f"create table if not exists {MIGRATIONS_TABLE} (name text primary key, applied_at text not null)"
    )
    done = set(applied_migrations(db))
    _refuse_unknown(done, migrations)
    applied = []
    for name, fn in migrations:
        if name in done:
            continue
        with transaction(db):
            fn(db)
            db.conn.execute(
                f"insert into {MIGRATIONS_TABLE} (name, applied_at) values (?, ?)", (name, utcnow())
            )
        applied.append(name)
    return applied


def check_schema(db: Database, migrations: list[tuple[str, Migration]]) -> None:
    """Refuse to run against a schema that is not exactly the one *migrations* build."""
    done = applied_migrations(db)
    _refuse_unknown(set(done), migrations)
    missing = [n for n, _ in migrations if n not in done]
    if missing:
        raise StoreError(f"database needs `hub migrate` (missing: {', '.join(missing)})")


def _refuse_unknown(done: set[str], migrations: list[tuple[str, Migration]]) -> None:
    unknown = done - {name for name, _ in migrations}
    if unknown:
        raise StoreError(
            f"database was written by a newer hub (unknown migrations: {', '.join(sorted(unknown))})"
        )


def integrity_check(db: Database) -> None:
    """Run SQLite's own check; raise StoreError with its first complaint."""
    try:
        rows = [r[0] for r in db.conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as e:
        raise StoreError(f"database integrity check failed: {e}") from None
    if rows != ["ok"]:
        raise StoreError("database integrity check failed: " + "; ".join(rows[:3]))
    fk = db.conn.execute("PRAGMA foreign_key_check").fetchall()
    if fk:
        raise StoreError(f"database has {len(fk)} broken references")
