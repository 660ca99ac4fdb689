"""Passwords: 12 characters or more, not the user's name, not a common one; refused in Khmer and English."""

from __future__ import annotations

import pytest

from hub import accounts, passwords
from hub.core import db as dbmod
from hub.migrations import MIGRATIONS
from tests.test_cli import hub

REFUSED = [
    ("short pass", "sokha", "at least 12"),
    ("elevenchars", "sokha", "at least 12"),
    ("sokhasokha12", "sokha", "user name"),
    ("my name is SOKHA!", "sokha", "user name"),
    ("so-kha-2026-hello", "so.kha", "user name"),
    ("password1234", "dara", "too common"),
    ("Password1234", "dara", "too common"),
    ("Password 2026!", "dara", "too common"),
    ("123456789012", "dara", "too common"),
    ("qwertyuiop12", "dara", "too common"),
    ("cambodia2026", "dara", "too common"),
    ("aaaaaaaaaaaaaaaa", "dara", "too common"),
    ("abababababababab", "dara", "too common"),
    ("x" * 2000, "dara", "at most"),
]


@pytest.mark.parametrize("password,name,why", REFUSED)
def test_weak_passwords_are_refused(password, name, why):
    with pytest.raises(passwords.PasswordRefused) as e:
        passwords.check(password, name)
    assert why in str(e.value)


@pytest.mark.parametrize("password", ["correct horse battery", "a long pass phrase", "ផ្ទះខ្ញុំនៅភូមិថ្មី២០២៦",
                                      "clerk-pass-7391", "mango rice river 44"])
def test_good_passwords_pass(password):
    passwords.check(password, "sokha")


def test_the_list_is_bundled_plain_text_of_a_few_thousand():
    assert passwords.COMMON_FILE.suffix == ".txt"
    common = passwords.common_passwords()
    assert 500 < len(common) < 10_000
    assert all(p == p.lower() for p in common)


def test_the_message_is_khmer_then_english():
    with pytest.raises(passwords.PasswordRefused) as e:
        passwords.check("short", "sokha")
    km, en = str(e.value).split(" / ")
    assert any("\u1780" <= c <= "\u17ff" for c in km), km
    assert en == "The password must be at least 12 characters long."


def test_accounts_refuse_weak_passwords_and_store_nothing(tmp_path):
    db = dbmod.connect(tmp_path / "hub.db")
    dbmod.migrate(db, MIGRATIONS)
    for password in ("long enough", "password1234", "sokha is me 123"):
        with pytest.raises(accounts.AccountError):
            accounts.add_user(db, "sokha", password)
    assert accounts.list_users(db) == []
    accounts.add_user(db, "sokha", "mango rice river 44")
    with pytest.raises(accounts.AccountError):
        accounts.set_password(db, "sokha", "iloveyou1234")
    assert accounts.authenticate(db, "sokha", "mango rice river 44")


def test_hub_user_add_and_passwd_say_why_in_both_languages(tmp_path):
    out = hub(["user", "add", "sokha"], tmp_path, stdin="password1234\n")
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert "too common" in out.stderr and any("\u1780" <= c <= "\u17ff" for c in out.stderr)
    assert hub(["user", "add", "sokha"], tmp_path, stdin="mango rice river 44\n").returncode == 0
    out = hub(["user", "passwd", "sokha"], tmp_path, stdin="sokha-2026-ok!\n")
    assert out.returncode == 1 and "user name" in out.stderr


def test_hub_provision_refuses_a_weak_first_clerk_password_before_writing(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text('hub_name = "test"\n')
    img = tmp_path / "card.img"
    img.write_bytes(b"\0" * 1024)
    out = hub(["provision", "--image", str(img), "--config", str(config), "--clerk", "sokha"], tmp_path,
              stdin="sokha123456789\n")
    assert out.returncode == 1 and "user name" in out.stderr, out.stderr
    assert img.read_bytes() == b"\0" * 1024


def test_the_list_is_installed_with_the_package():
    import fnmatch
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    globs = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]["hub"]
    assert any(fnmatch.fnmatch(passwords.COMMON_FILE.name, g) for g in globs)
