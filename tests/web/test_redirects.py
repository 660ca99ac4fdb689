"""?next= on the language switch and the console's login goes only to the app's own pages."""

from __future__ import annotations

import pytest

from hub import accounts
from tests.conftest import csrf_from

#: Each of these, sent as ?next=, would take a browser off the hub (or is no page of it).
HOSTILE = [
    "/%09/evil.example/phish",  # the issue's example: the tab is dropped, leaving //evil.example
    "/\t/evil.example/",
    "/%0a/evil.example/",
    "/%0d%0a/evil.example/",
    "/%00/evil.example/",
    "//evil.example/",
    "/%2F/evil.example/",
    "/%252F/evil.example/",
    "/\\evil.example/",
    "/%5Cevil.example/",
    "\\\\evil.example/",
    "https://evil.example/",
    "http:/evil.example/",
    "javascript:alert(1)",
    "evil.example",
    "/\u2028/evil.example/",
    "/\u200e/evil.example/",
    "/no-such-page-here",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_language_switch_never_leaves_the_hub(client, target):
    r = client.get("/lang/en", query_string={"next": target})
    assert r.status_code == 303
    assert r.headers["Location"] == "/", (target, r.headers["Location"])


def test_the_issues_exact_example(client):
    r = client.get("/lang/en?next=/%09/evil.example/...")
    assert r.status_code == 303
    assert r.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/", "/feedback", "/receipt", "/clerk/", "/notice/x?lang=en", "/notice/%E1%9E%80"])
def test_language_switch_goes_back_to_the_apps_own_pages(client, target):
    r = client.get("/lang/en", query_string={"next": target})
    assert r.headers["Location"] == target
    assert "lang=en" in r.headers["Set-Cookie"]


@pytest.mark.parametrize("target", [*HOSTILE, "/feedback", "/clerk/../feedback"])
def test_login_next_stays_in_the_console(ctx, client, target):
    accounts.add_user(ctx.db, "sokha", "a long pass phrase", "clerk")
    token = csrf_from(client, "/clerk/login")
    r = client.post("/clerk/login", query_string={"next": target},
                    data={"username": "sokha", "password": "a long pass phrase", "csrf_token": token})
    assert r.status_code == 303
    assert r.headers["Location"] == "/clerk/", (target, r.headers["Location"])


def test_login_next_returns_to_the_console_page_asked_for(ctx, client):
    accounts.add_user(ctx.db, "sokha", "a long pass phrase", "clerk")
    r = client.get("/clerk/notices/")
    assert r.status_code == 302
    login = r.headers["Location"]
    token = csrf_from(client, "/clerk/login")
    r = client.post(login, data={"username": "sokha", "password": "a long pass phrase", "csrf_token": token})
    assert r.headers["Location"] == "/clerk/notices/"
