"""Settings: declared once, read from TOML and HUB_<NAME>, bad values named in one line."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from hub.core import settings
from hub.core.settings import SETTINGS, SettingsError

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_load_without_a_file(tmp_path):
    s = settings.load(config=None, env={})
    assert s.port == 8080 and s.data_dir == Path("var") and s.default_language == "km"


def test_toml_file_then_environment(tmp_path):
    cfg = tmp_path / "hub.toml"
    cfg.write_text('port = 9000\ndata_dir = "/srv/hub"\nhostnames = ["a.local"]\n')
    s = settings.load(cfg, env={})
    assert s.port == 9000 and s.data_dir == Path("/srv/hub") and s.hostnames == ["a.local"]
    s = settings.load(cfg, env={"HUB_PORT": "18080", "HUB_DATA_DIR": str(tmp_path)})
    assert s.port == 18080 and s.data_dir == tmp_path


@pytest.mark.parametrize("env,name", [
    ({"HUB_PORT": "eighty"}, "HUB_PORT"),
    ({"HUB_PORT": "70000"}, "port"),
    ({"HUB_VOLUME": "2"}, "volume"),
    ({"HUB_BEHIND_PROXY": "maybe"}, "HUB_BEHIND_PROXY"),
    ({"HUB_DEFAULT_LANGUAGE": "fr"}, "HUB_DEFAULT_LANGUAGE"),
    ({"HUB_QUIET_HOURS_START": "25:00"}, "quiet_hours_start"),
    ({"HUB_TIMEZONE": "Mars/Olympus"}, "timezone"),
])
def test_bad_value_names_the_setting(env, name):
    with pytest.raises(SettingsError) as e:
        settings.load(config=None, env=env)
    assert name in str(e.value) and "\n" not in str(e.value)


def test_bad_type_in_toml_names_the_setting(tmp_path):
    cfg = tmp_path / "hub.toml"
    cfg.write_text('port = "8080"\n')
    with pytest.raises(SettingsError, match="setting port"):
        settings.load(cfg, env={})


def test_unknown_key_gets_a_warning(tmp_path, caplog):
    cfg = tmp_path / "hub.toml"
    cfg.write_text('prot = 8080\n')
    with caplog.at_level(logging.WARNING):
        settings.load(cfg, env={})
    assert "unknown setting 'prot'" in caplog.text


def test_bad_value_stops_the_program_with_one_line(tmp_path):
    env = {"HUB_PORT": "eighty", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "hub.cli", "settings"], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and "HUB_PORT" in out.stderr


def test_every_setting_is_declared_with_a_description():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    for s in SETTINGS:
        assert s.description.strip(), s.name
        assert isinstance(s.default, s.type) or (s.type is float and isinstance(s.default, int)), s.name


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in readme]
    assert not missing, f"README.md does not document: {missing} (run `hub settings --markdown`)"
    assert settings.markdown_table() in readme, "README settings table is stale: `make docs`"
