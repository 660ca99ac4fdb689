"""Clerk and admin accounts: scrypt-hashed passwords, server-side sessions and login throttling.

There is no default account: the first one is made with ``hub user add``.
The hub and the central server share this module and its tables
(``hub/migrations/accounts.sql`` and ``sessions.sql``), on SQLite and on
PostgreSQL, so every statement here is one both speak.

- A session is a random token in the signed cookie; the database keeps its
  SHA-256 and expiry. Logging out ends that session; a new password or
  ``hub user disable`` ends every session of the account.
- A login attempt is counted as a failure, in one transaction, before the
  password is checked, so requests racing each other cannot all slip under
  the limit. Failures are counted per name *and* address (a wrong password
  typed from one place never locks the clerk out elsewhere) and per address
  across names; past the limit the wait doubles with each new failure.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time

from werkzeug.security import check_password_hash, generate_password_hash

from hub import passwords
from hub.core.db import new_id, transaction, utcnow
from hub.core.errors import HubError

ROLES = ("clerk", "admin")
MIN_PASSWORD_LENGTH = passwords.MIN_LENGTH
MAX_NAME = 64
#: Stored addresses are cut to this (an IPv6 address with a zone fits).
MAX_ADDRESS = 64
#: An address may fail this many times the limit, over all names, before it waits.
ADDRESS_FACTOR = 4
#: Failures older than this are forgotten (unless a wait is still running).
FORGET_SECONDS = 24 * 3600
#: The longest wait a run of failures can earn.
MAX_WAIT_SECONDS = 24 * 3600


@functools.cache
def _dummy_hash() -> str:
    """A hash to check against when the name is unknown, so a wrong name and a
    wrong password take the same time."""
    return generate_password_hash("not-a-password", method="scrypt")


class AccountError(HubError):
    pass


def check_password(password: str, username: str) -> None:
    """Raise :class:`AccountError` (Khmer, then English) unless the password rules allow it."""
    try:
        passwords.check(password, username)
    except passwords.PasswordRefused as e:
        raise AccountError(str(e)) from None


def _check_name(username: str) -> str:
    username = username.strip()
    if (not username or len(username) > MAX_NAME or any(c.isspace() for c in username)
            or not username.isprintable()):
        raise AccountError("user name must be 1-64 printable characters with no spaces")
    return username


def add_user(db, username: str, password: str, role: str = "clerk") -> str:
    username = _check_name(username)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    check_password(password, username)
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
    """A new password; every session of the account ends."""
    check_password(password, username)
    with transaction(db) as conn:
        cur = conn.execute(
            "update users set password_hash = ? where username = ?",
            (generate_password_hash(password, method="scrypt"), username),
        )
        if cur.rowcount == 0:
            raise AccountError(f"no user {username!r}")
        conn.execute("delete from user_sessions where user_id in (select id from users where username = ?)",
                     (username,))


def set_disabled(db, username: str, disabled: bool = True) -> None:
    """Disable (or enable again) an account; disabling ends its sessions at once."""
    with transaction(db) as conn:
        cur = conn.execute("update users set disabled = ? where username = ?", (1 if disabled else 0, username))
        if cur.rowcount == 0:
            raise AccountError(f"no user {username!r}")
        if disabled:
            conn.execute("delete from user_sessions where user_id in (select id from users where username = ?)",
                         (username,))


def get_user(db, user_id: str) -> dict | None:
    rows = list(db.query("select id, username, role, disabled from users where id = ?", [user_id]))
    return rows[0] if rows and not rows[0]["disabled"] else None


def list_users(db) -> list[dict]:
    return list(db.query("select id, username, role, created_at, disabled from users order by username"))


def authenticate(db, username: str, password: str) -> dict | None:
    if len(username) > MAX_NAME or not username.isprintable() or len(password) > passwords.MAX_LENGTH:
        check_password_hash(_dummy_hash(), password[:passwords.MAX_LENGTH])
        return None
    rows = list(db.query("select * from users where username = ? and disabled = 0", [username]))
    if not rows:
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(rows[0]["password_hash"], password):
        return None
    return {k: rows[0][k] for k in ("id", "username", "role")}


# --- sessions ------------------------------------------------------------------------------

def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def start_session(db, user_id: str, hours: float, now: float | None = None) -> str:
    """A new session for *user_id*; returns the token the cookie carries (only its hash is kept)."""
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    with transaction(db) as conn:
        conn.execute("delete from user_sessions where expires_at <= ?", (now,))
        conn.execute("insert into user_sessions (id, user_id, created_at, expires_at) values (?, ?, ?, ?)",
                     (_session_id(token), user_id, utcnow(), now + hours * 3600))
    return token


def session_user(db, token: str | None, now: float | None = None) -> dict | None:
    """The account a session token belongs to, while the session lasts and the account is enabled."""
    if not token or not isinstance(token, str) or len(token) > 100:
        return None
    now = time.time() if now is None else now
    rows = list(db.query(
        "select u.id, u.username, u.role, u.disabled from user_sessions s join users u on u.id = s.user_id"
        " where s.id = ? and s.expires_at > ? and u.disabled = 0", [_session_id(token), now]))
    return rows[0] if rows else None


def end_session(db, token: str | None) -> None:
    if token and isinstance(token, str):
        with transaction(db) as conn:
            conn.execute("delete from user_sessions where id = ?", (_session_id(token),))


def end_sessions(db, user_id: str) -> None:
    with transaction(db) as conn:
        conn.execute("delete from user_sessions where user_id = ?", (user_id,))


def session_count(db, user_id: str, now: float | None = None) -> int:
    now = time.time() if now is None else now
    row = db.conn.execute("select count(*) from user_sessions where user_id = ? and expires_at > ?",
                          (user_id, now)).fetchone()
    return row[0]


# --- login throttling -------------------------------------------------------------------------

_COUNT = (
    "insert into login_throttle (key, failures, last_at, locked_until) values (?, 1, ?, 0)"
    " on conflict (key) do update set"
    " failures = case when login_throttle.last_at < ? then 1 else login_throttle.failures + 1 end,"
    " last_at = excluded.last_at"
    " where login_throttle.locked_until <= excluded.last_at"
    " returning failures"
)


def throttle_keys(username: str, address: str) -> list[tuple[str, int]]:
    """(key, factor of the limit) for one attempt: the name with the address, and the address."""
    name = "".join(c if c.isprintable() else "?" for c in username.strip().lower()[:MAX_NAME + 1])
    addr = "".join(c if c.isprintable() else "?" for c in (address or "unknown")[:MAX_ADDRESS])
    return [(f"name+addr:{name}|{addr}", 1), (f"addr:{addr}", ADDRESS_FACTOR)]


def wait_after(failures: int, limit: int, window_seconds: float) -> float:
    """How long a key waits after its *failures*-th failure: nothing below the limit, then doubling."""
    if failures < limit:
        return 0.0
    return float(min(MAX_WAIT_SECONDS, window_seconds * 2 ** min(failures - limit, 20)))


def attempt_login(db, username: str, password: str, address: str, limit: int,
                  window_seconds: float, now: float | None = None) -> tuple[str, dict | None, float]:
    """Check a login, throttled per name and address and per address.

    Returns ``("ok", user, 0)``, ``("locked", None, seconds)`` while a wait
    stands against the name from this address, or against the address (even
    for the right password), or ``("wrong", None, 0)``.
    """
    now = time.time() if now is None else now
    keys = throttle_keys(username, address)
    wait = 0.0
    with transaction(db) as conn:
        for key, _ in keys:
            row = conn.execute("select locked_until from login_throttle where key = ?", (key,)).fetchone()
            if row and row[0] > now:
                wait = max(wait, row[0] - now)
        if wait == 0:
            # This attempt is a failure until its password proves otherwise.
            for key, factor in keys:
                row = conn.execute(_COUNT, (key, now, now - FORGET_SECONDS)).fetchone()
                if row is None:  # another server locked it a moment ago
                    wait = max(wait, 1.0)
                    continue
                lock = wait_after(row[0], limit * factor, window_seconds)
                if lock:
                    conn.execute("update login_throttle set locked_until = ? where key = ?", (now + lock, key))
    if wait > 0:
        return "locked", None, wait
    user = authenticate(db, username.strip(), password)
    if user is None:
        return "wrong", None, 0.0
    (pair, _), (addr, factor) = keys
    with transaction(db) as conn:
        conn.execute("delete from login_throttle where key = ?", (pair,))
        conn.execute(
            "update login_throttle set"
            " locked_until = case when failures - 1 < ? then 0 else locked_until end,"
            " failures = case when failures > 0 then failures - 1 else 0 end where key = ?",
            (limit * factor, addr))
    return "ok", user, 0.0
