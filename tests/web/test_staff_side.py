"""The app itself checks which side a request came from: the console answers only the staff side."""

from __future__ import annotations

import pytest

from hub import accounts
from hub.core.context import open_context
from hub.core.settings import SettingsError
from hub.migrations import MIGRATIONS
from hub.net import plan
from hub.web import create_app
from tests.conftest import csrf_from

PASSWORD = "a long pass phrase"


@pytest.fixture
def make_app(make_settings):
    opened = []

    def make(**kw):
        s = make_settings(**kw)
        c = open_context(s, MIGRATIONS)
        opened.append(c)
        accounts.add_user(c.db, "sokha", PASSWORD, "clerk")
        return create_app(s, context=c)

    yield make
    for c in opened:
        c.close()


def through_nginx(app, side: str | None, address: str):
    client = app.test_client()
    headers = {"X-Forwarded-For": address}
    if side:
        headers["X-Hub-Side"] = side
    client.environ_base.update({"REMOTE_ADDR": "127.0.0.1",
                                **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}})
    return client


@pytest.mark.parametrize("side,address,status", [
    ("staff", "192.168.77.5", 200),
    ("staff", "198.51.100.1", 404),  # the uplink, through nginx's staff block
    ("staff", "10.42.0.23", 404),  # a phone's address
    ("villager", "192.168.77.5", 404),
    (None, "192.168.77.5", 404),  # not through nginx's staff block
    ("Staff", "192.168.77.5", 404),
    ("staff", "not-an-address", 404),
])
def test_behind_nginx_the_console_needs_the_staff_block_and_a_staff_address(make_app, side, address, status):
    app = make_app(behind_proxy=True, staff_address="192.168.77.1/24")
    client = through_nginx(app, side, address)
    for path in ("/clerk/login", "/clerk/", "/clerk/notices/"):
        code = client.get(path).status_code
        assert (code == 404) == (status == 404), (path, code)


def test_without_nginx_the_default_staff_side_is_the_hub_itself(make_app):
    app = make_app()
    assert app.test_client().get("/clerk/login").status_code == 200  # 127.0.0.1
    for address in ("10.42.0.23", "198.51.100.1", "192.168.1.20"):
        c = app.test_client()
        c.environ_base.update({"REMOTE_ADDR": address, "HTTP_X_HUB_SIDE": "staff"})  # a forged header
        assert c.get("/clerk/login").status_code == 404, address
    assert app.test_client().get("/").status_code in (200, 302)  # the portal is for everyone


def test_a_logged_in_cookie_does_not_open_the_console_from_the_villager_side(make_app):
    app = make_app(behind_proxy=True, staff_address="192.168.77.1/24")
    clerk = through_nginx(app, "staff", "192.168.77.5")
    token = csrf_from(clerk, "/clerk/login")
    r = clerk.post("/clerk/login", data={"username": "sokha", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303
    assert clerk.get("/clerk/").status_code == 200
    phone = through_nginx(app, "villager", "10.42.0.23")
    phone.set_cookie("hub_session", clerk.get_cookie("hub_session").value)
    assert phone.get("/clerk/").status_code == 404


def test_staff_networks_defaults_to_the_staff_lan_and_wifi(make_settings):
    s = make_settings(staff_address="192.168.77.1/24", staff_ssid="Staff", staff_passphrase="a long passphrase")
    nets = [str(n) for n in plan.staff_networks(s)]
    assert "192.168.77.0/24" in nets and "10.43.0.0/24" in nets and "127.0.0.0/8" in nets
    assert not any(n.startswith("10.42.") for n in nets)
    assert plan.staff_addresses(s) == ["192.168.77.1", "10.43.0.1"]
    assert [str(n) for n in plan.staff_networks(make_settings(staff_networks=["172.16.0.0/12"]))] == ["172.16.0.0/12"]


@pytest.mark.parametrize("value", ["192.168.77.1", "not an address", "10.42.0.5/24", "192.168.77.1/31"])
def test_a_bad_staff_address_is_refused_naming_the_setting(make_settings, value):
    with pytest.raises(SettingsError, match="staff_address"):
        plan.validate(make_settings(staff_address=value))
