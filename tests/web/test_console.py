"""The clerk console confirms what it did, says where the clerk is, and asks before what cannot be undone.

Flask's test client, so every page here works with JavaScript off.
"""

from __future__ import annotations

import csv
import io
import re
import stat
from datetime import datetime
from html import unescape
from zoneinfo import ZoneInfo

import pytest

from hub import feedback, notices, reply_templates
from hub.announce import store as announcements
from hub.core.clock import Clock
from hub.core.context import Context
from hub.sync import outbox
from hub.sync import state as sync_state
from hub.voice import transcripts
from tests.conftest import csrf_from
from tests.phone_audio import encode, tone_wav


@pytest.fixture(autouse=True)
def untrusted_clock(monkeypatch):
    """The hub's clock is trusted only when a test makes it so, whatever this machine's NTP says."""
    monkeypatch.setattr(Context, "clock", property(lambda self: Clock(self.db, ntp_check=lambda: False)))


@pytest.fixture
def en(clerk):
    """A logged-in clerk reading the console in English."""
    clerk.get("/lang/en")
    return clerk


@pytest.fixture(scope="module")
def m4a(tmp_path_factory):
    d = tmp_path_factory.mktemp("clip")
    return encode(tone_wav(d / "tone.wav", seconds=1.5), "m4a", d)


def flashes(html: str) -> list[str]:
    found = re.findall(r'<p class="ok flash"[^>]*>(.*?)</p>', html, re.S)
    return [unescape(re.sub(r"<[^>]+>", "", m)).strip() for m in found]


def follow(client, r) -> str:
    assert r.status_code == 303, r.get_data(as_text=True)[-1500:]
    return client.get(r.headers["Location"]).get_data(as_text=True)


# --- flash messages, the menu, confirm steps --------------------------------------------------------

def test_every_action_says_what_it_did(en, ctx, m4a):
    token = csrf_from(en, "/clerk/notices/new")
    page = follow(en, en.post("/clerk/notices/new", data={"csrf_token": token, "title_en": "Meeting"}))
    assert flashes(page) == ["Published. Villagers see the notice on the portal now."]
    assert flashes(en.get("/clerk/notices/").get_data(as_text=True)) == [], "a message is shown once"
    (n,) = notices.all_notices(ctx.db)
    page = follow(en, en.post(f"/clerk/notices/{n['id']}/edit", data={"csrf_token": token, "title_en": "Meeting 2"}))
    assert flashes(page) == ["Notice saved. Villagers see the new version now."]
    page = follow(en, en.post(f"/clerk/notices/{n['id']}/pin", data={"csrf_token": token, "pinned": "1"}))
    assert flashes(page) == ["Pinned to the top of the portal."]
    page = follow(en, en.post(f"/clerk/notices/{n['id']}/expire", data={"csrf_token": token}))
    assert flashes(page) == ["Expired. The notice is no longer on the portal."]

    item = feedback.submit(ctx, {"category": "water", "body": "the well"})
    page = follow(en, en.post(f"/clerk/feedback/{item['id']}", data={"csrf_token": token, "status": "new",
                                                                    "reply": "We come on Monday"}))
    code = feedback.format_receipt(item["receipt"])
    assert flashes(page) == [f"Answer saved. The villager sees it with receipt number {code}."]
    page = follow(en, en.post(f"/clerk/feedback/{item['id']}", data={"csrf_token": token, "status": "closed",
                                                                    "reply": "We come on Monday"}))
    assert flashes(page) == ["Saved: Closed."]

    with open(m4a, "rb") as f:
        page = follow(en, en.post("/clerk/announcements/new", data={
            "csrf_token": token, "title": "Vaccination", "when": "now", "audio": (f, "a.m4a")},
            content_type="multipart/form-data"))
    assert flashes(page) == ["It plays in a moment, before anything scheduled."]
    with open(m4a, "rb") as f:
        page = follow(en, en.post("/clerk/announcements/new", data={
            "csrf_token": token, "title": "Market day", "when": "recurring", "freq": "daily",
            "date": "2030-01-01", "time": "07:00", "audio": (f, "a.m4a")}, content_type="multipart/form-data"))
    assert flashes(page) == ["Saved. Here is when it plays."]
    (a,) = [x for x in announcements.listing(ctx.db) if x["title"] == "Market day"]
    page = follow(en, en.post(f"/clerk/announcements/{a['id']}/stop", data={"csrf_token": token}))
    assert flashes(page) == ["Stopped. It will not play again."]

    page = follow(en, en.post("/clerk/sync/now", data={"csrf_token": token}))
    assert flashes(page) == ["Sync is off on this hub, so there is nothing to start."]
    page = follow(en, en.post("/clerk/clock", data={"csrf_token": token, "device_epoch_ms": "1900000000000",
                                                   "next": "/clerk/"}))
    assert flashes(page) == ["The hub's clock is set. Scheduled announcements play on time again."]


