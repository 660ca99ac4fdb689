"""The villager portal through Flask's test client."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from hub import feedback, notices
from tests.conftest import count_rows, csrf_from
from tests.phone_audio import encode, tone_wav

EXTERNAL_URL = re.compile(r"""(?:src|href|action)=["'](?:https?:)?//""", re.I)


def khmer_chars(text: str) -> int:
    return sum(1 for c in text if "\u1780" <= c <= "\u17ff")


@pytest.fixture
def some_notices(ctx):
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="seconds")
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat(timespec="seconds")
    ids = {
        "plain": notices.create(ctx, {"title_km": "ចំណងជើងធម្មតា", "title_en": "Plain"}),
        "pinned": notices.create(ctx, {"title_km": "ខ្ទាស់", "title_en": "Pinned one", "pinned": True}),
        "urgent": notices.create(ctx, {"title_km": "បន្ទាន់", "title_en": "Urgent one", "urgent": True,
                                       "expires_at": future}),
        "expired": notices.create(ctx, {"title_km": "ចាស់", "title_en": "Old one", "expires_at": past}),
    }
    return ids


def test_home_is_khmer_by_default_small_and_self_contained(client, some_notices):
    r = client.get("/")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert '<html lang="km">' in html
    assert khmer_chars(html) > 20
    assert len(r.data) < 30 * 1024
    assert not EXTERNAL_URL.search(html), EXTERNAL_URL.search(html)
    assert "<script" not in html  # the portal needs no JavaScript


def test_home_orders_urgent_then_pinned_and_hides_expired(client, some_notices):
    html = client.get("/?lang=en").get_data(as_text=True)
    order = [html.find(t) for t in ("Urgent one", "Pinned one", "Plain")]
    assert -1 not in order and order == sorted(order)
    assert "Old one" not in html


def test_english_switch_sets_a_cookie_and_changes_language(client, some_notices):
    r = client.get("/lang/en?next=/feedback")
    assert r.status_code == 303 and r.headers["Location"].endswith("/feedback")
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in html and "Notices" in html
    assert client.get("/lang/en?next=//evil.example/").headers["Location"] == "/"


def test_dates_and_numbers_use_khmer_digits(client, some_notices):
    html = client.get("/").get_data(as_text=True)
    # Notices published a moment ago: "today, at h:mm" with Khmer digits and the part of the day.
    assert re.search(r"ថ្ងៃនេះ ម៉ោង [០-៩]{1,2}:[០-៩]{2} (ព្រឹក|រសៀល|ល្ងាច|យប់)", html)


def test_notice_page_shows_listen_button_when_audio(ctx, client, tmp_path):
    row = ctx.media.prepare_audio(tone_wav(tmp_path / "a.wav"))
    nid = notices.create(ctx, {"title_km": "សំឡេង", "body_km": "អត្ថបទ"}, media_rows=[row])
    notices.update(ctx, nid, {"audio_id": row["id"]})
    html = client.get(f"/notice/{nid}").get_data(as_text=True)
    # It plays on the page, in an <audio> element, never as a link to the bare file.
    assert f'<audio id="notice-audio" controls preload="none" src="/media/{row["web_name"]}">' in html
    assert "ស្តាប់" in html and 'href="/media/' not in html
    audio = client.get(f"/media/{row['web_name']}")
    assert audio.status_code == 200 and audio.mimetype == "audio/mpeg"
    assert audio.headers["X-Content-Type-Options"] == "nosniff"
    audio.close()
    plain = notices.create(ctx, {"title_km": "គ្មានសំឡេង"})
    assert "/media/" not in client.get(f"/notice/{plain}").get_data(as_text=True)
    assert client.get("/notice/nope").status_code == 404


def test_feedback_form_offers_icons_voice_capture_and_consent(client):
    html = client.get("/feedback").get_data(as_text=True)
    assert len(html.encode()) < 30 * 1024
    for key in feedback.CATEGORY_KEYS:
        assert f'value="{key}"' in html
    assert html.count('<svg class="i"') >= len(feedback.CATEGORY_KEYS)
    assert re.search(r'<input type="file"[^>]*accept="audio/\*"[^>]*capture', html)
    for field in ("name", "phone", "village", "consent_share", "body"):
        assert f'name="{field}"' in html


