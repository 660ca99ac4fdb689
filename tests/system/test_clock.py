"""A boot with the clock far in the past: no RTC, no fake-hwclock file, no time source.

Linux has no per-container wall clock (time namespaces cover only the
monotonic and boot clocks), so the appliance's services are started with
libfaketime's offset of twenty years back, through systemd's
DefaultEnvironment: every program systemd starts sees 2006, as a Pi does
after a power cut with nothing to set its clock.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

from tests.phone_audio import tone_wav
from tests.system.conftest import ZONE, clerk_session, csrf, receipt_of, send_feedback, sound_card_appears, wait_for
from tests.system.test_journeys import CENTRAL_PORT, Central

FAKETIME = """[Manager]
DefaultEnvironment="LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1" "FAKETIME=-7300d" \
"FAKETIME_DONT_FAKE_MONOTONIC=1" "FAKETIME_DONT_RESET=1"
"""
HUB_TIME_RE = re.compile(r'name="local_time" id="local-time" value="([0-9T:-]+)"')
BANNER = "The hub is not sure of the time."


def occurrences(app) -> list[tuple[str, str]]:
    r = app.sh("sqlite3 -readonly -separator '|' /var/lib/hub/hub.db"
               " \"select o.state, coalesce(o.detail, '') from occurrences o\"", user="hub")
    return [tuple(line.split("|", 1)) for line in r.stdout.splitlines()]


def test_a_clock_twenty_years_behind_plays_nothing_at_a_wrong_time_and_one_click_fixes_it(
        make_appliance, tmp_path_factory, tmp_path):
    central = Central(tmp_path_factory.mktemp("central"))
    token = central.cli("add-hub", "commune-clock").strip().splitlines()[-1]
    app = make_appliance("hubc", settings={"central_url": f"http://127.0.0.1:{CENTRAL_PORT}",
                                           "central_token": token, "sync_interval_seconds": 10,
                                           "sync_max_backoff_seconds": 20, "default_language": "en"})
    app.write("/etc/systemd/system.conf.d/faketime.conf", FAKETIME)
    app.drop_in("hub-announcer", "mock-pins", "[Service]\nEnvironment=GPIOZERO_PIN_FACTORY=mock\n")
    sound_card_appears(app)
    assert not (app.root / "etc/fake-hwclock.data").exists()
    try:
        app.boot()
        clerk = clerk_session(app)
        page = clerk.get(f"{app.staff}/clerk/?lang=en", timeout=30).text
        assert BANNER in page
        hub_now = datetime.fromisoformat(HUB_TIME_RE.search(page).group(1))
        assert hub_now.year <= datetime.now().year - 19, hub_now

        # A clerk schedules for what the hub believes is 40 seconds from now.
        at = hub_now + timedelta(seconds=40)
        token = csrf(clerk, f"{app.staff}/clerk/announcements/new")
        wav = tone_wav(tmp_path / "a.wav", seconds=1.0)
        r = clerk.post(f"{app.staff}/clerk/announcements/new",
                       data={"csrf_token": token, "title": "wrong time", "when": "once",
                             "date": at.date().isoformat(), "time": at.time().replace(microsecond=0).isoformat(),
                             "repeats": "1"},
                       files={"audio": ("a.wav", wav.read_bytes())}, allow_redirects=False, timeout=60)
        assert r.status_code == 303, r.text[:500]
        code = receipt_of(send_feedback(app, body="made while the clock was wrong"))
        time.sleep(60)
        assert all(state != "played" for state, _ in occurrences(app)), occurrences(app)
        assert not list((app.root / "var/lib/hub/test").glob("speaker.raw*"))

        # One click with the clerk's device time.
        token = csrf(clerk, f"{app.staff}/clerk/")
        r = clerk.post(f"{app.staff}/clerk/clock", timeout=30, allow_redirects=False,
                       data={"csrf_token": token, "device_epoch_ms": str(int(time.time() * 1000))})
        assert r.status_code == 303
        page = clerk.get(f"{app.staff}/clerk/?lang=en", timeout=30).text
        assert BANNER not in page
        # The occurrence's time is twenty years gone: it is missed, never played late.
        wait_for(lambda: occurrences(app) and all(s == "missed" for s, _ in occurrences(app)), 30,
                 message=f"the stale occurrence was not given up: {occurrences(app)}")
        assert not list((app.root / "var/lib/hub/test").glob("speaker.raw*"))

        # The uplink comes up: sync was not stuck behind the wrong clock.
        central.start(app.ns)
        wait_for(lambda: code in str(central.records()), 120, interval=3,
                 message="the feedback made under the wrong clock did not reach the central server")
        assert app.unit("hub-sync", "NRestarts") == "0"
        now = datetime.now(ZONE)
        assert now.year == datetime.now().year  # this machine's clock was never touched
    finally:
        central.stop()