@pytest.mark.parametrize(("path", "entry"), [
    ("/clerk/", "/clerk/"),
    ("/clerk/notices/", "/clerk/notices/"),
    ("/clerk/notices/new", "/clerk/notices/"),
    ("/clerk/feedback/", "/clerk/feedback/"),
    ("/clerk/feedback/templates", "/clerk/feedback/"),
    ("/clerk/sync/", "/clerk/sync/"),
    ("/clerk/announcements/week", "/clerk/announcements/"),
    ("/clerk/voice/prompts", "/clerk/voice/prompts"),
    ("/clerk/poster/", "/clerk/poster/"),
])
def test_the_menu_marks_the_current_page(clerk, path, entry):
    html = clerk.get(path).get_data(as_text=True)
    menu = re.search(r'<nav class="menu".*?</nav>', html, re.S).group(0)
    current = re.findall(r'<a href="([^"]+)" aria-current="page">', menu)
    assert current == [entry]


def test_expire_and_stop_ask_first_and_work_without_javascript(en, ctx, m4a):
    nid = notices.create(ctx, {"title_en": "Road closed"})
    listing = en.get("/clerk/notices/").get_data(as_text=True)
    # The list links to a question; nothing is expired by following it.
    assert f'href="/clerk/notices/{nid}/expire"' in listing
    ask = en.get(f"/clerk/notices/{nid}/expire").get_data(as_text=True)
    assert "Expire this notice now?" in ask and "Road closed" in ask and "No, go back" in ask
    assert notices.current(ctx.db, ctx.clock.now(), 10, 0), "asking expires nothing"
    form = re.search(r'<div class="card confirm">.*?<form method="post" action="([^"]+)"', ask, re.S).group(1)
    assert form == f"/clerk/notices/{nid}/expire"
    follow(en, en.post(form, data={"csrf_token": csrf_from(en, "/clerk/notices/"), "confirmed": "1"}))
    assert notices.current(ctx.db, ctx.clock.now(), 10, 0) == []

    row = ctx.media.prepare_audio(m4a, 300)
    aid = announcements.create(ctx, {"title": "Rice seed", "audio_id": row["id"],
                                     "rrule": "DTSTART;TZID=Asia/Phnom_Penh:20300101T070000\nRRULE:FREQ=DAILY"},
                               [row])
    assert f'href="/clerk/announcements/{aid}/stop"' in en.get("/clerk/announcements/").get_data(as_text=True)
    ask = en.get(f"/clerk/announcements/{aid}/stop").get_data(as_text=True)
    assert "Stop this announcement?" in ask and "Rice seed" in ask
    assert [a["id"] for a in announcements.listing(ctx.db)] == [aid]
    follow(en, en.post(f"/clerk/announcements/{aid}/stop", data={"csrf_token": csrf_from(en, "/clerk/")}))
    assert announcements.listing(ctx.db) == []


# --- the inbox ----------------------------------------------------------------------------------------

