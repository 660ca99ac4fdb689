"""Cached villager pages through nginx as a Pi runs it: the file the hub wrote, served by www-data."""

from __future__ import annotations

import pwd
import re
import shutil

import pytest
import requests

from hub.core import pagefiles
from tests.conftest import need
from tests.net.test_nginx import CSRF_RE, refusal, session
from tests.net.webstack import WebStack

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def from_nginx(r: requests.Response) -> bool:
    """nginx's static module answers with an ETag and Last-Modified; the app never does."""
    return "ETag" in r.headers and "Last-Modified" in r.headers


def text(r: requests.Response) -> str:
    return r.content.decode().replace("\u200b", "")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    need("nginx")
    with WebStack(tmp_path_factory.mktemp("pagestack")) as web:
        r = web.hub("user", "add", "clerk1", "--role", "clerk", input="correct horse\n")
        assert r.returncode == 0, r.stderr
        clerk = requests.Session()
        clerk.trust_env = False
        token = CSRF_RE.search(clerk.get(f"{web.staff_url}/clerk/login").text).group(1)
        r = clerk.post(f"{web.staff_url}/clerk/login", allow_redirects=False,
                       data={"csrf_token": token, "username": "clerk1", "password": "correct horse"})
        assert r.status_code == 303
        web.clerk = clerk
        yield web


def publish(stack, km: str, en: str) -> None:
    token = CSRF_RE.search(stack.clerk.get(f"{stack.staff_url}/clerk/notices/new").text).group(1)
    r = stack.clerk.post(f"{stack.staff_url}/clerk/notices/new", allow_redirects=False,
                         data={"csrf_token": token, "title_km": km, "title_en": en})
    assert r.status_code == 303, refusal(r)


def test_nginx_serves_the_file_the_hub_wrote_with_the_apps_headers(stack):
    publish(stack, "ប្រជុំ", "Meeting")
    s = session()
    first = s.get(f"{stack.villager_url}/")
    assert first.status_code == 200 and not from_nginx(first), "the first visitor is served by the app"
    second = s.get(f"{stack.villager_url}/")
    assert from_nginx(second), second.headers
    assert second.content == first.content
    for name in ("Content-Type", "Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options",
                 "Referrer-Policy"):
        assert second.headers[name] == first.headers[name], name
    assert "Cookie" in second.headers["Vary"]
    # A phone that has it already gets 304: no page over the air again.
    again = s.get(f"{stack.villager_url}/", headers={"If-None-Match": second.headers["ETag"]})
    assert again.status_code == 304
    page = pagefiles.pages_dir(stack.settings) / "live" / "km" / "home.html"
    if stack.deployed:
        st = page.stat()
        assert pwd.getpwuid(st.st_uid).pw_name == "nobody" and oct(st.st_mode & 0o777) == "0o640"


@pytest.mark.parametrize("path", ["/feedback", "/welcome", "/notice/{nid}"])
def test_every_cached_page_comes_from_nginx_the_second_time(stack, path):
    publish(stack, "ផ្លូវ", "Road")
    s = session()
    nid = re.search(r'href="/notice/([0-9a-f-]{36})"', s.get(f"{stack.villager_url}/").text).group(1)
    url = stack.villager_url + path.format(nid=nid)
    assert s.get(url).status_code == 200
    assert from_nginx(s.get(url))


def test_a_clerks_notice_is_on_the_next_page_nginx_serves(stack):
    s = session()
    s.get(f"{stack.villager_url}/")
    assert from_nginx(s.get(f"{stack.villager_url}/"))
    publish(stack, "ទឹកជំនន់", "Flood warning")
    r = s.get(f"{stack.villager_url}/")
    assert "ទឹកជំនន់" in text(r), "nginx served the page from before the write"


def test_the_language_cookie_picks_the_file(stack):
    publish(stack, "សាលា", "School")
    s = session()
    r = s.get(f"{stack.villager_url}/lang/en?next=/", allow_redirects=False)
    assert r.status_code == 303
    s.get(f"{stack.villager_url}/")
    en = s.get(f"{stack.villager_url}/")
    assert from_nginx(en) and '<html lang="en">' in en.text and "School" in en.text
    km = session().get(f"{stack.villager_url}/")
    assert '<html lang="km">' in km.text


def test_a_foreign_host_and_a_post_never_get_a_cached_page(stack):
    s = session()
    s.get(f"{stack.villager_url}/")
    r = s.get(f"{stack.villager_url}/", headers={"Host": "example.org"}, allow_redirects=False)
    assert r.status_code == 302
    r = s.post(f"{stack.villager_url}/feedback", allow_redirects=False,
               data={"category": "water", "body": "posted to the app, not to a file"})
    assert r.status_code == 303, refusal(r)


def test_a_post_from_another_site_is_refused_through_nginx(stack):
    s = requests.Session()
    s.trust_env = False
    r = s.post(f"{stack.villager_url}/feedback", allow_redirects=False,
               data={"category": "water", "body": "forged"},
               headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 400


def test_with_javascript_off_a_phone_sends_feedback_from_the_cached_form_in_english(stack, tmp_path):
    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed; `make test` installs it")
    from playwright.sync_api import sync_playwright

    warm = session()
    warm.get(f"{stack.villager_url}/feedback")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(java_script_enabled=False).new_page()
            page.goto(f"{stack.villager_url}/feedback")
            page.click("header a[href^='/lang/en']")  # the language link, a plain link
            page.wait_for_load_state()
            assert page.locator("html").get_attribute("lang") == "en"
            served = page.request.get(f"{stack.villager_url}/feedback")  # with the browser's cookie
            assert "etag" in served.headers, "the English form did not come from nginx's file"
            page.goto(f"{stack.villager_url}/feedback")
            page.click("label[for='cat-water']")
            page.fill("#body", "Sent with JavaScript off from a cached page")
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r"/receipt/"))
            assert page.locator("html").get_attribute("lang") == "en"
        finally:
            browser.close()
    import sqlite3

    conn = sqlite3.connect(f"file:{stack.settings.db_path}?mode=ro", uri=True)
    n = conn.execute("select count(*) from feedback where body like 'Sent with JavaScript off%'").fetchone()[0]
    conn.close()
    assert n == 1
