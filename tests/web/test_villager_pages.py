"""The villager portal's voice-first pages through Flask's test client: spoken codes, my messages,
friendly dates, error pages, the manifest, and Khmer text without stray break points."""

from __future__ import annotations

import csv
import io
import re
import subprocess
from datetime import UTC, datetime

from hub import feedback, notices
from hub.core import khmer
from hub.web.errors import NGINX_PAGES, error_dir
from tests.conftest import csrf_from
from tests.phone_audio import encode, tone_wav

KM = str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩")


def send(client, **fields) -> str:
    token = csrf_from(client)
    r = client.post("/feedback", data={"csrf_token": token, "category": "water", **fields},
                    content_type="multipart/form-data")
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    return re.search(r"/receipt/(\d+)", r.headers["Location"]).group(1)


def got(client, url: str):
    """(status, type, bytes) of *url*, with the response closed (files are streamed)."""
    with client.get(url) as r:
        return r.status_code, r.mimetype, r.data


def seconds_of(data: bytes, tmp_path) -> float:
    path = tmp_path / "got.mp3"
    path.write_bytes(data)
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                          str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout)


# --- 9: text fixes ------------------------------------------------------------------------------

def test_no_break_point_is_put_before_khmer_sentence_signs():
    text = "ខ្ញុំចង់ទៅផ្សារ។ តម្លៃ ១០០០៛ ហើយៗ"
    out = khmer.add_break_points(text)
    assert khmer.ZWSP in out
    for sign in "។៛ៗ":
        assert khmer.ZWSP + sign not in out
    assert khmer.strip_break_points(out) == text


def test_replies_are_stored_and_exported_without_zero_width_spaces(ctx, clerk):
    result = feedback.submit(ctx, {"category": "water", "body": "អណ្តូងខូចនៅភូមិយើង"})
    item = feedback.by_receipt(ctx.db, result["receipt"])
    feedback.set_status(ctx, item["id"], "answered", "ជាងនឹងមក\u200bជួសជុលថ្ងៃស្អែក។")
    stored = feedback.by_receipt(ctx.db, result["receipt"])["reply"]
    assert stored == "ជាងនឹងមកជួសជុលថ្ងៃស្អែក។"
    clerk.get("/lang/en")
    exported = clerk.get("/clerk/feedback/export.csv").get_data(as_text=True).lstrip("\ufeff")
    assert "\u200b" not in exported
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert rows[0]["Message"] == "អណ្តូងខូចនៅភូមិយើង" and rows[0]["Answer"] == stored


def test_receipt_page_has_an_h1_the_reply_with_break_points_and_a_favicon(ctx, client):
    code = send(client, body="ផ្លូវខូច")
    item = feedback.by_receipt(ctx.db, code)
    feedback.set_status(ctx, item["id"], "answered", "យើងនឹងជួសជុលផ្លូវនៅសប្តាហ៍ក្រោយ។")
    html = client.get(f"/receipt/{code}").get_data(as_text=True)
    assert re.search(r"<h1>.*?</h1>", html, re.S)
    reply = re.search(r'<div class="body">(.*?)</div>', html, re.S).group(1)
    assert "\u200b" in reply and "\u200b។" not in reply
    assert 'rel="icon"' in html
    ico = client.get("/favicon.ico")
    assert ico.status_code == 200 and ico.data[:4] == b"\0\0\1\0"
    ico.close()


# --- 7: friendly dates --------------------------------------------------------------------------

def test_friendly_dates_say_today_yesterday_and_the_part_of_the_day_in_local_time():
    now = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)  # 12:00 in Phnom Penh
    assert khmer.format_friendly(datetime(2026, 12, 2, 1, 30, tzinfo=UTC), now) == "ថ្ងៃនេះ ម៉ោង ៨:៣០ ព្រឹក"
    assert khmer.format_friendly(datetime(2026, 12, 1, 11, 5, tzinfo=UTC), now) == "ម្សិលមិញ ម៉ោង ៦:០៥ ល្ងាច"
    assert khmer.format_friendly(datetime(2026, 12, 1, 16, 59, tzinfo=UTC), now, "en") == \
        "yesterday, 11:59 at night"
    # 23:30 UTC on the 1st is already the morning of the 2nd in Phnom Penh.
    assert khmer.format_friendly(datetime(2026, 12, 1, 23, 30, tzinfo=UTC), now, "en") == \
        "today, 6:30 in the morning"
    assert khmer.format_friendly(datetime(2026, 12, 2, 7, 0, tzinfo=UTC), now) == "ថ្ងៃនេះ ម៉ោង ២:០០ រសៀល"
    older = khmer.format_friendly(datetime(2026, 11, 20, 3, 0, tzinfo=UTC), now)
    assert older.startswith("២០ វិច្ឆិកា ២០២៦") and older.endswith("ព្រឹក")