def test_search_by_receipt_phone_or_words(en, ctx):
    a = feedback.submit(ctx, {"category": "water", "body": "អណ្តូងខូច នៅភូមិថ្មី", "phone": "012 345 678"})
    b = feedback.submit(ctx, {"category": "roads", "body": "the bridge is broken", "name": "Dara"})

    def found(q):
        html = en.get("/clerk/feedback/", query_string={"q": q}).get_data(as_text=True)
        return {i for i in (a["id"], b["id"]) if f"/clerk/feedback/{i}" in html}

    code = a["receipt"]
    assert found(code) == {a["id"]}
    assert found(f"{code[:3]}-{code[3:]}") == {a["id"]}
    assert found(code.translate(str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩"))) == {a["id"]}
    assert found("012345678") == {a["id"]} and found("345 678") == {a["id"]}
    assert found("អណ្តូង") == {a["id"]}, "Khmer words match across the stored break points"
    assert found("BRIDGE") == {b["id"]} and found("dara") == {b["id"]}
    assert found("nothing like this") == set()
    assert found("%") == set() and found("_") == set(), "LIKE wildcards are searched as text"


def test_unread_counts_and_whole_rows_are_links(en, ctx):
    items = [feedback.submit(ctx, {"category": c, "body": f"item {i}"}) for i, c in
             enumerate(("water", "water", "health"))]
    html = en.get("/clerk/feedback/").get_data(as_text=True)
    assert re.search(r'id="unread-count">3<span class="sr"> unread', html)
    assert re.search(r'Feedback <span class="count">3<span class="sr"> unread', html), "the menu shows it too"
    assert "Water and wells (2 unread)" in html and "Health (1 unread)" in html
    rows = re.findall(r'<tr class="rowlink[^"]*">.*?</tr>', html, re.S)
    assert len(rows) == 3 and all('class="stretch" href="/clerk/feedback/' in r for r in rows)
    en.get(f"/clerk/feedback/{items[0]['id']}")
    html = en.get("/clerk/feedback/").get_data(as_text=True)
    assert re.search(r'id="unread-count">2<', html) and "Water and wells (1 unread)" in html
    only = en.get("/clerk/feedback/?unread=1").get_data(as_text=True)
    assert f"/clerk/feedback/{items[0]['id']}" not in only and f"/clerk/feedback/{items[1]['id']}" in only
    # Opening an item is not a change the district needs: nothing more to sync.
    outbox.scan(ctx)
    before = outbox.counts(ctx.db)["pending"]
    en.get(f"/clerk/feedback/{items[1]['id']}")
    assert outbox.unscanned(ctx.db) == 0 and outbox.counts(ctx.db)["pending"] == before


def test_reply_templates_are_written_edited_used_and_deleted(en, ctx):
    token = csrf_from(en, "/clerk/feedback/templates")
    page = follow(en, en.post("/clerk/feedback/templates", data={
        "csrf_token": token, "title": "Thanks", "body": "Thank you, we will look at it this week."}))
    assert flashes(page) == ["Template added."]
    (t,) = reply_templates.all_templates(ctx.db)
    page = follow(en, en.post(f"/clerk/feedback/templates/{t['id']}", data={
        "csrf_token": token, "title": "Thanks", "body": "Thank you, the chief has read it."}))
    assert flashes(page) == ["Template saved."]
    r = en.post("/clerk/feedback/templates", data={"csrf_token": token, "title": "", "body": ""})
    assert r.status_code == 400 and "A template needs a title and a text." in r.get_data(as_text=True)

    item = feedback.submit(ctx, {"category": "land", "body": "boundary"})
    html = en.get(f"/clerk/feedback/{item['id']}").get_data(as_text=True)
    link = f"/clerk/feedback/{item['id']}?template={t['id']}"
    assert link in html
    html = en.get(link).get_data(as_text=True)
    reply = re.search(r'<textarea id="reply" name="reply"[^>]*>(.*?)</textarea>', html, re.S).group(1)
    assert reply.replace("\u200b", "") == "Thank you, the chief has read it."

    ask = en.get(f"/clerk/feedback/templates/{t['id']}/delete").get_data(as_text=True)
    assert "Delete this template?" in ask and reply_templates.get(ctx.db, t["id"])
    page = follow(en, en.post(f"/clerk/feedback/templates/{t['id']}/delete", data={"csrf_token": token}))
    assert flashes(page) == ["Template deleted."] and reply_templates.all_templates(ctx.db) == []


def test_the_transcript_is_shown_inside_the_feedback_item(en, ctx, m4a):
    audio = ctx.media.prepare_audio(m4a, 300)
    item = feedback.store(ctx, feedback.validate({"category": "water", "lang": "ko"}), audio)
    transcripts.enqueue_new(ctx)
    html = en.get(f"/clerk/feedback/{item['id']}").get_data(as_text=True)
    assert 'id="transcript"' in html and "Waiting for the transcriber." in html
    (t,) = transcripts.listing(ctx.db)
    transcripts.correct(ctx, t["id"], "the well by the pagoda is dry", "clerk1")
    html = en.get(f"/clerk/feedback/{item['id']}").get_data(as_text=True)
    block = re.search(r'<div id="transcript">.*?</div>', html, re.S).group(0)
    assert "the well by the pagoda is dry" in block and "Checked by a clerk" in block
    assert f"/clerk/voice/{t['id']}" in block


# --- spoken replies --------------------------------------------------------------------------------

def test_a_spoken_reply_is_stored_heard_on_the_receipt_and_synced(en, ctx, m4a):
    item = feedback.submit(ctx, {"category": "water", "body": "the pump"})
    token = csrf_from(en, f"/clerk/feedback/{item['id']}")
    form = en.get(f"/clerk/feedback/{item['id']}").get_data(as_text=True)
    assert re.search(r'<input type="file" id="reply_audio" name="reply_audio" accept="audio/\*" capture>', form)
    with open(m4a, "rb") as f:
        page = follow(en, en.post(f"/clerk/feedback/{item['id']}", data={
            "csrf_token": token, "status": "new", "reply": "", "reply_audio": (f, "answer.m4a")},
            content_type="multipart/form-data"))
    code = feedback.format_receipt(item["receipt"])
    assert flashes(page) == [f"Spoken answer saved. The villager hears it with receipt number {code}."]
    row = feedback.get(ctx.db, item["id"])
    assert row["status"] == "answered" and row["reply_audio_name"].endswith(".web.mp3")
    assert 1200 < row["reply_audio_ms"] < 1800
    for name in (row["reply_audio_name"],):
        mode = stat.S_IMODE(ctx.media.path(name).stat().st_mode)
        assert mode == 0o640, oct(mode)
    receipt = en.get(f"/receipt/{item['receipt']}").get_data(as_text=True)
    assert f'src="/media/{row["reply_audio_name"]}"' in receipt
    with en.get(f"/media/{row['reply_audio_name']}") as r:
        assert r.status_code == 200 and r.mimetype == "audio/mpeg"

    outbox.scan(ctx)
    bodies = [r["data"] for r in outbox.pending(ctx.db, 100) if r["kind"].startswith("feedback")]
    assert any(d.get("reply_audio_id") == row["reply_audio_id"] for d in bodies)
    media = {m["media_id"] for m in outbox.media_pending(ctx.db)}
    assert row["reply_audio_id"] in media, "the spoken reply's file goes up like a villager's voice"

    # Taking it away is a change too; a damaged upload changes nothing.
    r = en.post(f"/clerk/feedback/{item['id']}", data={
        "csrf_token": token, "status": "answered", "reply": "", "reply_audio": (io.BytesIO(b"x" * 500), "a.m4a")},
        content_type="multipart/form-data")
    assert r.status_code == 415 and feedback.get(ctx.db, item["id"])["reply_audio_id"] == row["reply_audio_id"]
    follow(en, en.post(f"/clerk/feedback/{item['id']}", data={
        "csrf_token": token, "status": "answered", "reply": "", "remove_reply_audio": "1"}))
    assert feedback.get(ctx.db, item["id"])["reply_audio_id"] is None
    assert "/media/" not in en.get(f"/receipt/{item['receipt']}").get_data(as_text=True)


def test_rows_without_a_spoken_reply_travel_as_before(ctx):
    """Adding the column must not make every old row look changed (a revision each, on a paid line)."""
    item = feedback.submit(ctx, {"category": "water", "body": "x"})
    (row,) = ctx.db.query("select * from feedback where id = ?", [item["id"]])
    assert "reply_audio_id" not in feedback.outgoing(row)


# --- sync -------------------------------------------------------------------------------------------

def offline_app(make_settings):
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS
    from hub.web import create_app

    s = make_settings(central_url="http://127.0.0.1:9/", central_token="t" * 40)
    c = open_context(s, MIGRATIONS)
    return c, create_app(s, context=c)


def login(client, ctx):
    from hub import accounts

    accounts.add_user(ctx.db, "clerk1", "correct horse", "clerk")
    client.post("/clerk/login", data={"username": "clerk1", "password": "correct horse",
                                      "csrf_token": csrf_from(client, "/clerk/login")})
    client.get("/lang/en")


def test_the_sync_page_speaks_plainly_and_counts_what_is_unsent(make_settings):
    from hub.sync.engine import run_cycle

    c, app = offline_app(make_settings)
    client = app.test_client()
    login(client, c)
    page = client.get("/clerk/sync/").get_data(as_text=True)
    assert "Not synced yet. 0 messages waiting" in page
    for i in range(3):
        feedback.submit(c, {"category": "water", "body": f"m{i}"})
    out = run_cycle(c)  # nothing listens on port 9: the uplink is down
    assert not out.online and sync_state.get_state(c.db, "last_error")
    outbox.scan(c)  # as a cycle that reached the district would have; three records wait in the outbox
    first = feedback.inbox(c.db)[0]
    feedback.set_status(c, first["id"], "answered", "coming")  # a revision, not yet scanned
    html = client.get("/clerk/sync/").get_data(as_text=True)
    since = datetime.fromisoformat(sync_state.get_state(c.db, "offline_since"))
    local = since.astimezone(ZoneInfo("Asia/Phnom_Penh"))
    hm = f"{(local.hour % 12) or 12}:{local.minute:02d}"  # as a clock is read aloud
    m = re.search(r"Offline since (.+?), (\d+) messages waiting; they will go when the uplink is up\.", html)
    assert m and hm in m.group(1), html[html.find("sync-summary"):][:600]
    waiting = int(m.group(2))
    assert int(re.search(r'<td id="waiting">(\d+)</td>', html).group(1)) == waiting
    # The outbox's own count, once it has looked at every table, is the same number.
    outbox.scan(c)
    assert outbox.counts(c.db)["pending"] == waiting == 4
    for raw in ("Errno", "Connection refused", "Traceback", "not online:", "NotOnline", "127.0.0.1:9"):
        assert raw not in html
    c.close()


def test_sync_now_makes_hub_sync_run_a_cycle_at_once(make_settings):
    import time

    from hub.sync.daemon import Sync

    c, app = offline_app(make_settings)
    client = app.test_client()
    login(client, c)
    daemon = Sync(c.settings)
    daemon.setup()
    try:
        daemon.next_at = time.monotonic() + 3600  # its next turn is an hour away
        daemon.poll()
        assert daemon.last is None
        page = follow(client, client.post("/clerk/sync/now", data={"csrf_token": csrf_from(client, "/clerk/sync/")}))
        assert flashes(page) == ["Sync starts within a few seconds. Reload this page to see how it went."]
        daemon.poll()
        assert daemon.last is not None and not daemon.last.online
        ran = daemon.last
        daemon.poll()
        assert daemon.last is ran, "one press, one cycle"
    finally:
        daemon.teardown()
        c.close()


# --- the CSV ------------------------------------------------------------------------------------------

def export(client, lang):
    client.get(f"/lang/{lang}")
    r = client.get("/clerk/feedback/export.csv")
    assert r.mimetype == "text/csv" and r.mimetype_params.get("charset") == "utf-8"
    raw = r.get_data()
    assert raw.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(raw.decode("utf-8")[1:])))


