"""The clerk console's announcement pages, in Khmer, through Flask's test client (no JavaScript)."""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub import notices
from hub.announce import store
from hub.core.khmer import KHMER_DIGITS, strip_break_points
from tests.conftest import csrf_from
from tests.phone_audio import encode, tone_wav

NEW = "/clerk/announcements/new"


@pytest.fixture(scope="module")
def m4a(tmp_path_factory):
    d = tmp_path_factory.mktemp("clip")
    return encode(tone_wav(d / "tone.wav", seconds=1.0), "m4a", d)


def km(text: str) -> str:
    return text.translate(KHMER_DIGITS)


def month_with_mondays_and_thursdays(today: date) -> tuple[date, date]:
    """From tomorrow to the end of this month, or all of next month if none are left."""
    start = today + timedelta(days=1)
    end = date(today.year, today.month, calendar.monthrange(today.year, today.month)[1])
    left = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    if not any(d.weekday() in (0, 3) for d in left):
        start = end + timedelta(days=1)
        end = date(start.year, start.month, calendar.monthrange(start.year, start.month)[1])
    return start, end


def rows_of(html: str) -> list[str]:
    table = html[html.index('<table class="week">'):]
    return [re.sub(r"\s+", " ", r) for r in table.split("<tr")[1:]]


def test_monday_and_thursday_at_seven_twice_until_the_end_of_the_month(ctx, clerk, m4a):
    """The Done-when sentence, in the Khmer console, with JavaScript off (plain forms)."""
    form_page = clerk.get(NEW).get_data(as_text=True)
    assert "<script" not in form_page.split("</nav>", 1)[1] or "clock.js" in form_page
    assert "ការប្រកាសថ្មី" in form_page and "ព្រហស្បតិ៍" in form_page
    today = ctx.clock.now().astimezone(ZoneInfo("Asia/Phnom_Penh")).date()
    start, end = month_with_mondays_and_thursdays(today)
    with open(m4a, "rb") as f:
        r = clerk.post(NEW, data={
            "csrf_token": csrf_from(clerk, NEW), "title": "ប្រជុំឃុំ", "when": "recurring",
            "freq": "weekdays", "days": ["0", "3"], "date": start.isoformat(), "time": "07:00",
            "end_date": end.isoformat(), "repeats": "2", "audio": (f, "voice.m4a"),
        }, content_type="multipart/form-data")
    assert r.status_code == 303, r.get_data(as_text=True)[-2000:]
    (a,) = store.listing(ctx.db)
    first_day = start + timedelta(days=min((w - start.weekday()) % 7 for w in (0, 3)))
    assert a["rrule"].startswith(f"DTSTART;TZID=Asia/Phnom_Penh:{start:%Y%m%d}T070000\n"
                                 "RRULE:FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=")
    assert a["repeats"] == 2 and a["title"] == "ប្រជុំឃុំ"
    week = clerk.get(r.headers["Location"])
    html = week.get_data(as_text=True)
    assert week.status_code == 200 and len(week.data) < 30_000
    assert "បានរក្សាទុក" in html  # "Saved"
    rows = rows_of(html)
    monday = date.fromisoformat(re.search(r"start=(\d{4}-\d\d-\d\d)", r.headers["Location"])[1])
    assert monday.weekday() == 0 and monday <= first_day < monday + timedelta(days=7)
    for i, row in enumerate(rows):
        d = monday + timedelta(days=i)
        plays = d.weekday() in (0, 3) and start <= d <= end
        assert ("០៧:០០ · ប្រជុំឃុំ" in row) is plays, (d, row)
        if plays:
            assert "២ ដងជាប់គ្នា" in row and "នឹងផ្សាយ" in row  # twice; will play
    index = clerk.get("/clerk/announcements/").get_data(as_text=True)
    assert "រៀងរាល់ថ្ងៃច័ន្ទ, ព្រហស្បតិ៍ ម៉ោង ០៧:០០" in index
    assert km(f"រហូតដល់ថ្ងៃទី {end.day}") in index
    # The browser preview plays the small web copy of the upload.
    src = re.search(r'<audio controls preload="none" src="(/media/[^"]+)"', index)[1]
    media = clerk.get(src)
    assert media.status_code == 200 and media.mimetype == "audio/mpeg"
    media.close()


