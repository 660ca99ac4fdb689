"""Malformed fields the attack report found: each a clear 400 (or an ordinary page), never a 500, nothing stored."""

from __future__ import annotations

import pytest

from hub import feedback, notices
from tests.conftest import csrf_from
from tests.phone_audio import tone_wav


@pytest.mark.parametrize("path", ["/?page=99999999999999999999999", "/?page=-5", "/?page=%D9%A3",
                                  "/clerk/feedback/?page=99999999999999999999999",
                                  "/clerk/announcements/week?start=9999-12-31",
                                  "/clerk/announcements/week?start=0001-01-01"])
def test_query_parameters_never_give_500(clerk, path):
    assert clerk.get(path).status_code == 200


@pytest.mark.parametrize("fields", [
    {"body": "the well\x00 is dry"},
    {"body": "bell \x07 and escape \x1b[31m"},
    {"body": "ok", "name": "Sok\nDara"},
    {"body": "ok", "village": "x" * 101},
    {"body": "ok", "phone": "012<script>"},
])
def test_feedback_fields_are_checked_before_anything_is_stored(ctx, client, fields):
    r = client.post("/feedback", data={"csrf_token": csrf_from(client), "category": "water", **fields})
    assert r.status_code == 400 and 'class="error"' in r.get_data(as_text=True)
    assert ctx.db.execute("select count(*) from feedback").fetchone()[0] == 0


@pytest.mark.parametrize("fields", [
    {"title_km": "ប្រជុំ\x00"},
    {"title_en": "x" * 400_000},
    {"title_km": "ប្រជុំ", "body_en": "y" * 1_000_000},
    {"title_km": "ប្រជុំ", "expires_at": "0001-01-01T00:00"},
])
def test_notice_fields_are_refused_with_a_message(clerk, ctx, fields):
    r = clerk.post("/clerk/notices/new", data={"csrf_token": csrf_from(clerk, "/clerk/notices/new"), **fields})
    assert r.status_code == 400 and 'class="error"' in r.get_data(as_text=True)
    assert ctx.db.execute("select count(*) from notices").fetchone()[0] == 0


@pytest.mark.parametrize("title", ["Meeting\x00", "x" * 300_000])
def test_announcement_titles_are_refused_with_a_message(clerk, ctx, title, tmp_path):
    audio = ctx.media.prepare_audio(tone_wav(tmp_path / "a.wav", seconds=1.0))
    nid = notices.create(ctx, {"title_km": "ប្រជុំ", "audio_id": audio["id"]}, [audio])
    token = csrf_from(clerk, "/clerk/announcements/new")
    ok = clerk.post("/clerk/announcements/new", data={"csrf_token": token, "when": "now", "notice_id": nid})
    assert ok.status_code == 303  # the same form with a fair title is stored
    r = clerk.post("/clerk/announcements/new", data={"csrf_token": token, "when": "now", "title": title,
                                                     "notice_id": nid})
    assert r.status_code == 400 and 'class="error"' in r.get_data(as_text=True)
    assert ctx.db.execute("select count(*) from announcements").fetchone()[0] == 1


def test_replies_and_clock_fields_are_refused_with_a_message(clerk, ctx):
    item = feedback.submit(ctx, {"category": "water", "body": "dry"})
    token = csrf_from(clerk, f"/clerk/feedback/{item['id']}")
    r = clerk.post(f"/clerk/feedback/{item['id']}", data={"csrf_token": token, "status": "answered",
                                                          "reply": "tomorrow\x00"})
    assert r.status_code == 400
    assert feedback.get(ctx.db, item["id"])["reply"] == ""
    for millis in ("9" * 400, "1e20", "-5", "١٢٣"):
        r = clerk.post("/clerk/clock", data={"csrf_token": token, "device_epoch_ms": millis})
        assert r.status_code == 400, millis