def test_the_csv_speaks_the_clerks_language_in_local_time_and_is_formula_safe(clerk, ctx):
    a = feedback.submit(ctx, {"category": "water", "body": "=HYPERLINK(\"http://x\")", "name": "-1+1",
                              "village": "@SUM(A1)"})
    feedback.submit(ctx, {"category": "health", "body": "ឈឺក្បាល\u200bខ្លាំង"})
    feedback.set_status(ctx, a["id"], "in_progress", "+ we come")
    km_rows = export(clerk, "km")
    en_rows = export(clerk, "en")
    assert km_rows[0][0] == "លេខបង្កាន់ដៃ" and en_rows[0][0] == "Receipt number"
    head = en_rows[0]
    assert head[:6] == ["Receipt number", "Received", "Sent from", "Category", "Status", "Message"]
    by_receipt = {r[0]: dict(zip(head, r, strict=True)) for r in en_rows[1:]}
    first = by_receipt[a["receipt"]]
    assert first["Category"] == "Water and wells" and first["Status"] == "Answered"
    km_first = {r[0]: r for r in km_rows[1:]}[a["receipt"]]
    assert km_first[3] == "ទឹក និងអណ្តូង"
    row = feedback.get(ctx.db, a["id"])
    local = datetime.fromisoformat(row["created_at"]).astimezone(ZoneInfo("Asia/Phnom_Penh"))
    assert first["Received"] == local.strftime("%Y-%m-%d %H:%M")
    assert first["Message"] == "'=HYPERLINK(\"http://x\")" and first["Name"] == "'-1+1"
    assert first["Village"] == "'@SUM(A1)" and first["Answer"] == "'+ we come"
    second = [r for k, r in by_receipt.items() if k != a["receipt"]][0]
    assert second["Message"] == "ឈឺក្បាលខ្លាំង", "no zero-width spaces in a spreadsheet"
    empty = [v for r in en_rows[1:] for v in r if v in ("", "'")]
    assert empty and set(empty) == {""}, "empty cells stay empty: no stray '"


