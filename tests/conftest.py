"""Fixtures every test builds on: settings → context (migrated database) → app → client."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hub.core import settings as settings_mod
from hub.core.context import open_context
from hub.migrations import MIGRATIONS

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture
def make_settings(tmp_path):
    """Settings with a private data directory; keyword arguments override settings."""

    def make(**overrides):
        overrides.setdefault("data_dir", tmp_path / "data")
        return settings_mod.load(config=None, env={}, overrides=overrides)

    return make


@pytest.fixture
def hub_settings(make_settings):
    return make_settings()


@pytest.fixture
def ctx(hub_settings):
    """A migrated store in a temporary data directory."""
    c = open_context(hub_settings, MIGRATIONS)
    yield c
    c.close()


@pytest.fixture
def app(ctx):
    from hub.web import create_app

    return create_app(ctx.settings, context=ctx)


@pytest.fixture
def client(app):
    return app.test_client()


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(client, path: str = "/feedback") -> str:
    """The CSRF token a page hands the browser."""
    html = client.get(path).get_data(as_text=True)
    m = CSRF_RE.search(html)
    assert m, f"no CSRF token on {path}"
    return m.group(1)


@pytest.fixture
def clerk(ctx, client):
    """A logged-in clerk: returns the client; the account is 'clerk1' / 'correct horse'."""
    from hub import accounts

    accounts.add_user(ctx.db, "clerk1", "correct horse", "clerk")
    token = csrf_from(client, "/clerk/login")
    r = client.post("/clerk/login", data={"username": "clerk1", "password": "correct horse",
                                          "csrf_token": token})
    assert r.status_code == 303, r.get_data(as_text=True)
    return client


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.fail(f"{tool} is not installed; `make test` installs it")
    return path


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
