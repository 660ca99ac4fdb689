"""Cached villager pages (hub.web.pagecache): rendered once, dropped by the write, per language."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from hub import notices
from hub.core import pagefiles
from hub.web import create_app
from tests.conftest import count_rows, csrf_from


def renders(app) -> int:
    return app.extensions["pagecache"].renders


def test_a_page_is_rendered_once_until_a_notice_changes(ctx, app, client):
    notices.create(ctx, {"title_km": "ទីមួយ", "title_en": "First"})
    first = client.get("/").get_data(as_text=True).replace("\u200b", "")
    assert "ទីមួយ" in first
    before = renders(app)
    for _ in range(3):
        assert client.get("/").get_data(as_text=True).replace("\u200b", "") == first
    assert renders(app) == before, "a cached page was rendered again without any change"
    # The write itself makes the next visitor see it: the version moved in its transaction.
    notices.create(ctx, {"title_km": "ទីពីរ", "title_en": "Second"})
    assert "ទីពីរ" in client.get("/").get_data(as_text=True).replace("\u200b", "")
    assert renders(app) == before + 1


def test_a_write_by_another_process_counts_too(ctx, app, client, hub_settings):
    """Sync's pull writes notices from hub-sync: the version is in the database, not in this process."""
    notices.create(ctx, {"title_km": "ក", "title_en": "Before"})
    client.get("/")
    import sqlite3

    other = sqlite3.connect(hub_settings.db_path, isolation_level=None)
    other.execute("update notices set title_km = 'ខ្មែរថ្មី'")
    other.close()
    assert "ខ្មែរថ្មី" in client.get("/").get_data(as_text=True).replace("\u200b", "")


def test_each_language_has_its_own_copy_and_the_switch_works_without_javascript(ctx, client):
    notices.create(ctx, {"title_km": "ប្រជុំ", "title_en": "Meeting"})
    km = client.get("/").get_data(as_text=True).replace("\u200b", "")
    assert '<html lang="km">' in km and "ប្រជុំ" in km
    # The language link is a plain link: it sets the cookie and sends the visitor back.
    r = client.get("/lang/en?next=/")
    assert r.status_code == 303 and "lang=en" in r.headers["Set-Cookie"]
    en = client.get("/").get_data(as_text=True).replace("\u200b", "")
    assert '<html lang="en">' in en and "Meeting" in en
    client.get("/lang/km?next=/")
    assert client.get("/").get_data(as_text=True).replace("\u200b", "") == km


def test_cached_form_carries_no_token_and_posts_from_the_hub_page(ctx, app, client):
    page = client.get("/feedback")
    assert 'name="csrf_token" value=""' in page.get_data(as_text=True).replace("\u200b", "")
    assert "Set-Cookie" not in page.headers, "a page for everyone must not hand out a cookie"
    r = client.post("/feedback", data={"csrf_token": "", "category": "water", "body": "ok"})
    assert r.status_code == 303, r.get_data(as_text=True).replace("\u200b", "")[:300]
    assert count_rows(ctx.db, "feedback") == 1


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "", "Origin": "http://evil.example"},
    {"Sec-Fetch-Site": "", "Referer": "http://evil.example/form.html"},
    {"Sec-Fetch-Site": "", "Origin": "null"},
])
def test_a_post_from_another_site_is_refused(ctx, app, headers):
    client = app.test_client()  # a browser that says where the post came from
    sent = {k: v for k, v in headers.items() if v}
    r = client.post("/feedback", data={"category": "water", "body": "forged"}, headers=sent)
    assert r.status_code == 400
    r = client.post("/welcome", headers=sent)
    assert r.status_code == 400
    assert count_rows(ctx.db, "feedback") == 0


def test_a_same_origin_browser_without_fetch_metadata_is_accepted(ctx, app):
    client = app.test_client()
    r = client.post("/feedback", data={"category": "water", "body": "old phone"},
                    headers={"Origin": "http://localhost"})
    assert r.status_code == 303
    r = client.post("/feedback", data={"category": "water", "body": "older phone"},
                    headers={"Referer": "http://localhost/feedback"})
    assert r.status_code == 303
    assert count_rows(ctx.db, "feedback") == 2


def test_a_post_with_no_word_from_the_browser_needs_the_session_token(ctx, app):
    client = app.test_client()
    assert client.post("/feedback", data={"category": "water", "body": "x"}).status_code == 400
    # The form the app renders again after an error is not cached and carries the token.
    again = client.post("/feedback", data={"category": "water"}, headers={"Origin": "http://localhost"})
    assert again.status_code == 400
    token = csrf_from(client, "/feedback") or None
    assert token is None, "the cached form has no token"
    from tests.conftest import CSRF_RE

    token = CSRF_RE.search(again.get_data(as_text=True).replace("\u200b", "")).group(1)
    assert token
    r = client.post("/feedback", data={"csrf_token": token, "category": "water", "body": "x"})
    assert r.status_code == 303
    assert count_rows(ctx.db, "feedback") == 1