# --- dashboard, tables, clock banner ---------------------------------------------------------------

def test_the_dashboard_chart_has_a_name_and_a_table_of_the_same_numbers(en, ctx):
    for _ in range(2):
        feedback.submit(ctx, {"category": "school", "body": "x"})
    html = en.get("/clerk/").get_data(as_text=True)
    svg = re.search(r"<svg[^>]*class=\"chart\"[^>]*>", html).group(0)
    assert 'role="img"' in svg and 'aria-label="Feedback per week and category' in svg
    assert 'aria-describedby="chart-table"' in svg
    table = re.search(r'<table id="chart-table">.*?</table>', html, re.S).group(0)
    assert "<caption" in table and re.search(r'<th scope="row">School</th>(<td>0</td>){7}<td>2</td>', table)


def test_no_table_has_an_empty_header(en, ctx, m4a):
    notices.create(ctx, {"title_en": "A notice"})
    row = ctx.media.prepare_audio(m4a, 300)
    aid = announcements.create(ctx, {"title": "x", "audio_id": row["id"]}, [row])
    assert aid
    for path in ("/clerk/notices/", "/clerk/announcements/", "/clerk/sync/", "/clerk/feedback/", "/clerk/"):
        html = en.get(path).get_data(as_text=True)
        assert not re.search(r"<th[^>]*>\s*</th>", html), path


