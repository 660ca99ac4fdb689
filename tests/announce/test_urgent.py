"""Urgent broadcasts in the announcer: at once, through quiet hours, cutting routine playout short; never expired.

The announcer runs in a child process with real PyAudio into an ALSA file
device made real-time by the pacer, as in test_daemon.py.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from hub.announce import store
from tests.announce.conftest import DaemonRun, assert_cut_cleanly, expected_programme, signature, wait_for
from tests.announce.test_daemon import daemon_settings, log_rows, once_at, play_now


def quiet_now() -> dict:
    """Quiet hours from an hour ago to two hours ahead (hub time): now is night."""
    from zoneinfo import ZoneInfo

    local = datetime.now(ZoneInfo("Asia/Phnom_Penh"))
    return {"quiet_hours_start": (local - timedelta(hours=1)).strftime("%H:%M"),
            "quiet_hours_end": (local + timedelta(hours=2)).strftime("%H:%M")}


def test_an_urgent_broadcast_plays_at_once_in_quiet_hours_cutting_a_routine_clip_short(ctx, alsa, tmp_path):
    alsa.paced()
    now = datetime.now(UTC)
    held = once_at(ctx, now + timedelta(seconds=1), signature(1111, 0.3), now=now, title="routine, at night")
    expired = play_now(ctx, signature(2222, 0.3), urgent=True, publication_id="p-old",
                       expires_at=now - timedelta(seconds=1))
    run = DaemonRun(tmp_path, alsa, daemon_settings(ctx, amplifier_warmup_seconds=0.05, **quiet_now()))
    # The expired one never plays; the routine one waits for the morning.
    wait_for(lambda: log_rows(ctx), timeout=20)
    assert [(r["announcement_id"], r["outcome"], r["detail"]) for r in log_rows(ctx)] == [
        (expired, "missed", "expired before it could play")]
    # A clerk's long play-now clip is playing when the urgent broadcast arrives.
    routine = play_now(ctx, signature(4444, 30.0), title="routine")
    wait_for(lambda: store.states(ctx.db).get("playing") == 1, timeout=10)
    time.sleep(0.5)
    arrived = time.monotonic()
    urgent = play_now(ctx, signature(5555, 0.5), urgent=True, publication_id="p-1",
                      expires_at=datetime.now(UTC) + timedelta(hours=1), title="flood")
    wait_for(lambda: len(log_rows(ctx)) == 3, timeout=20)
    took = time.monotonic() - arrived
    time.sleep(1.5)  # the routine scheduled one must still not play
    rep = run.stop()
    by_id = {r["announcement_id"]: r for r in log_rows(ctx)}
    assert set(by_id) == {expired, routine, urgent}
    assert by_id[routine]["outcome"] == "missed"
    assert by_id[routine]["detail"] == "interrupted by an urgent announcement"
    assert by_id[urgent]["outcome"] == "played"
    assert held not in by_id
    (waiting,) = [o for o in store.recent(ctx.db) if o["announcement_id"] == held]
    assert waiting["state"] == "due" and waiting["play_after"] > waiting["due_at"]  # held till the morning
    streams = alsa.streams()
    assert len(streams) == 2
    assert_cut_cleanly(streams[0], expected_programme(signature(4444, 30.0)))
    assert streams[1] == expected_programme(signature(5555, 0.5))
    assert took < 5, took  # cut within a quarter second, then the chime and 0.5 s of sound in real time
    assert not rep["hung"]
    # Its proof of play is what goes back to the central server as the acknowledgement.
    outcomes = {r["publication_id"]: r["outcome"] for r in store.urgent_outcomes(ctx.db)}
    assert outcomes == {"p-old": "missed", "p-1": "played"}
