"""One set of SQL migrations for both backends: the same tables and columns, applied once, newer ones refused."""

from __future__ import annotations

import pytest

from hub.central import database
from hub.central.store import CentralStore
from hub.core.db import StoreError


def columns(store) -> dict[str, list[str]]:
    if store.backend == database.POSTGRESQL:
        rows = store.db.conn.execute(
            "select table_name, column_name from information_schema.columns where table_schema = 'public'"
            " order by table_name, ordinal_position").fetchall()
    else:
        tables = [r[0] for r in store.db.conn.execute(
            "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name")]
        rows = [(t, r[1]) for t in tables for r in store.db.conn.execute(f"pragma table_info({t})")]
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def test_both_backends_get_the_same_schema(tmp_path, postgres):
    url = postgres.create_database()
    lite, pg = CentralStore.open(tmp_path / "a"), CentralStore.open(tmp_path / "b", url)
    try:
        assert columns(lite) == columns(pg)
        assert {"hubs", "records", "areas", "officer_scopes", "publication_targets", "users"} <= set(columns(pg))
        names = [n for n, _ in database.migration_files()]
        assert database.applied(lite.db) == database.applied(pg.db) == names
        assert database.migrate(pg.db) == [] and database.migrate(lite.db) == [], "applied once"
    finally:
        lite.close()
        pg.close()
        postgres.drop_database(url)


def test_a_database_from_a_newer_version_is_refused(tmp_path, database_url):
    store = CentralStore.open(tmp_path / "c", database_url)
    store.db.conn.execute("insert into _migrations (name, applied_at) values ('c9999_future', '2027-01-01')")
    store.close()
    with pytest.raises(StoreError, match="c9999_future"):
        CentralStore.open(tmp_path / "c", database_url)


def test_a_refused_write_leaves_no_open_transaction(tmp_path, database_url):
    """An error inside a transaction rolls it back on both backends; the next write works."""
    from hub.central.store import CentralError

    store = CentralStore.open(tmp_path / "d", database_url)
    try:
        store.add_hub("basak", None, "120101")
        with pytest.raises(CentralError, match="already registered"):
            store.add_hub("basak", None, "120101")
        assert not store.db.conn.in_transaction
        store.add_hub("phsar", None, "120201")
        assert store.hub_count() == 2
    finally:
        store.close()


def test_a_lost_postgresql_connection_is_opened_again(tmp_path, postgres):
    import psycopg

    url = postgres.create_database()
    store = CentralStore.open(tmp_path / "e", url)
    try:
        pid = store.db.conn.execute("select pg_backend_pid()").fetchone()[0]
        with psycopg.connect(postgres.url(), autocommit=True) as admin:
            admin.execute("select pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            store.hub_count()
        assert store.hub_count() == 0, "the next call has a new connection"
    finally:
        store.close()
        postgres.drop_database(url)
