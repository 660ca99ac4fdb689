"""Clerk and admin accounts: scrypt-hashed passwords and login rate limiting.

There is no default account: the first one is made with ``hub user add``.
"""

from __future__ import annotations

import functools
import time

from werkzeug.security import check_password_hash, generate_password_hash

from hub.core.db import new_id, transaction, utcnow
from hub.core.errors import HubError

ROLES = ("clerk", "admin")
MIN_PASSWORD_LENGTH = 8


@functools.cache
def _dummy_hash() -> str:
    """A hash to check against when the name is unknown, so a wrong name and a
    wrong password take the same time."""
    return generate_password_hash("not-a-password", method="scrypt")


class AccountError(HubError):
    pass


def add_user(db, username: str, password: str, role: str = "clerk") -> str:
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise AccountError("user name must be 1-64 characters with no spaces")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    user_id = new_id()
    with transaction(db) as conn:
        if conn.execute("select 1 from users where username = ?", (username,)).fetchone():
            raise AccountError(f"user {username!r} already exists")
        conn.execute(
            "insert into users (id, username, password_hash, role, created_at) values (?, ?, ?, ?, ?)",
            (user_id, username, generate_password_hash(password, method="scrypt"), role, utcnow()),
        )
    return user_id


def set_password(db, username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    with transaction(db) as conn:
        cur = conn.execute(
            "update users set password_hash = ? where username = ?",
            (generate_password_hash(password, method="scrypt"), username),
        )
        if cur.rowcount == 0:
            raise AccountError(f"no user {username!r}")


def get_user(db, user_id: str) -> dict | None:
    rows = list(db.query("select id, username, role, disabled from users where id = ?", [user_id]))
    return rows[0] if rows and not rows[0]["disabled"] else None


def list_users(db) -> list[dict]:
    return list(db.query("select id, username, role, created_at, disabled from users order by username"))


def authenticate(db, username: str, password: str) -> dict | None:
    rows = list(db.query("select * from users where username = ? and disabled = 0", [username]))
    if not rows:
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(rows[0]["password_hash"], password):
        return None
    return {k: rows[0][k] for k in ("id", "username", "role")}


def failures(db, key: str, window_seconds: float, now: float | None = None) -> int:
    now = time.time() if now is None else now
    row = db.conn.execute(
        "select count(*) from login_failures where key = ? and at > ?", (key, now - window_seconds)
    ).fetchone()
    return row[0]


def record_failure(db, keys: list[str], window_seconds: float, now: float | None = None) -> None:
    now = time.time() if now is None else now
    with transaction(db) as conn:
        conn.execute("delete from login_failures where at <= ?", (now - window_seconds,))
        for key in keys:
            conn.execute("insert into login_failures (key, at) values (?, ?)", (key, now))


def clear_failures(db, keys: list[str]) -> None:
    with transaction(db) as conn:
        for key in keys:
            conn.execute("delete from login_failures where key = ?", (key,))


def attempt_login(db, username: str, password: str, address: str, limit: int,
                  window_seconds: float) -> tuple[str, dict | None]:
    """Check a login with rate limiting per address and per name.

    Returns ``("ok", user)``, ``("locked", None)`` while too many recent
    failures stand against the address or the name (even for the right
    password), or ``("wrong", None)``.
    """
    keys = [f"ip:{address}", f"user:{username.strip().lower()}"]
    if any(failures(db, k, window_seconds) >= limit for k in keys):
        return "locked", None
    user = authenticate(db, username.strip(), password)
    if user is None:
        record_failure(db, keys, window_seconds)
        return "wrong", None
    clear_failures(db, [keys[1]])
    return "ok", user
