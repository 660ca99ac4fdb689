"""The announcer daemon in a child process: real PyAudio into an ALSA file device, mock pins.

Times are real but short: announcements are due a second or two after the
daemon starts, and the ALSA file device is not real-time, so a programme
"plays" in milliseconds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.announce import store
from hub.announce.schedule import Recurrence
from hub.core.clock import kernel_ntp_synchronised
from tests.announce.conftest import (
    DaemonRun,
    add_loud_media,
    assert_cut_cleanly,
    expected_programme,
    signature,
    wait_for,
)
from tests.conftest import csrf_from

TZ = "Asia/Phnom_Penh"


def daemon_settings(ctx, **kw) -> dict:
    base = {"data_dir": ctx.settings.data_dir, "audio_output_device": "speaker",
            "amplifier_pin": "GPIO17", "amplifier_warmup_seconds": 0.3,
            "status_led_pin": "GPIO27", "quiet_hours_start": "00:00", "quiet_hours_end": "00:00",
            "grace_minutes": 10}
    base.update(kw)
    return base


def once_at(ctx, moment: datetime, data: bytes, now: datetime | None = None, **fields) -> str:
    from zoneinfo import ZoneInfo

    local = moment.astimezone(ZoneInfo(TZ))
    text = Recurrence("once", local.date(), local.time().replace(microsecond=0)).to_rrule(TZ)
    media = add_loud_media(ctx, data)
    return store.create(ctx, {"audio_id": media, "rrule": text, **fields},
                        now=now or datetime.now(UTC))


def play_now(ctx, data: bytes, **fields) -> str:
    media = add_loud_media(ctx, data)
    return store.create(ctx, {"audio_id": media, "rrule": None, **fields})


def log_rows(ctx) -> list[dict]:
    return store.log(ctx.db)


def test_scheduled_occurrence_plays_once_on_time_with_the_relay_around_it(ctx, alsa, tmp_path):
    audio = signature(1234, 0.5)
    due = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    once_at(ctx, due, audio, repeats=2, title="ប្រជុំ")
    run = DaemonRun(tmp_path, alsa, daemon_settings(ctx))
    wait_for(lambda: log_rows(ctx), timeout=20)
    time.sleep(1.5)  # anything extra would show up now
    rep = run.stop()
    (row,) = log_rows(ctx)
    assert row["outcome"] == "played" and row["repeats"] == 2
    assert alsa.streams() == [expected_programme(audio, repeats=2)]
    lateness = (store.parse_time(row["started_at"]) - due).total_seconds()
    # The relay was switched on early (pre-roll), so the chime starts on the second.
    assert -0.05 <= lateness < 0.5, lateness
    relay = [c for c in rep["changes"] if c[0] == "GPIO17"]
    assert [c[2] for c in relay] == [True, False]
    assert relay[0][3] == 0 and relay[1][3] == len(alsa.streams()[0])
    assert rep["growth"][0][0] - relay[0][1] >= 0.3  # warmed up before the first sound
    led = [c[2] for c in rep["changes"] if c[0] == "GPIO27"]
    assert led[:2] == [True, False]  # lit while playing
    assert store.states(ctx.db) == {"played": 1}


def test_play_now_goes_before_the_queue_and_urgent_interrupts_routine(ctx, alsa, tmp_path):
    alsa.paced()
    now = datetime.now(UTC)
    routine1 = once_at(ctx, now + timedelta(seconds=1), signature(1111, 0.3), now=now)
    routine2 = once_at(ctx, now + timedelta(seconds=1), signature(2222, 0.3), now=now)
    quick = play_now(ctx, signature(3333, 0.3))
    time.sleep(1.2)
    run = DaemonRun(tmp_path, alsa, daemon_settings(ctx, amplifier_warmup_seconds=0.05))
    wait_for(lambda: len(log_rows(ctx)) == 3, timeout=20)
    order = [r["announcement_id"] for r in reversed(log_rows(ctx))]
    assert order[0] == quick and set(order[1:]) == {routine1, routine2}
    streams = alsa.streams()
    assert streams[0] == expected_programme(signature(3333, 0.3))
    # Now a long routine one, interrupted by an urgent play-now while it plays.
    long = play_now(ctx, signature(4444, 30.0))
    wait_for(lambda: store.states(ctx.db).get("playing") == 1, timeout=10)
    urgent = play_now(ctx, signature(5555, 0.3), urgent=True)
    wait_for(lambda: len(log_rows(ctx)) == 5, timeout=20)
    rep = run.stop()
    by_id = {r["announcement_id"]: r for r in log_rows(ctx)}
    assert by_id[long]["outcome"] == "missed"
    assert by_id[long]["detail"] == "interrupted by an urgent announcement"
    assert by_id[urgent]["outcome"] == "played"
    streams = alsa.streams()
    assert len(streams) == 5
    cut, last = streams[3], streams[4]
    whole = expected_programme(signature(4444, 30.0))
    assert_cut_cleanly(cut, whole)
    assert len(cut) < len(whole) // 2  # stopped early, faded out, no end chime
    assert last == expected_programme(signature(5555, 0.3))
    assert not rep["hung"]


def test_nothing_plays_and_the_relay_stays_off_when_nothing_is_due(ctx, alsa, tmp_path):
    run = DaemonRun(tmp_path, alsa, daemon_settings(ctx))
    time.sleep(1.5)
    rep = run.stop()
    assert alsa.streams() == [] and log_rows(ctx) == []
    assert [c for c in rep["changes"] if c[0] == "GPIO17"] == []


def test_untrusted_clock_waits_then_resumes_after_a_clerk_sets_it(ctx, clerk, alsa, tmp_path):
    now = datetime.now(UTC)
    due = now + timedelta(seconds=1)
    aid = once_at(ctx, due, signature(777, 0.3), now=now, title="waits")
    run = DaemonRun(tmp_path, alsa, daemon_settings(ctx), ntp=False)
    time.sleep(3.0)
    assert alsa.streams() == [] and log_rows(ctx) == []
    assert store.states(ctx.db) == {}  # not even made into an occurrence
    page = clerk.get("/clerk/announcements/week").get_data(as_text=True)
    if not kernel_ntp_synchronised():  # this test machine's own clock decides the web banner
        assert 'id="device-epoch-ms"' in page  # the warning, with its one-click form
    token = csrf_from(clerk, "/clerk/announcements/")
    r = clerk.post("/clerk/clock", data={"csrf_token": token, "next": "/clerk/announcements/",
                                         "device_epoch_ms": str(int(time.time() * 1000)),
                                         "local_time": ""})
    assert r.status_code == 303
    wait_for(lambda: log_rows(ctx), timeout=15)
    run.stop()
    (row,) = log_rows(ctx)
    assert row["announcement_id"] == aid and row["outcome"] == "played"
    assert alsa.streams() == [expected_programme(signature(777, 0.3))]
    assert 'id="device-epoch-ms"' not in clerk.get("/clerk/announcements/").get_data(as_text=True)


def test_play_now_plays_even_while_the_clock_is_untrusted(ctx, alsa, tmp_path):
    quick = play_now(ctx, signature(888, 0.2))
    run = DaemonRun(tmp_path, alsa, daemon_settings(ctx), ntp=False)
    wait_for(lambda: log_rows(ctx), timeout=15)
    run.stop()
    (row,) = log_rows(ctx)
    assert row["announcement_id"] == quick and row["clock_trusted"] == 0


def test_grace_window_after_the_hub_was_off(ctx, alsa, tmp_path):
    """The daemon's clock runs 15 minutes ahead of when the items were made: as if the hub
    had been off. One was due 14 minutes before (too late: missed), one 5 minutes before
    (inside the 10-minute grace window: plays once, late)."""
    now = datetime.now(UTC)
    old = once_at(ctx, now + timedelta(minutes=1), signature(100, 0.2), now=now)
    recent = once_at(ctx, now + timedelta(minutes=10), signature(200, 0.2), now=now)
    run = DaemonRun(tmp_path, alsa, daemon_settings(ctx), offset=15 * 60)
    wait_for(lambda: len(log_rows(ctx)) == 2, timeout=15)
    time.sleep(1.0)
    run.stop()
    by_id = {r["announcement_id"]: r for r in log_rows(ctx)}
    assert by_id[old]["outcome"] == "missed" and by_id[old]["detail"].startswith("too late: 1")
    assert by_id[recent]["outcome"] == "played"
    assert alsa.streams() == [expected_programme(signature(200, 0.2))]


def test_a_second_announcer_on_the_same_data_is_refused(ctx, alsa, tmp_path):
    run = DaemonRun(tmp_path, alsa, daemon_settings(ctx))
    env = alsa.env(HUB_DATA_DIR=str(ctx.settings.data_dir), HUB_AUDIO_OUTPUT_DEVICE="speaker")
    r = subprocess.run([str(Path(sys.executable).parent / "hub-announcer")], env=env,
                       capture_output=True, text=True, timeout=30)
    run.stop()
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("hub-announcer: error: another announcer")


def _listen(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(0.2)
    return s


def _messages(sock: socket.socket, seconds: float) -> list[tuple[float, str]]:
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            out.append((time.monotonic(), sock.recv(4096).decode()))
        except TimeoutError:
            pass
    return out


@pytest.mark.slow
def test_hung_playback_stops_the_watchdog_and_a_restart_recovers(ctx, alsa, tmp_path):
    """The real hub-announcer under a fake systemd: READY=1, WATCHDOG=1 while the loop beats;
    a sound device that blocks forever (a pipe nobody reads) stops the pings; after the kill
    systemd would do, the restarted daemon marks the cut-short occurrence missed and plays on."""
    stuck = tmp_path / "stuck.conf"
    stuck.write_text('pcm.!default { type file; slave.pcm { type null }; file "|sleep 600";'
                     ' format "raw" }\n')
    sock = _listen(tmp_path / "notify.sock")
    env = alsa.env(HUB_DATA_DIR=str(ctx.settings.data_dir), HUB_AMPLIFIER_WARMUP_SECONDS="0",
                   HUB_QUIET_HOURS_START="00:00", HUB_QUIET_HOURS_END="00:00",
                   NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="1500000")
    env["ALSA_CONFIG_PATH"] = str(stuck)
    exe = str(Path(sys.executable).parent / "hub-announcer")
    log = open(tmp_path / "announcer.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([exe], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        first = _messages(sock, 3.0)
        texts = [m for _, m in first]
        assert "READY=1" in texts and texts.count("WATCHDOG=1") >= 3, texts
        hung = play_now(ctx, signature(999, 30.0))
        wait_for(lambda: store.states(ctx.db).get("playing") == 1, timeout=10)
        _messages(sock, 2.5)  # the write blocks; pings sent before the beat went stale drain
        quiet = _messages(sock, 3.0)
        assert [m for _, m in quiet if m == "WATCHDOG=1"] == [], quiet
        assert proc.poll() is None  # alive but stuck: exactly what the watchdog is for
    finally:
        os.killpg(proc.pid, signal.SIGABRT)  # systemd's WatchdogSignal
        proc.wait(timeout=10)
    env["ALSA_CONFIG_PATH"] = str(alsa.conf)
    proc = subprocess.Popen([exe], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        assert "READY=1" in [m for _, m in _messages(sock, 3.0)]
        wait_for(lambda: store.states(ctx.db).get("missed") == 1, timeout=10)
        after = play_now(ctx, signature(321, 0.2))
        wait_for(lambda: store.states(ctx.db).get("played") == 1, timeout=10)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        sock.close()
        log.close()
    assert proc.returncode == 0, (tmp_path / "announcer.log").read_text()[-2000:]
    assert "Traceback" not in (tmp_path / "announcer.log").read_text()
    by_id = {r["announcement_id"]: r for r in store.log(ctx.db)}
    assert by_id[hung]["outcome"] == "missed"
    assert by_id[hung]["detail"] == "interrupted by a restart"
    assert by_id[after]["outcome"] == "played"
    assert alsa.streams() == [expected_programme(signature(321, 0.2))]


def test_hub_run_starts_the_announcer(ctx, alsa, tmp_path):
    from hub.run import DAEMONS

    assert DAEMONS["announcer"] == "hub.announce.daemon:Announcer"
    env = alsa.env(HUB_DATA_DIR=str(ctx.settings.data_dir), HUB_AMPLIFIER_WARMUP_SECONDS="0")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "hub"), "run", "--only",
                             "announcer"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        quick = play_now(ctx, signature(4321, 0.2))
        wait_for(lambda: log_rows(ctx), timeout=20)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()[-2000:]
    (row,) = log_rows(ctx)
    assert row["announcement_id"] == quick and row["outcome"] == "played"
    assert alsa.streams() == [expected_programme(signature(4321, 0.2))]
