"""The wheel carries the central server's migrations, found through importlib.resources when installed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hub.central import database

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.slow
def test_the_wheel_ships_every_central_migration(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                          "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    names = set(zipfile.ZipFile(next(tmp_path.glob("commune_hub-*.whl"))).namelist())
    files = [n for n, _ in database.migration_files()]
    assert files[:2] == ["c0001_central", "c0002_areas"]
    for name in files:
        assert f"hub/central/migrations/{name}.sql" in names, name
