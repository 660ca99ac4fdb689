"""The `hub` command as a technician uses it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HUB = [sys.executable, "-m", "hub.cli"]


def hub(args, tmp_path, stdin: str | None = None, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    e.update({"HUB_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run(HUB + args, input=stdin, capture_output=True, text=True, env=e, cwd=tmp_path,
                          timeout=120)


def test_user_add_reads_the_password_from_stdin(tmp_path):
    out = hub(["user", "add", "sokha", "--role", "admin"], tmp_path, stdin="a long password\n")
    assert out.returncode == 0, out.stderr
    listing = hub(["user", "list"], tmp_path)
    assert re.search(r"^sokha\tadmin\t", listing.stdout, re.M)
    from hub import accounts
    from hub.core import db

    conn = db.connect(tmp_path / "data" / "hub.db")
    assert accounts.authenticate(conn, "sokha", "a long password")["role"] == "admin"
    assert accounts.authenticate(conn, "sokha", "wrong") is None


def test_user_add_refuses_short_or_missing_passwords_in_one_line(tmp_path):
    out = hub(["user", "add", "sokha"], tmp_path, stdin="short\n")
    assert out.returncode == 1 and out.stderr.startswith("hub: error: ") and out.stderr.count("\n") == 1
    assert "at least 12 characters" in out.stderr
    out = hub(["user", "add", "sokha"], tmp_path, stdin="")
    assert out.returncode == 1 and "no password" in out.stderr


def test_migrate_records_and_is_idempotent(tmp_path):
    first = hub(["migrate"], tmp_path)
    assert first.returncode == 0 and "applied 0001_core_tables" in first.stdout
    again = hub(["migrate"], tmp_path)
    assert again.returncode == 0 and "up to date" in again.stdout


def test_a_corrupt_database_is_reported_in_one_line(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "hub.db").write_bytes(b"this is not a database" * 200)
    out = hub(["migrate"], tmp_path)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0


def test_settings_lists_every_setting_without_secrets(tmp_path):
    out = hub(["settings"], tmp_path, HUB_CENTRAL_TOKEN="s3cret-token")
    assert out.returncode == 0
    assert "central_token = '***'" in out.stdout and "s3cret-token" not in out.stdout


def test_every_command_is_documented(tmp_path):
    """Each subcommand has help text and appears in the README."""
    from hub.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    readme = (ROOT / "README.md").read_text()
    helps = {a.dest: a.help for a in sub._choices_actions}
    for name in sub.choices:
        assert helps.get(name), f"`hub {name}` has no help text"
        assert f"hub {name}" in readme, f"README.md does not mention `hub {name}`"
