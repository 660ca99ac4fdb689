"""Clerk sessions end at logout, a new password and `hub user disable`; logins are throttled fairly."""

from __future__ import annotations

import pytest

from hub import accounts
from tests.conftest import csrf_from
from tests.test_cli import hub

PASSWORD = "a long pass phrase"


def log_in(client, name: str = "sokha", password: str = PASSWORD, **kw):
    token = csrf_from(client, "/clerk/login")
    return client.post("/clerk/login", data={"username": name, "password": password, "csrf_token": token}, **kw)


def copy_of_cookie(app, client):
    """A second browser holding the same cookie (as a thief who copied it would)."""
    other = app.test_client()
    cookie = client.get_cookie("hub_session")
    other.set_cookie("hub_session", cookie.value)
    return other


@pytest.fixture
def sokha(ctx):
    accounts.add_user(ctx.db, "sokha", PASSWORD, "clerk")


def test_a_cookie_copied_before_logout_no_longer_works_after_it(app, client, sokha):
    assert log_in(client).status_code == 303
    thief = copy_of_cookie(app, client)
    assert thief.get("/clerk/").status_code == 200  # the copy works while the session lasts
    token = csrf_from(client, "/clerk/")
    assert client.post("/clerk/logout", data={"csrf_token": token}).status_code == 303
    r = thief.get("/clerk/")
    assert r.status_code == 302 and "/clerk/login" in r.headers["Location"]


def test_a_new_password_ends_every_session(app, ctx, client, sokha):
    log_in(client)
    thief = copy_of_cookie(app, client)
    accounts.set_password(ctx.db, "sokha", "another long phrase")
    for c in (client, thief):
        assert c.get("/clerk/").status_code == 302


def test_hub_user_disable_ends_sessions_and_logins(app, ctx, client, sokha, tmp_path):
    log_in(client)
    assert client.get("/clerk/").status_code == 200
    out = hub(["user", "disable", "sokha"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert client.get("/clerk/").status_code == 302
    assert log_in(client).status_code == 401
    assert "(disabled)" in hub(["user", "list"], tmp_path).stdout
    assert hub(["user", "enable", "sokha"], tmp_path).returncode == 0
    assert log_in(client).status_code == 303
    assert hub(["user", "disable", "nobody-here"], tmp_path).returncode == 1


def test_login_rotates_the_session_and_logout_ends_only_its_own(app, ctx, client, sokha):
    before = client.get_cookie("hub_session")
    csrf_from(client, "/clerk/login")
    before = client.get_cookie("hub_session").value
    log_in(client)
    after = client.get_cookie("hub_session").value
    assert after != before
    laptop = app.test_client()
    log_in(laptop)
    user_id = accounts.list_users(ctx.db)[0]["id"]
    assert accounts.session_count(ctx.db, user_id) == 2
    token = csrf_from(client, "/clerk/")
    client.post("/clerk/logout", data={"csrf_token": token})
    assert laptop.get("/clerk/").status_code == 200
    assert accounts.session_count(ctx.db, user_id) == 1


def test_a_failed_login_stores_only_bounded_fields(ctx, client, sokha):
    huge = "x" * 2_000_000
    token = csrf_from(client, "/clerk/login")
    r = client.post("/clerk/login", data={"username": huge, "password": huge, "csrf_token": token})
    assert r.status_code == 401
    r = client.post("/clerk/login", data={"username": "a\x00b\x1b[31m", "password": "x", "csrf_token": token})
    assert r.status_code == 401
    tables = [t for t in ("login_throttle", "login_failures") if t in ctx.db.table_names()]
    longest = max(len(r[0]) for t in tables for r in ctx.db.execute(f"select key from {t}").fetchall())
    assert longest <= 150, longest
    keys = [r[0] for t in tables for r in ctx.db.execute(f"select key from {t}").fetchall()]
    assert not any("\x00" in k or "\x1b" in k for k in keys), keys


def staff_app(make_settings):
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS
    from hub.web import create_app

    s = make_settings(staff_networks=["10.20.0.0/16", "127.0.0.0/8"], login_attempts=3)
    c = open_context(s, MIGRATIONS)
    return create_app(s, context=c), c


def test_one_address_cannot_lock_the_clerk_out_from_another(make_settings):
    app, c = staff_app(make_settings)
    try:
        accounts.add_user(c.db, "sokha", PASSWORD, "clerk")
        attacker = app.test_client()
        attacker.environ_base["REMOTE_ADDR"] = "10.20.0.66"
        codes = [log_in(attacker, password=f"guess number {i}").status_code for i in range(5)]
        assert codes == [401, 401, 401, 429, 429], codes
        assert log_in(attacker).status_code == 429  # the right password waits there too
        clerk = app.test_client()
        clerk.environ_base["REMOTE_ADDR"] = "10.20.0.5"
        assert log_in(clerk).status_code == 303
    finally:
        c.close()


def test_an_address_trying_many_names_waits_too(make_settings):
    app, c = staff_app(make_settings)
    try:
        attacker = app.test_client()
        attacker.environ_base["REMOTE_ADDR"] = "10.20.0.66"
        codes = [log_in(attacker, name=f"name{i}", password="guess").status_code for i in range(14)]
        assert codes[:12] == [401] * 12 and codes[12:] == [429, 429], codes
    finally:
        c.close()


def test_the_wait_doubles_with_each_failure_past_the_limit(ctx):
    accounts.add_user(ctx.db, "sokha", PASSWORD, "clerk")
    t, window = 1_000_000.0, 900
    for i in range(3):
        assert accounts.attempt_login(ctx.db, "sokha", "bad", "10.1.1.1", 3, window, now=t + i)[0] == "wrong"
    outcome, _, wait = accounts.attempt_login(ctx.db, "sokha", PASSWORD, "10.1.1.1", 3, window, now=t + 3)
    assert outcome == "locked" and window - 5 < wait <= window
    t += 2 + window + 1  # the first wait is over: one more failure earns twice as long
    assert accounts.attempt_login(ctx.db, "sokha", "bad", "10.1.1.1", 3, window, now=t)[0] == "wrong"
    outcome, _, wait = accounts.attempt_login(ctx.db, "sokha", PASSWORD, "10.1.1.1", 3, window, now=t + 1)
    assert outcome == "locked" and 2 * window - 5 < wait <= 2 * window
    t += 2 * window + 1
    assert accounts.attempt_login(ctx.db, "sokha", "bad", "10.1.1.1", 3, window, now=t)[0] == "wrong"
    assert accounts.attempt_login(ctx.db, "sokha", PASSWORD, "10.1.1.1", 3, window, now=t + 1)[2] > 3 * window
    # The right password, once the wait is over, starts the count again.
    t += 4 * window + 1
    assert accounts.attempt_login(ctx.db, "sokha", PASSWORD, "10.1.1.1", 3, window, now=t)[0] == "ok"
    assert accounts.attempt_login(ctx.db, "sokha", "bad", "10.1.1.1", 3, window, now=t + 1)[0] == "wrong"