def test_receipt_pages_stay_dynamic(ctx, app, client):
    a = client.post("/feedback", data={"category": "water", "body": "mine"}).headers["Location"]
    b = client.post("/feedback", data={"category": "roads", "body": "yours"}).headers["Location"]
    before = renders(app)
    pages = {client.get(a).get_data(), client.get(b).get_data(), client.get(a).get_data()}
    assert renders(app) == before
    assert len(pages) == 2, "two people's receipts must differ"


def test_an_expiring_notice_leaves_the_cached_home_page_when_it_expires(ctx, app, client):
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat(timespec="seconds")
    notices.create(ctx, {"title_km": "បណ្ដោះអាសន្ន", "title_en": "Short-lived", "expires_at": soon})
    assert "បណ្ដោះអាសន្ន" in client.get("/").get_data(as_text=True).replace("\u200b", "")
    deadline = time.monotonic() + 6
    while "បណ្ដោះអាសន្ន" in client.get("/").get_data(as_text=True).replace("\u200b", ""):
        assert time.monotonic() < deadline, "the expired notice is still on the cached page"
        time.sleep(0.2)


@pytest.fixture
def file_app(make_settings):
    """The app as behind nginx: it writes the pages nginx serves."""
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS

    settings = make_settings(behind_proxy=True)
    c = open_context(settings, MIGRATIONS)
    app = create_app(settings, context=c)
    client = app.test_client()
    client.environ_base["HTTP_SEC_FETCH_SITE"] = "same-origin"
    yield c, app, client
    c.close()


def test_behind_nginx_pages_are_written_for_it_readable_by_its_group(file_app):
    ctx, app, client = file_app
    nid = notices.create(ctx, {"title_km": "ឯកសារ", "title_en": "File"})
    home = client.get("/").get_data()
    notice = client.get(f"/notice/{nid}").get_data()
    client.get("/feedback")
    client.get("/welcome")
    client.get("/?page=2")
    client.get("/?lang=en")  # not a page nginx looks for: not written
    root = pagefiles.pages_dir(ctx.settings)
    version, folder = pagefiles.live_version(root)
    assert version == pagefiles.read_version(ctx.db.conn)
    assert (root / "live" / "km" / "home.html").read_bytes() == home
    assert (root / "live" / "km" / "notice" / f"{nid}.html").read_bytes() == notice
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.html"))
    assert names == ["km/feedback.html", "km/home.html", "km/home.p2.html", f"km/notice/{nid}.html",
                     "km/welcome.html"]
    for p in [folder, *folder.rglob("*")]:
        want = 0o750 if p.is_dir() else 0o640
        assert os.stat(p).st_mode & 0o777 == want, p


def test_the_write_points_nginx_at_an_empty_folder(file_app):
    ctx, app, client = file_app
    notices.create(ctx, {"title_km": "ចាស់", "title_en": "Old"})
    client.get("/")
    root = pagefiles.pages_dir(ctx.settings)
    old = pagefiles.live_version(root)[1]
    notices.create(ctx, {"title_km": "ថ្មី", "title_en": "New"})
    live = root / "live"
    assert not (live / "km" / "home.html").exists(), "nginx would still serve the page without the new notice"
    assert not old.exists()
    client.get("/")
    assert "ថ្មី" in (live / "km" / "home.html").read_text(encoding="utf-8").replace("\u200b", "")


def test_a_page_rendered_from_an_older_version_is_not_written(file_app):
    ctx, app, client = file_app
    cache = app.extensions["pagecache"]
    notices.create(ctx, {"title_km": "ក", "title_en": "A"})
    old_version = pagefiles.read_version(ctx.db.conn)
    notices.create(ctx, {"title_km": "ខ", "title_en": "B"})
    cache.put(ctx, old_version, "km", "home", b"<p>stale</p>", None)
    assert not (pagefiles.pages_dir(ctx.settings) / "live" / "km" / "home.html").exists()


def test_a_clock_correction_is_a_new_version_and_sync_saying_it_again_is_not(ctx, app, client):
    notices.create(ctx, {"title_km": "ក", "title_en": "A"})
    client.get("/")
    version = pagefiles.read_version(ctx.db.conn)
    ctx.clock.set_trusted_time("clerk", time.time() + 3600)  # the hub was an hour behind
    assert pagefiles.read_version(ctx.db.conn) == version + 1
    before = renders(app)
    client.get("/")
    assert renders(app) == before + 1, "the page dated by the old clock was served"
    ctx.clock.set_trusted_time("central", time.time() + 3600.2)  # the next cycle: the same hour
    assert pagefiles.read_version(ctx.db.conn) == version + 1
