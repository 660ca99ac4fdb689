"""Connectivity checks: redirected to the portal until the welcome page is passed."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_from

PROBES = [
    ("connectivitycheck.gstatic.com", "/generate_204", 204, ""),
    ("clients3.google.com", "/generate_204", 204, ""),
    ("www.google.com", "/gen_204", 204, ""),
    ("captive.apple.com", "/hotspot-detect.html", 200, "<BODY>Success</BODY>"),
    ("www.msftconnecttest.com", "/connecttest.txt", 200, "Microsoft Connect Test"),
    ("www.msftncsi.com", "/ncsi.txt", 200, "Microsoft NCSI"),
    ("detectportal.firefox.com", "/success.txt", 200, "success\n"),
]


def accept_welcome(client):
    token = csrf_from(client, "/welcome")
    r = client.post("/welcome", data={"csrf_token": token})
    assert r.status_code == 303


@pytest.mark.parametrize("host,path,status,body", PROBES)
def test_probe_redirects_before_welcome_and_answers_after(client, host, path, status, body):
    r = client.get(path, headers={"Host": host})
    assert r.status_code == 302
    assert r.headers["Location"] == "http://127.0.0.1:8080/welcome"
    accept_welcome(client)
    r = client.get(path, headers={"Host": host})
    assert r.status_code == status
    text = r.get_data(as_text=True)
    assert (text == body) if status == 204 or body.endswith("\n") or "Microsoft" in body else (body in text)


def test_apple_success_only_after_welcome(client):
    r = client.get("/hotspot-detect.html", headers={"Host": "captive.apple.com"})
    assert "Success" not in r.get_data(as_text=True)
    accept_welcome(client)
    r = client.get("/hotspot-detect.html", headers={"Host": "captive.apple.com"})
    assert r.get_data(as_text=True) == "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"


def test_any_foreign_host_goes_to_the_portal_even_after_welcome(client):
    accept_welcome(client)
    r = client.get("/some/page", headers={"Host": "example.com"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/welcome")


def test_own_hosts_are_served(client):
    for host in ("127.0.0.1:8080", "hub.local", "10.42.0.1"):
        assert client.get("/", headers={"Host": host}).status_code == 200


def test_portal_url_setting_sets_the_redirect_target(make_settings):
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS
    from hub.web import create_app

    s = make_settings(portal_url="http://10.42.0.1/")
    client = create_app(s, context=open_context(s, MIGRATIONS)).test_client()
    r = client.get("/generate_204", headers={"Host": "connectivitycheck.gstatic.com"})
    assert r.headers["Location"] == "http://10.42.0.1/welcome"


def test_rfc8908_api(client):
    r = client.get("/api/captive")
    assert r.content_type == "application/captive+json"
    assert r.json["captive"] is True
    assert r.json["user-portal-url"].endswith("/welcome")
    accept_welcome(client)
    assert client.get("/api/captive").json["captive"] is False


def test_welcome_grants_no_privilege(client):
    accept_welcome(client)
    r = client.get("/clerk/")
    assert r.status_code == 302 and "/clerk/login" in r.headers["Location"]
