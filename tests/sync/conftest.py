"""Fixtures for the sync tests: a central server process, a hub store, a faulty proxy."""

from __future__ import annotations

import pytest

from hub.core import settings as settings_mod
from hub.core.context import open_context
from hub.migrations import MIGRATIONS
from tests.sync.procs import Central, FaultProxy, base_env
from tests.sync.standin import StandIn


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server for the session; each test that wants it gets its own database."""
    from tests.sync.pg import PostgresServer

    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    """The central server's database, once on each backend: "" for SQLite, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield ""
        return
    server = request.getfixturevalue("postgres")
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def central(tmp_path, database_url):
    c = Central(tmp_path / "central", database_url=database_url)
    yield c
    c.stop()


class Hub:
    """A hub's data directory: an in-process context to make records, env for `hub sync once`."""

    def __init__(self, data_dir, url: str, token: str, **settings):
        self.data_dir = data_dir
        # No scheduled backup unless a test asks: its bytes would count in every test's wire figures.
        self.settings_values = {"central_url": url, "central_token": token,
                                "sync_timeout_seconds": 3, "backup_interval_hours": 0, **settings}
        self.ctx = open_context(settings_mod.load(config=None, env={}, overrides={
            "data_dir": data_dir, **self.settings_values}), MIGRATIONS)

    @property
    def env(self) -> dict:
        return base_env(self.data_dir, **self.settings_values)

    def point_at(self, url: str) -> None:
        self.settings_values["central_url"] = url


@pytest.fixture
def make_hub(tmp_path):
    made = []

    def make(url: str, token: str, name: str = "hub", **settings) -> Hub:
        h = Hub(tmp_path / name, url, token, **settings)
        made.append(h)
        return h

    yield make
    for h in made:
        h.ctx.close()


@pytest.fixture
def proxy(central):
    p = FaultProxy(central.port)
    yield p
    p.close()


@pytest.fixture
def standin():
    """Local HTTP stand-ins (Telegram's Bot API, a captive portal), closed at the end."""
    made = []

    def make(handler):
        s = StandIn(handler)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
