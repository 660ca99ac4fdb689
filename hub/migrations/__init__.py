"""The hub's tables, as SQL files applied in order. Append new migrations at the end; never edit old ones.

A migration is a name and the SQL files it runs, in one transaction that
:func:`hub.core.db.migrate` opens for it and records under that name. The names are
the ones deployed databases have recorded, so they never change.
"""

from __future__ import annotations

from pathlib import Path

from hub.core.db import Migration, sql_files

HERE = Path(__file__).parent

#: The accounts tables; the central server's migrations run this file too.
ACCOUNTS_SQL = HERE / "accounts.sql"

#: Server-side sessions and login throttling; the central server's migrations run this file too.
SESSIONS_SQL = HERE / "sessions.sql"

#: (name, SQL files), in the order they are applied to a new database.
STEPS: list[tuple[str, tuple[Path, ...]]] = [
    ("0001_core_tables", (HERE / "core.sql", ACCOUNTS_SQL)),
    ("0002_sync", (HERE / "sync.sql",)),
    # The voice tables landed before the announcement tables, so hubs made in between recorded
    # 0004 first; new databases are built in the same order.
    ("0004_voice", (HERE / "voice.sql",)),
    ("0003_announce", (HERE / "announce.sql",)),
    ("0005_rate_limits", (HERE / "limits.sql",)),
    ("0006_sessions", (SESSIONS_SQL,)),
    ("0007_console", (HERE / "console.sql",)),
    ("0008_media_size", (HERE / "media_size.sql",)),
    ("0009_page_versions", (HERE / "pages.sql",)),
    ("0012_urgent", (HERE / "urgent.sql",)),
    ("0013_sync_changes", (HERE / "sync_changes.sql",)),
    ("0014_unread_counts", (HERE / "unread.sql",)),
]

#: What :func:`hub.core.db.migrate` and :func:`hub.core.db.check_schema` take.
MIGRATIONS: list[tuple[str, Migration]] = [(name, sql_files(*files)) for name, files in STEPS]