def test_week_view_in_english_and_the_next_week(ctx, clerk, m4a):
    with open(m4a, "rb") as f:
        clerk.post(NEW, data={"csrf_token": csrf_from(clerk, NEW), "title": "Daily news",
                              "when": "recurring", "freq": "daily", "date": "2030-01-06",
                              "time": "12:30", "repeats": "1", "audio": (f, "a.m4a")},
                   content_type="multipart/form-data")
    html = clerk.get("/clerk/announcements/week?start=2030-01-09&lang=en").get_data(as_text=True)
    rows = rows_of(html)
    assert "Monday 7 January 2030" in rows[0] and "12:30 · Daily news" in rows[0]
    assert all("12:30 · Daily news" in row for row in rows)
    assert 'href="/clerk/announcements/week?start=2030-01-14"' in html
    before = clerk.get("/clerk/announcements/week?start=2029-12-31&lang=en").get_data(as_text=True)
    assert "Daily news" in rows_of(before)[6] and "Daily news" not in rows_of(before)[5]


def test_quiet_hours_move_a_routine_item_and_the_week_says_so(ctx, clerk, m4a):
    with open(m4a, "rb") as f:
        r = clerk.post(NEW, data={"csrf_token": csrf_from(clerk, NEW), "title": "late",
                                  "when": "once", "date": "2030-03-05", "time": "22:00",
                                  "audio": (f, "a.m4a")}, content_type="multipart/form-data")
    assert r.status_code == 303
    assert "start=2030-03-04" in r.headers["Location"]
    rows = rows_of(clerk.get(r.headers["Location"] + "&lang=en").get_data(as_text=True))
    assert "late" not in rows[1]
    assert "06:00 · late" in rows[2] and "Moved to the end of the quiet hours" in rows[2]