def test_the_clock_banner_stays_until_the_clock_is_trusted_then_goes(en, ctx):
    for path in ("/clerk/", "/clerk/notices/", "/clerk/feedback/"):
        html = en.get(path).get_data(as_text=True)
        assert 'id="clock-banner" role="alert"' in html and "The hub is not sure of the time." in html
    Clock(ctx.db, ntp_check=lambda: False).set_trusted_time("central", datetime.now().timestamp())
    for path in ("/clerk/", "/clerk/notices/", "/clerk/feedback/"):
        assert 'id="clock-banner"' not in en.get(path).get_data(as_text=True)


def test_waiting_for_the_first_sync_is_a_quiet_note_on_two_pages_not_an_alarm_everywhere(make_settings):
    c, app = offline_app(make_settings)
    client = app.test_client()
    login(client, c)
    html = client.get("/clerk/").get_data(as_text=True)
    assert 'id="clock-banner" role="status"' in html and "waiting for the district server" in html
    assert 'role="alert"' not in html
    for path in ("/clerk/notices/", "/clerk/feedback/", "/clerk/sync/"):
        assert 'id="clock-banner"' not in client.get(path).get_data(as_text=True), path
    # Once the uplink is known to be down, nothing will vouch for the clock by itself: say so everywhere.
    sync_state.set_state(c.db, offline_since="2026-12-02T03:02:00+00:00")
    for path in ("/clerk/", "/clerk/notices/", "/clerk/feedback/"):
        assert 'id="clock-banner" role="alert"' in client.get(path).get_data(as_text=True), path
    c.close()