def test_notices_show_the_lunar_date_beside_the_friendly_date(ctx, client):
    nid = notices.create(ctx, {"title_km": "ពិធីបុណ្យ"})
    # 17:30 UTC on 21 May 2024 is already the 22nd in Phnom Penh: Visak Bochea, ១៥ កើត ខែពិសាខ.
    ctx.db.execute("update notices set published_at = ? where id = ?", ("2024-05-21T17:30:00+00:00", nid))
    lunar_km = '<span class="lunar">· ថ្ងៃពុធ ១៥ កើត ខែពិសាខ</span>'
    assert lunar_km in client.get(f"/notice/{nid}?lang=km").get_data(as_text=True)
    assert lunar_km in client.get("/?lang=km").get_data(as_text=True)
    assert "15th waxing day of Pisak" in client.get(f"/notice/{nid}?lang=en").get_data(as_text=True)


# --- 2: the receipt code, spoken ----------------------------------------------------------------

def test_receipt_page_speaks_the_code_with_the_kiosk_digits(ctx, client, tmp_path):
    code = send(client, body="x")
    html = client.get(f"/receipt/{code}?new=1").get_data(as_text=True)
    clips = re.search(r'data-clips="([^"]+)"', html).group(1).split()
    assert clips[0] == "/voice/thank_you_number.mp3|-1"
    assert [c.split("|")[0] for c in clips[1:]] == [f"/voice/digit_{d}.mp3" for d in code]
    assert [int(c.split("|")[1]) for c in clips[1:]] == list(range(len(code)))
    joined = re.search(r'<audio controls preload="none" src="(/voice/say/[^"]+)"', html).group(1)
    assert joined == f"/voice/say/thank_you_number-{code}.mp3"
    assert got(client, "/voice/digit_7.mp3")[:2] == (200, "audio/mpeg")
    status, kind, all_of_it = got(client, joined)
    assert (status, kind) == (200, "audio/mpeg")
    # The joined file is the greeting and every digit, one after another.
    parts = [seconds_of(got(client, f"/voice/{k}.mp3")[2], tmp_path)
             for k in ["thank_you_number", *[f"digit_{d}" for d in code]]]
    assert abs(seconds_of(all_of_it, tmp_path) - sum(parts)) < 0.3 + 0.15 * len(parts)
    # Made once, then served from the cache.
    cached = sorted(p.name for p in (ctx.settings.data_dir / "cache" / "voice").iterdir())
    got(client, joined)
    assert sorted(p.name for p in (ctx.settings.data_dir / "cache" / "voice").iterdir()) == cached
    for bad in ("/voice/nope.mp3", "/voice/say/nope-1.mp3", "/voice/say/..%2Fhub.db.mp3",
                "/voice/say/" + "1" * 40 + ".mp3"):
        assert got(client, bad)[0] == 404, bad


def test_a_clerks_recording_replaces_the_digit_the_portal_speaks(ctx, client, tmp_path):
    from hub.voice import prompts

    before = got(client, "/voice/digit_3.mp3")[2]
    prompts.replace(ctx, "digit_3", tone_wav(tmp_path / "three.wav", seconds=1.5))
    after = got(client, "/voice/digit_3.mp3")[2]
    assert after != before and abs(seconds_of(after, tmp_path) - 1.5) < 0.2


def test_status_page_reads_the_status_aloud(ctx, client):
    code = send(client, body="x")
    item = feedback.by_receipt(ctx.db, code)
    feedback.set_status(ctx, item["id"], "in_progress")
    html = client.get(f"/receipt/{code}").get_data(as_text=True)
    assert f"/voice/say/your_number_is-{code}-status_in_progress.mp3" in html
    assert got(client, f"/voice/say/your_number_is-{code}-status_in_progress.mp3")[0] == 200


# --- 1: the voice message on the receipt page ---------------------------------------------------

def test_receipt_page_says_the_voice_message_arrived_with_its_length(client, tmp_path):
    m4a = encode(tone_wav(tmp_path / "v.wav", seconds=3.0), "m4a", tmp_path)
    token = csrf_from(client)
    with open(m4a, "rb") as f:
        r = client.post("/feedback", data={"csrf_token": token, "category": "health", "voice": (f, "v.m4a")},
                        content_type="multipart/form-data")
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "សារជាសំឡេងរបស់អ្នកបានមកដល់ហើយ៖ វែង ០:០៣។" in html
    assert re.search(r'<audio controls preload="none" src="/media/[0-9a-f-]+\.web\.mp3"', html)