def test_take_the_audio_of_a_notice(ctx, clerk, m4a):
    media = ctx.media.prepare_audio(m4a)
    nid = notices.create(ctx, {"title_km": "ការចាក់វ៉ាក់សាំង", "audio_id": media["id"]},
                         media_rows=[media])
    page = clerk.get(NEW).get_data(as_text=True)
    assert f'<option value="{nid}">' in page
    r = clerk.post(NEW, data={"csrf_token": csrf_from(clerk, NEW), "when": "now",
                              "notice_id": nid})
    assert r.status_code == 303 and "queued=1" in r.headers["Location"]
    (a,) = store.listing(ctx.db, include_stopped=True)
    assert a["audio_id"] == media["id"] and a["notice_id"] == nid
    assert strip_break_points(a["title"]) == "ការចាក់វ៉ាក់សាំង"
    (o,) = ctx.db.query("select * from occurrences")
    assert o["play_now"] == 1 and o["state"] == "due"
    assert "វានឹងផ្សាយបន្តិចទៀតនេះ" in clerk.get(r.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize("fields,message", [
    ({"when": "once", "date": "2001-01-01", "time": "07:00"}, "ពេលវេលានោះបានកន្លងផុតហើយ។"),
    ({"when": "recurring", "freq": "weekdays", "date": "2030-01-01", "time": "07:00"},
     "សូមជ្រើសរើសយ៉ាងហោចណាស់មួយថ្ងៃក្នុងសប្តាហ៍។"),
    ({"when": "recurring", "freq": "daily", "date": "2030-01-05", "time": "07:00",
      "end_date": "2030-01-01"}, "ថ្ងៃចុងក្រោយនៅមុនថ្ងៃដំបូង។"),
    ({"when": "once", "date": "tomorrow", "time": "07:00"},
     "សូមបញ្ចូលកាលបរិច្ឆេទ និងម៉ោងម្តងទៀត។"),
    ({"when": "now"}, "សូមផ្ទុកឡើងសំឡេងថត ឬជ្រើសរើសសេចក្តីជូនដំណឹងដែលមានសំឡេង។"),
])
def test_mistakes_get_a_khmer_message_and_nothing_is_stored(ctx, clerk, fields, message):
    r = clerk.post(NEW, data={"csrf_token": csrf_from(clerk, NEW), "title": "x", **fields})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert message in html
    assert 'value="x"' in html  # what the clerk typed is kept
    assert store.listing(ctx.db, include_stopped=True) == []


def test_a_broken_upload_is_refused_and_leaves_no_files(ctx, clerk, tmp_path):
    bad = tmp_path / "voice.m4a"
    bad.write_bytes(b"not sound at all" * 100)
    with open(bad, "rb") as f:
        r = clerk.post(NEW, data={"csrf_token": csrf_from(clerk, NEW), "when": "now",
                                  "audio": (f, "voice.m4a")}, content_type="multipart/form-data")
    assert r.status_code == 415
    assert "ទម្រង់" in r.get_data(as_text=True) or "ខូច" in r.get_data(as_text=True)
    assert store.listing(ctx.db, include_stopped=True) == []
    assert [p for p in ctx.settings.media_dir.iterdir()] == []


def test_missed_occurrences_are_shown_and_can_be_played_again(ctx, clerk, m4a):
    aid = store.create(ctx, {"audio_id": ctx.media.add_audio(m4a), "rrule": None,
                             "title": "ទឹក"})
    (o,) = ctx.db.query("select id from occurrences")
    store.finish(ctx.db, ctx.hub_id, o["id"], "missed", ctx.clock.now(), True,
                 detail="too late: 42 min after its time")
    html = clerk.get("/clerk/announcements/").get_data(as_text=True)
    missed = html[html.index("បានខកខាន"):]
    assert "ទឹក" in missed and "យឺត ៤២ នាទី" in missed
    token = csrf_from(clerk, "/clerk/announcements/")
    r = clerk.post(f"/clerk/announcements/{aid}/play", data={"csrf_token": token})
    assert r.status_code == 303
    assert store.states(ctx.db) == {"missed": 1, "due": 1}
    assert clerk.post("/clerk/announcements/nope/play",
                      data={"csrf_token": token}).status_code == 404


def test_stop_cancels_a_schedule(ctx, clerk, m4a):
    with open(m4a, "rb") as f:
        clerk.post(NEW, data={"csrf_token": csrf_from(clerk, NEW), "when": "recurring",
                              "freq": "daily", "date": "2030-01-01", "time": "07:00",
                              "audio": (f, "a.m4a")}, content_type="multipart/form-data")
    (a,) = store.listing(ctx.db)
    r = clerk.post(f"/clerk/announcements/{a['id']}/stop",
                   data={"csrf_token": csrf_from(clerk, "/clerk/announcements/")})
    assert r.status_code == 303 and store.listing(ctx.db) == []
    assert "មិនទាន់មានការកំណត់ពេលទេ។" in clerk.get("/clerk/announcements/").get_data(as_text=True)


def test_proof_of_play_log_and_csv(ctx, clerk, m4a):
    store.create(ctx, {"audio_id": ctx.media.add_audio(m4a), "rrule": None, "title": "ផ្លូវ",
                       "repeats": 3})
    (o,) = ctx.db.query("select id from occurrences")
    t = datetime(2026, 11, 23, 0, 0, 1, tzinfo=ZoneInfo("UTC"))
    store.mark_playing(ctx.db, o["id"], t)
    store.finish(ctx.db, ctx.hub_id, o["id"], "played", t, True, started=t,
                 ended=t + timedelta(seconds=14))
    page = clerk.get("/clerk/announcements/log")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and len(page.data) < 30_000
    assert "ផ្លូវ" in html and "បានផ្សាយ" in html and "០៧:០០" in html and ">១៤<" in html
    csv = clerk.get("/clerk/announcements/log.csv")
    assert csv.mimetype == "text/csv" and "play-log.csv" in csv.headers["Content-Disposition"]
    text = csv.get_data(as_text=True)
    assert text.startswith("\ufeffid,created_at,title,due_at,started_at,ended_at,duration_ms")
    assert ",ផ្លូវ," in text and ",14000,3,played," in text


def test_pages_need_a_login_and_stay_small(ctx, client, clerk):
    for path in ("/clerk/announcements/", NEW, "/clerk/announcements/week",
                 "/clerk/announcements/log"):
        r = clerk.get(path)
        assert r.status_code == 200 and len(r.data) < 30_000, path
        assert "http://" not in r.get_data(as_text=True).replace("http://localhost", "")
    clerk.post("/clerk/logout", data={"csrf_token": csrf_from(clerk, "/clerk/announcements/")})
    r = client.get("/clerk/announcements/log.csv")
    assert r.status_code == 302 and "/clerk/login" in r.headers["Location"]
    assert client.post(NEW, data={}).status_code == 400  # no CSRF token: refused first


def test_the_menu_has_announcements(clerk):
    html = clerk.get("/clerk/").get_data(as_text=True)
    assert 'href="/clerk/announcements/"' in html and "ការប្រកាស" in html
