"""The clerk console: login, CSRF, notices, inbox, export, dashboard."""

from __future__ import annotations

import io
import re

from hub import accounts, feedback, notices
from tests.conftest import count_rows, csrf_from
from tests.phone_audio import encode, tone_wav


def test_console_needs_login(client):
    for path in ("/clerk/", "/clerk/notices/", "/clerk/feedback/", "/clerk/feedback/export.csv"):
        r = client.get(path)
        assert r.status_code == 302 and "/clerk/login" in r.headers["Location"]


def test_there_is_no_default_account(ctx, client):
    assert accounts.list_users(ctx.db) == []
    token = csrf_from(client, "/clerk/login")
    for name, pw in (("admin", "admin"), ("clerk", "clerk"), ("admin", "password")):
        r = client.post("/clerk/login", data={"username": name, "password": pw, "csrf_token": token})
        assert r.status_code in (401, 429)


def test_passwords_are_scrypt_hashed(ctx):
    accounts.add_user(ctx.db, "sokha", "long enough now", "admin")
    stored = ctx.db.execute("select password_hash from users").fetchone()[0]
    assert stored.startswith("scrypt:") and "long enough now" not in stored


def test_login_sets_a_httponly_samesite_cookie(ctx, client):
    accounts.add_user(ctx.db, "sokha", "long enough now", "clerk")
    token = csrf_from(client, "/clerk/login")
    r = client.post("/clerk/login", data={"username": "sokha", "password": "long enough now", "csrf_token": token})
    assert r.status_code == 303
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/clerk/").status_code == 200


def test_login_is_rate_limited(ctx, client):
    accounts.add_user(ctx.db, "sokha", "long enough now", "clerk")
    token = csrf_from(client, "/clerk/login")
    codes = [client.post("/clerk/login", data={"username": "sokha", "password": f"wrong{i}",
                                                "csrf_token": token}).status_code for i in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429
    r = client.post("/clerk/login", data={"username": "sokha", "password": "long enough now", "csrf_token": token})
    assert r.status_code == 429  # even the right password waits out the window


def test_post_without_csrf_is_refused_for_clerks(clerk, ctx):
    r = clerk.post("/clerk/notices/new", data={"title_km": "គ្មាន CSRF"})
    assert r.status_code == 400
    assert count_rows(ctx.db, "notices") == 0


def test_clerk_publishes_edits_pins_and_expires_a_notice(clerk, ctx, tmp_path):
    token = csrf_from(clerk, "/clerk/notices/new")
    ogg = encode(tone_wav(tmp_path / "n.wav"), "ogg", tmp_path)
    png = tmp_path / "p.png"
    import subprocess

    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=64x48", "-frames:v", "1",
                    str(png)], check=True)
    with open(ogg, "rb") as a, open(png, "rb") as i:
        r = clerk.post("/clerk/notices/new", data={
            "csrf_token": token, "title_km": "ប្រជុំ", "title_en": "Meeting", "body_km": "នៅសាលាឃុំ",
            "audio": (a, "a.ogg"), "image": (i, "p.png"), "urgent": "1"},
            content_type="multipart/form-data")
    assert r.status_code == 303
    n = notices.all_notices(ctx.db)[0]
    assert n["audio_name"].endswith(".mp3") and n["image_name"].endswith(".jpg") and n["urgent"] == 1
    home = clerk.get("/").get_data(as_text=True)
    assert "ប្រជុំ" in home
    r = clerk.post(f"/clerk/notices/{n['id']}/edit", data={"csrf_token": token, "title_km": "ប្រជុំថ្មី"})
    assert r.status_code == 303 and notices.get(ctx.db, n["id"])["title_km"].replace("\u200b", "") == "ប្រជុំថ្មី"
    clerk.post(f"/clerk/notices/{n['id']}/pin", data={"csrf_token": token, "pinned": "1"})
    assert notices.get(ctx.db, n["id"])["pinned"] == 1
    clerk.post(f"/clerk/notices/{n['id']}/expire", data={"csrf_token": token})
    assert "ប្រជុំថ្មី" not in clerk.get("/").get_data(as_text=True)


def test_villager_html_is_escaped_in_the_inbox(clerk, ctx):
    feedback.submit(ctx, {"category": "other", "body": "<script>alert('x')</script><b>bold</b>"})
    html = clerk.get("/clerk/feedback/").get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    fid = feedback.inbox(ctx.db)[0]["id"]
    html = clerk.get(f"/clerk/feedback/{fid}").get_data(as_text=True)
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold" in html


