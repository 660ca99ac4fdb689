"""Uploads a hostile phone could use to fill the card or hold the hub: length, space, slots, time.

Real ffmpeg on real files, through the portal with Flask's test client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading

import pytest

from hub.core import slots
from hub.core.media import MediaError, convert_audio
from tests.conftest import csrf_from
from tests.phone_audio import encode, streamed_webm, tone_wav


def send_voice(client, path, body: str = ""):
    with open(path, "rb") as f:
        return client.post("/feedback", data={"csrf_token": csrf_from(client), "category": "water", "body": body,
                                              "voice": (f, path.name)})


def nothing_stored(ctx) -> None:
    assert ctx.db.execute("select count(*) from feedback").fetchone()[0] == 0
    assert ctx.db.execute("select count(*) from media").fetchone()[0] == 0
    assert sorted(p.name for p in ctx.settings.media_dir.iterdir()) == []


def ffprobe_duration(path) -> str | None:
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                          str(path)], capture_output=True, check=True)
    info = json.loads(out.stdout)
    return info["format"].get("duration") or info["streams"][0].get("duration")


@pytest.fixture(scope="module")
def long_stream(tmp_path_factory):
    """40 s of Opus at 6 kbit/s written to a pipe, as MediaRecorder does: no duration anywhere."""
    path = streamed_webm(tmp_path_factory.mktemp("stream") / "long.webm", 40)
    assert ffprobe_duration(path) is None
    return path


def test_the_decoded_length_decides_not_the_header(long_stream, tmp_path):
    with pytest.raises(MediaError) as e:
        convert_audio(long_stream, tmp_path, max_seconds=20)
    assert e.value.code == "too_long"
    # ffmpeg stopped a little past the limit: the master never held the whole 40 s.
    master = tmp_path / "master.wav"
    assert master.stat().st_size < 22 * 16000 * 2 + 4096


def test_a_streamed_webm_past_the_limit_is_refused_and_leaves_no_file(portal, long_stream):
    client, ctx = portal(max_audio_seconds=20)
    r = send_voice(client, long_stream)
    html = r.get_data(as_text=True)
    assert r.status_code == 422, html[:300]
    assert "២០ វិនាទី" in html  # how long a recording may be, in the villager's language
    nothing_stored(ctx)
    en = client.post("/feedback?lang=en", data={"csrf_token": csrf_from(client), "category": "water",
                                                "voice": (open(long_stream, "rb"), "long.webm")})
    assert en.status_code == 422 and "at most 20 seconds" in en.get_data(as_text=True)
    client2, _ = portal(max_audio_seconds=120)
    r = client2.post("/feedback?lang=en", data={"csrf_token": csrf_from(client2), "category": "water",
                                                "voice": (open(long_stream, "rb"), "long.webm")})
    assert r.status_code == 303  # the same file is welcome where the limit is longer


def test_a_streamed_webm_within_the_limit_is_kept_whole(portal, tmp_path):
    client, ctx = portal(max_audio_seconds=20)
    short = streamed_webm(tmp_path / "short.webm", 12)
    assert ffprobe_duration(short) is None
    r = send_voice(client, short)
    assert r.status_code == 303, r.get_data(as_text=True)[:300]
    ms = ctx.db.execute("select duration_ms from media").fetchone()[0]
    assert 11_500 < ms < 12_500


def test_free_space_is_checked_against_what_the_conversion_will_write(portal, tmp_path):
    """Enough space for min_free_mb, but not for a 300 s recording's copies: refused before converting."""
    probe, _ = portal()
    free_mb = shutil.disk_usage(tmp_path).free // (1024 * 1024)
    client, ctx = portal(min_free_mb=max(1, free_mb - 20))
    unknown_length = streamed_webm(tmp_path / "s.webm", 3)
    r = send_voice(client, unknown_length)
    assert r.status_code == 507, r.get_data(as_text=True)[:300]
    nothing_stored(ctx)
    # Text alone still goes through: a full card refuses recordings, not messages.
    r = client.post("/feedback", data={"csrf_token": csrf_from(client), "category": "water", "body": "dry"})
    assert r.status_code in (303, 507)