def test_feedback_page_puts_the_microphone_first(client):
    html = client.get("/feedback").get_data(as_text=True)
    mic = html.index('class="mic" for="voice"')
    assert mic < html.index('name="category"') and mic < html.index('id="body"')
    assert 'href="/feedback#voice"' in client.get("/").get_data(as_text=True)


# --- 4: notices ---------------------------------------------------------------------------------

def test_home_list_plays_notices_and_pictures_carry_their_size(ctx, client, tmp_path):
    row = ctx.media.prepare_audio(tone_wav(tmp_path / "a.wav"))
    png = tmp_path / "p.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=640x480", "-frames:v", "1",
                    str(png)], check=True)
    image = ctx.media.prepare_image(png)
    nid = notices.create(ctx, {"title_km": "សំឡេង", "audio_id": row["id"], "image_id": image["id"]},
                         media_rows=[row, image])
    home = client.get("/").get_data(as_text=True)
    assert f'<audio controls preload="none" src="/media/{row["web_name"]}"' in home
    assert "<script" not in home
    page = client.get(f"/notice/{nid}").get_data(as_text=True)
    assert f'src="/media/{image["web_name"]}" alt="" width="640" height="480"' in page


def test_notices_and_listen_have_different_icons():
    from hub.web.icons import PATHS

    assert PATHS["notice"] != PATHS["listen"]


# --- 5: welcome ---------------------------------------------------------------------------------