def test_inbox_filters_and_reply_reaches_the_receipt(clerk, ctx):
    a = feedback.submit(ctx, {"category": "water", "body": "wells"})
    feedback.submit(ctx, {"category": "roads", "body": "road"})
    html = clerk.get("/clerk/feedback/?category=water").get_data(as_text=True)
    assert "wells" in html and ">road<" not in html
    token = csrf_from(clerk, f"/clerk/feedback/{a['id']}")
    r = clerk.post(f"/clerk/feedback/{a['id']}", data={"csrf_token": token, "status": "in_progress",
                                                       "reply": "យើងនឹងជួសជុលនៅសប្តាហ៍ក្រោយ"})
    assert r.status_code == 303
    row = feedback.get(ctx.db, a["id"])
    assert row["status"] == "answered"  # a reply answers it
    receipt = clerk.get(f"/receipt/{a['receipt']}").get_data(as_text=True)
    assert "យើងនឹងជួសជុល" in receipt.replace("\u200b", "")
    html = clerk.get("/clerk/feedback/?status=answered").get_data(as_text=True)
    assert "wells" in html and ">road<" not in html
    clerk.post(f"/clerk/feedback/{a['id']}", data={"csrf_token": token, "status": "closed"})
    assert feedback.get(ctx.db, a["id"])["status"] == "closed"


def test_csv_export_has_every_item_and_defuses_formulas(clerk, ctx):
    feedback.submit(ctx, {"category": "water", "body": "=HYPERLINK(\"x\")"})
    feedback.submit(ctx, {"category": "health", "body": "ok"})
    r = clerk.get("/clerk/feedback/export.csv")
    assert r.mimetype == "text/csv"
    text = r.get_data(as_text=True)
    lines = [x for x in text.splitlines() if x]
    assert len(lines) == 3 and lines[0].lstrip("\ufeff").startswith("លេខបង្កាន់ដៃ,")
    assert "'=HYPERLINK" in text


def test_dashboard_draws_a_chart_of_feedback_per_category_and_week(clerk, ctx):
    for _ in range(3):
        feedback.submit(ctx, {"category": "water", "body": "x"})
    feedback.submit(ctx, {"category": "health", "body": "y"})
    html = clerk.get("/clerk/?lang=en").get_data(as_text=True)
    assert "<svg" in html and 'class="chart"' in html
    assert re.search(r"Water and wells: 3</title>", html)
    assert re.search(r"Health: 1</title>", html)


def test_user_add_validates(ctx):
    import pytest

    with pytest.raises(accounts.AccountError):
        accounts.add_user(ctx.db, "x", "short")
    accounts.add_user(ctx.db, "x", "long enough now")
    with pytest.raises(accounts.AccountError):
        accounts.add_user(ctx.db, "x", "long enough now")


def test_clerk_sets_the_clock_from_their_device(make_settings):
    from hub.core.clock import Clock
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS
    from hub.web import create_app

    s = make_settings()
    c = open_context(s, MIGRATIONS)
    app = create_app(s, context=c)
    client = app.test_client()
    accounts.add_user(c.db, "clerk1", "correct horse")
    token = csrf_from(client, "/clerk/login")
    client.post("/clerk/login", data={"username": "clerk1", "password": "correct horse", "csrf_token": token})
    token = csrf_from(client, "/clerk/")
    untrusted = Clock(c.db, ntp_check=lambda: False)
    assert not untrusted.trusted()
    r = client.post("/clerk/clock", data={"csrf_token": token, "device_epoch_ms": "1900000000000",
                                          "next": "/clerk/"})
    assert r.status_code == 303
    assert untrusted.trust() == "clerk"
    assert abs(untrusted.timestamp() - 1_900_000_000) < 5


def test_upload_error_message_in_clerk_language(clerk, ctx):
    token = csrf_from(clerk, "/clerk/notices/new")
    r = clerk.post("/clerk/notices/new?lang=en", data={"csrf_token": token, "title_en": "x",
                                                       "audio": (io.BytesIO(b"garbage" * 100), "a.mp3")},
                   content_type="multipart/form-data")
    assert r.status_code == 415 and "damaged" in r.get_data(as_text=True)
    assert count_rows(ctx.db, "notices") == 0 and count_rows(ctx.db, "media") == 0


def test_the_inbox_is_paged(clerk, ctx):
    for i in range(90):
        feedback.submit(ctx, {"category": "water", "body": f"item {i:03d} " + "ទឹក " * 20})
    r = clerk.get("/clerk/feedback/")
    html = r.get_data(as_text=True)
    assert "page=2" in html and html.count("<audio") == 0
    seen = set(re.findall(r"item (\d{3})", html))
    for page in (2, 3):
        seen |= set(re.findall(r"item (\d{3})", clerk.get(f"/clerk/feedback/?page={page}").get_data(as_text=True)))
    assert len(seen) == 90
