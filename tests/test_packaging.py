"""The wheel the SD-card image installs carries everything the hub needs at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_the_wheel_ships_templates_font_catalogue_and_audio(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                          "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next(tmp_path.glob("commune_hub-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    data = next(n.split("/")[0] for n in names if n.endswith(".data/data/share/hub/audio/chime-start.wav"))
    for needed in (
        "hub/web/templates/base.html",
        "hub/web/templates/clerk/base.html",
        "hub/web/static/fonts/NotoSansKhmer-Regular.khmer.woff2",
        "hub/web/static/hub.css",
        "hub/translations/km/LC_MESSAGES/messages.po",
        f"{data}/data/share/hub/audio/chime-end.wav",
        f"{data}/data/share/hub/audio/prompts/manifest.json",
        f"{data}/data/share/hub/audio/prompts/digit_0.wav",
        f"{data}/data/share/hub/audio/demo/meeting-notice.ogg",
    ):
        assert needed in names, needed


def test_the_wheel_ships_every_migration():
    """An installed hub builds its tables from hub/migrations/*.sql: each one is package data."""
    import fnmatch
    import tomllib

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["hub"]
    sql = sorted((ROOT / "hub" / "migrations").glob("*.sql"))
    assert sql
    for path in sql:
        name = path.relative_to(ROOT / "hub").as_posix()
        assert any(fnmatch.fnmatch(name, g) for g in globs), name