def test_a_full_line_of_conversions_is_503_and_stores_nothing(portal, tmp_path):
    client, ctx = portal(conversion_slots=1, conversion_queue=0)
    voice = encode(tone_wav(tmp_path / "v.wav", seconds=1.0), "ogg", tmp_path)
    with slots.slot(ctx.settings.data_dir / "slots", 1, 0, 0):  # another worker is converting
        r = send_voice(client, voice, body="with voice")
        assert r.status_code == 503 and "រវល់" in r.get_data(as_text=True)
        nothing_stored(ctx)
        text_only = client.post("/feedback", data={"csrf_token": csrf_from(client), "category": "water",
                                                   "body": "text needs no slot"})
        assert text_only.status_code == 303
    assert send_voice(client, voice).status_code == 303  # the slot is free again


def test_a_flood_at_the_default_line_gets_503_at_once(portal, tmp_path):
    """With the default slots and line, uploads past both are refused in Khmer at once, not left to
    wait towards nginx's timeout."""
    import time

    client, ctx = portal()
    s = ctx.settings
    voice = encode(tone_wav(tmp_path / "v.wav", seconds=1.0), "ogg", tmp_path)
    entered, release = threading.Barrier(s.conversion_slots + 1), threading.Event()

    def converting():
        with slots.slot(s.data_dir / "slots", s.conversion_slots, s.conversion_queue, 0):
            entered.wait(10)
            release.wait(20)

    def waiting():
        with pytest.raises(Exception):  # noqa: B017 - Busy once the test lets go, or the slot it got
            with slots.slot(s.data_dir / "slots", s.conversion_slots, s.conversion_queue, 60):
                raise RuntimeError("got a slot")

    holders = [threading.Thread(target=converting) for _ in range(s.conversion_slots)]
    for t in holders:
        t.start()
    entered.wait(10)
    waiters = [threading.Thread(target=waiting) for _ in range(s.conversion_queue)]
    for t in waiters:
        t.start()
    try:
        wait_dir = s.data_dir / "slots"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until every waiter holds its ticket
            fd = slots._take(wait_dir, "wait", s.conversion_queue)
            if fd is None:
                break
            os.close(fd)
            time.sleep(0.05)
        started = time.monotonic()
        r = send_voice(client, voice, body="one too many")
        took = time.monotonic() - started
        assert r.status_code == 503 and "រវល់" in r.get_data(as_text=True)
        assert took < 5, took
        nothing_stored(ctx)
    finally:
        release.set()
        for t in holders + waiters:
            t.join(30)


def test_an_upload_waits_in_line_for_a_slot(portal, tmp_path):
    client, ctx = portal(conversion_slots=1, conversion_queue=1, conversion_seconds=30)
    voice = encode(tone_wav(tmp_path / "v.wav", seconds=1.0), "ogg", tmp_path)
    held = threading.Event()
    release = threading.Event()

    def other_worker():
        with slots.slot(ctx.settings.data_dir / "slots", 1, 0, 0):
            held.set()
            release.wait(10)

    t = threading.Thread(target=other_worker)
    t.start()
    held.wait(5)
    threading.Timer(1.0, release.set).start()
    r = send_voice(client, voice)  # waits about a second, then converts
    t.join()
    assert r.status_code == 303, r.get_data(as_text=True)[:300]


def test_a_conversion_past_its_time_is_refused_before_anything_is_stored(portal, tmp_path):
    client, ctx = portal(conversion_seconds=1)
    slow = encode(tone_wav(tmp_path / "long.wav", seconds=280.0), "ogg", tmp_path)
    r = send_voice(client, slow)
    assert r.status_code == 503, r.get_data(as_text=True)[:300]
    nothing_stored(ctx)


def test_a_notice_whose_picture_fails_leaves_no_audio_file(clerk, ctx, tmp_path):
    audio = encode(tone_wav(tmp_path / "n.wav", seconds=1.0), "mp3", tmp_path)
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not a picture" * 50)
    token = csrf_from(clerk, "/clerk/notices/new")
    with open(audio, "rb") as a, open(bad, "rb") as b:
        r = clerk.post("/clerk/notices/new", data={"csrf_token": token, "title_km": "ប្រជុំ",
                                                   "audio": (a, "n.mp3"), "image": (b, "photo.png")})
    assert r.status_code == 415
    assert ctx.db.execute("select count(*) from notices").fetchone()[0] == 0
    assert sorted(p.name for p in ctx.settings.media_dir.iterdir()) == []