def test_feedback_post_without_javascript_gives_a_receipt_and_status(ctx, client):
    token = csrf_from(client)
    r = client.post("/feedback", data={"csrf_token": token, "category": "water",
                                       "body": "អណ្តូងខូច", "village": "ភូមិ ២"})
    assert r.status_code == 303
    page = client.get(r.headers["Location"])
    html = page.get_data(as_text=True)
    code = re.search(r'<p class="code muted">(\d{4} \d{4})</p>', html).group(1)
    assert feedback.valid_receipt(code.replace(" ", ""))
    row = feedback.by_receipt(ctx.db, code)
    assert row["body"].replace("\u200b", "") == "អណ្តូងខូច" and row["source"] == "portal"
    # Khmer digits typed into the lookup work too.
    km_code = code.translate(str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩"))
    r = client.get("/receipt", query_string={"code": km_code})
    assert r.status_code == 303
    assert client.get(r.headers["Location"]).status_code == 200
    assert client.get("/receipt/000000").status_code in (200, 404)


def test_receipt_page_is_reachable_from_home(client):
    assert 'href="/receipt"' in client.get("/").get_data(as_text=True)


def test_feedback_needs_category_and_content_in_the_villagers_language(ctx, client):
    token = csrf_from(client)
    r = client.post("/feedback", data={"csrf_token": token, "body": "hello"})
    assert r.status_code == 400 and "សូមជ្រើសរើស" in r.get_data(as_text=True)
    r = client.post("/feedback", data={"csrf_token": token, "category": "water"})
    assert r.status_code == 400
    assert count_rows(ctx.db, "feedback") == 0


def test_post_without_csrf_token_is_refused(ctx, app):
    client = app.test_client()  # no word from the browser on where the post came from
    r = client.post("/feedback", data={"category": "water", "body": "x"})
    assert r.status_code == 400
    assert count_rows(ctx.db, "feedback") == 0
    r = client.post("/welcome")
    assert r.status_code == 400


def test_voice_feedback_in_a_phone_format_is_stored_converted(ctx, client, tmp_path):
    m4a = encode(tone_wav(tmp_path / "v.wav"), "m4a", tmp_path)
    token = csrf_from(client)
    with open(m4a, "rb") as f:
        r = client.post("/feedback", data={"csrf_token": token, "category": "health",
                                           "voice": (f, "recording.m4a"), "consent_share": "1"},
                        content_type="multipart/form-data")
    assert r.status_code == 303
    row = list(ctx.db.query("select f.consent_share, m.* from feedback f join media m on m.id = f.audio_id"))[0]
    assert row["consent_share"] == 1 and row["web_type"] == "audio/mpeg"
    assert (ctx.settings.media_dir / row["master_name"]).exists()


def test_corrupt_audio_gets_a_4xx_in_the_users_language_and_nothing_stored(ctx, client, tmp_path):
    bad = tmp_path / "voice.m4a"
    bad.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(range(256)) * 40)
    token = csrf_from(client)
    with open(bad, "rb") as f:
        r = client.post("/feedback", data={"csrf_token": token, "category": "health", "body": "x",
                                           "voice": (f, "voice.m4a")}, content_type="multipart/form-data")
    assert 400 <= r.status_code < 500
    assert "ឯកសារ" in r.get_data(as_text=True)
    assert count_rows(ctx.db, "feedback") == 0 and count_rows(ctx.db, "media") == 0
    assert [p for p in ctx.settings.media_dir.iterdir()] == []


def test_html_renamed_as_audio_is_refused(ctx, client):
    import io

    token = csrf_from(client)
    r = client.post("/feedback", data={"csrf_token": token, "category": "other", "body": "x",
                                       "voice": (io.BytesIO(b"<html><script>alert(1)</script></html>"), "x.mp3")},
                    content_type="multipart/form-data")
    assert 400 <= r.status_code < 500
    assert count_rows(ctx.db, "media") == 0


def test_oversized_upload_gets_413(make_settings, tmp_path):
    import io

    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS
    from hub.web import create_app

    s = make_settings(max_upload_mb=1)
    app = create_app(s, context=open_context(s, MIGRATIONS))
    client = app.test_client()
    token = csrf_from(client)
    r = client.post("/feedback", data={"csrf_token": token, "category": "other",
                                       "voice": (io.BytesIO(b"\0" * (2 * 1024 * 1024)), "big.wav")},
                    content_type="multipart/form-data")
    assert r.status_code == 413


def test_font_is_bundled_and_cached_for_a_year(client):
    with client.get("/static/hub.css") as r:
        css = r.get_data(as_text=True)
    assert "NotoSansKhmer-Regular.khmer.woff2" in css and "font-display:swap" in css
    r = client.get("/static/fonts/NotoSansKhmer-Regular.khmer.woff2")
    assert r.status_code == 200 and r.data[:4] == b"wOF2"
    assert r.cache_control.max_age >= 365 * 86400
    assert len(r.data) < 40 * 1024
    r.close()


def test_unknown_media_name_is_404(client):
    assert client.get("/media/../hub.db").status_code == 404
    assert client.get("/media/nothing.web.mp3").status_code == 404


def test_many_notices_are_paged_and_each_page_stays_small(ctx, client):
    for i in range(40):
        notices.create(ctx, {"title_km": f"សេចក្តីជូនដំណឹងលេខ {i} អំពីការប្រជុំឃុំនិងការអភិវឌ្ឍភូមិ",
                             "title_en": f"Notice number {i:02d}", "urgent": i % 7 == 0})
    first = client.get("/?lang=en")
    html = first.get_data(as_text=True)
    assert len(first.data) < 30 * 1024
    assert html.count('class="card') == 15 and 'href="/?page=2"' in html
    seen = set(re.findall(r"Notice number (\d\d)", html))
    for page in (2, 3):
        html = client.get(f"/?lang=en&page={page}").get_data(as_text=True)
        seen |= set(re.findall(r"Notice number (\d\d)", html))
    assert len(seen) == 40
    assert 'href="/?page=4"' not in html
