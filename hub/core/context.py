"""What every part of a running hub shares: settings, database, media, clock, identity."""

from __future__ import annotations

import secrets
import threading

from hub.core import db as dbmod
from hub.core.clock import Clock
from hub.core.db import transaction
from hub.core.files import make_dir
from hub.core.media import MediaStore


class Context:
    """Settings plus a database connection per thread, the media store and the clock."""

    def __init__(self, settings):
        self.settings = settings
        self._local = threading.local()
        self._hub_id: str | None = None

    @property
    def db(self):
        conn = getattr(self._local, "db", None)
        if conn is None:
            conn = dbmod.connect(self.settings.db_path)
            self._local.db = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "db", None)
        if conn is not None:
            conn.conn.close()
            self._local.db = None

    @property
    def media(self) -> MediaStore:
        return MediaStore(self.db, self.settings.media_dir, self.hub_id)

    @property
    def clock(self) -> Clock:
        return Clock(self.db, set_system_clock=self.settings.set_system_clock)

    @property
    def hub_id(self) -> str:
        if self._hub_id is None:
            self._hub_id = self.settings.hub_id or state_value(self.db, "hub_id", dbmod.new_id)
        return self._hub_id

    def secret_key(self) -> str:
        if self.settings.secret_key:
            return self.settings.secret_key
        return state_value(self.db, "secret_key", lambda: secrets.token_hex(32))


def state_value(db, key: str, make) -> str:
    """Read a value kept in hub_state, making and storing it the first time."""
    with transaction(db) as conn:
        row = conn.execute("select value from hub_state where key = ?", (key,)).fetchone()
        if row:
            return row[0]
        value = make()
        conn.execute("insert into hub_state (key, value) values (?, ?)", (key, value))
        return value


def open_context(settings, migrations: list[tuple[str, dbmod.Migration]], migrate: bool = True) -> Context:
    """Prepare the data directory and database for a daemon; check integrity first.

    *migrations* are applied when *migrate* is true; either way the database must
    have exactly them (``hub.migrations.MIGRATIONS`` for the hub).
    """
    make_dir(settings.media_dir)  # and the data directory, if it is missing
    ctx = Context(settings)
    dbmod.integrity_check(ctx.db)
    if migrate:
        dbmod.migrate(ctx.db, migrations)
    dbmod.check_schema(ctx.db, migrations)
    return ctx