def test_welcome_cards_lead_to_their_sections_and_say_the_address(ctx, client):
    html = client.get("/welcome").get_data(as_text=True)
    targets = re.findall(r'<button class="card" type="submit" name="next" value="([^"]+)"', html)
    assert targets == ["/#notices", "/#notices", "/feedback#voice", "/feedback"]
    assert ctx.settings.listen_url.rstrip("/") in html
    assert "/voice/say/portal_welcome.mp3" in html and "/voice/say/portal_help.mp3" in html
    token = csrf_from(client, "/welcome")
    r = client.post("/welcome", data={"csrf_token": token, "next": "/feedback#voice"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/feedback#voice")
    r = client.post("/welcome", data={"csrf_token": token, "next": "//evil.example/"})
    assert r.headers["Location"] == "/"


def test_manifest_and_icons_for_add_to_home_screen(client):
    html = client.get("/").get_data(as_text=True)
    assert '<link rel="manifest" href="/manifest.webmanifest">' in html
    r = client.get("/manifest.webmanifest")
    assert r.status_code == 200 and r.mimetype == "application/manifest+json"
    m = r.get_json()
    assert m["start_url"] == "/" and m["display"] == "standalone"
    sizes = {i["sizes"] for i in m["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for i in m["icons"]:
        got = client.get(i["src"])
        assert got.status_code == 200 and got.mimetype == i["type"]
        got.close()


# --- 6: my messages -----------------------------------------------------------------------------

def test_my_messages_lists_what_this_phone_sent_with_status(ctx, client):
    first = send(client, body="មួយ")
    second = send(client, body="ពីរ")
    feedback.set_status(ctx, feedback.by_receipt(ctx.db, first)["id"], "answered", "បាទ")
    r = client.get("/mine")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "no-store" in r.headers["Cache-Control"]
    assert html.index(f'href="/receipt/{second}"') < html.index(f'href="/receipt/{first}"')
    assert html.count("បានឆ្លើយ") >= 1 and "បានទទួល" in html
    # Another phone (no cookie) sees none of them, and the shared pages name none of them.
    other = client.application.test_client()
    assert f"/receipt/{first}" not in other.get("/mine").get_data(as_text=True)
    for path in ("/", "/feedback", "/welcome"):
        assert first not in client.get(path).get_data(as_text=True)


def test_my_messages_cookie_ignores_junk_and_keeps_twenty(client):
    client.set_cookie("mine", "abc.<script>." + ".".join(f"{i:06d}" for i in range(30)))
    r = client.get("/mine")
    assert r.status_code == 200 and "<script>" not in r.get_data(as_text=True)


# --- 8: error pages -----------------------------------------------------------------------------

def test_app_error_pages_are_khmer_and_small(client):
    r = client.get("/no/such/page")
    html = r.get_data(as_text=True)
    assert r.status_code == 404 and "មិនមានទំព័រនេះទេ" in html and len(r.data) < 30 * 1024
    assert '<meta name="viewport"' in html
    r = client.get("/no/such/page?lang=en")
    assert "This page does not exist" in r.get_data(as_text=True)


def test_a_recording_over_the_limit_gets_the_form_saying_how_long_one_may_be(make_settings):
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS
    from hub.web import create_app

    s = make_settings(max_upload_mb=1, max_audio_seconds=180)
    app = create_app(s, context=open_context(s, MIGRATIONS))
    client = app.test_client()
    token = csrf_from(client)
    r = client.post("/feedback", data={"csrf_token": token, "category": "other",
                                       "voice": (io.BytesIO(b"\0" * (2 * 1024 * 1024)), "big.wav")},
                    content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 413
    assert "រហូតដល់ ៣ នាទី" in html and 'id="feedback-form"' in html


def test_a_recording_over_the_limit_keeps_what_the_villager_typed(make_settings):
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS
    from hub.web import create_app

    s = make_settings(max_upload_mb=1, max_audio_seconds=180)
    ctx = open_context(s, MIGRATIONS)
    client = create_app(s, context=ctx).test_client()
    typed = {"category": "roads", "body": "ផ្លូវខូចនៅភូមិខ្ញុំ <b>", "name": "សុខា", "phone": "012 345 678",
             "village": "ភូមិថ្មី", "consent_share": "1"}

    def post(size_mb: float):
        # The file first, as a phone sends it when the microphone is used before typing.
        data = {"csrf_token": csrf_from(client), "voice": (io.BytesIO(b"\0" * int(size_mb * 1024 * 1024)), "big.m4a"),
                **typed}
        return client.post("/feedback", data=data, content_type="multipart/form-data")

    r = post(2.5)  # over the app's 1 MB, under nginx's 3 MB
    html = r.get_data(as_text=True)
    assert r.status_code == 413 and "រហូតដល់ ៣ នាទី" in html
    assert ">ផ្លូវខូចនៅភូមិខ្ញុំ &lt;b&gt;</textarea>" in html
    for field in ("name", "phone", "village"):
        assert f'name="{field}" maxlength="100" value="{typed[field]}"' in html
    assert 'value="roads" required checked' in html and 'value="1" checked' in html
    assert ctx.db.execute("select count(*) from feedback").fetchone()[0] == 0
    assert ctx.db.execute("select count(*) from media").fetchone()[0] == 0
    # Past nginx's limit (only without nginx in front): the form comes back empty, nothing is read.
    r = post(3.5)
    assert r.status_code == 413 and "ផ្លូវខូច" not in r.get_data(as_text=True)


def test_nginx_error_pages_are_rendered_into_the_data_folder(ctx, app):
    folder = error_dir(ctx.settings)
    for status in NGINX_PAGES:
        html = (folder / f"{status}.html").read_text(encoding="utf-8")
        assert '<html lang="km">' in html and 'lang="en"' in html, status
        assert len(html.encode()) < 30 * 1024
    assert "៥ នាទី" in (folder / "413.html").read_text(encoding="utf-8")


def test_the_new_pages_stay_under_30_kb(ctx, client):
    code = send(client, body="x" * 200)
    for path in ("/welcome", f"/receipt/{code}?new=1", f"/receipt/{code}", "/mine", "/nothing", "/feedback"):
        r = client.get(path)
        assert len(r.data) < 30 * 1024, (path, len(r.data))


def test_pictures_stored_before_sizes_were_kept_get_them_when_the_app_starts(ctx, tmp_path):
    from hub.web import create_app

    png = tmp_path / "p.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=blue:s=320x200", "-frames:v", "1",
                    str(png)], check=True)
    image = ctx.media.prepare_image(png)
    image.update(width=None, height=None)  # as a hub made it before migration 0008
    nid = notices.create(ctx, {"title_km": "រូបភាព", "image_id": image["id"]}, media_rows=[image])
    client = create_app(ctx.settings, context=ctx).test_client()
    assert 'width="320" height="200"' in client.get(f"/notice/{nid}").get_data(as_text=True)


def test_a_crash_in_a_page_gets_the_khmer_500_page(app):
    @app.route("/boom")
    def boom():
        raise RuntimeError("boom")

    r = app.test_client().get("/boom")
    assert r.status_code == 500 and "មានបញ្ហាមួយកើតឡើងនៅលើហាប់" in r.get_data(as_text=True)


def test_the_voice_cache_keeps_a_bounded_number_of_files(ctx, client, monkeypatch):
    from hub.web import voice

    monkeypatch.setattr(voice, "MAX_CACHED", 3)
    for code in ("11", "12", "13", "14", "15"):
        assert got(client, f"/voice/say/your_number_is-{code}.mp3")[0] == 200
    assert len(list((ctx.settings.data_dir / "cache" / "voice").glob("*.mp3"))) <= 3
