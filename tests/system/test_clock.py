"""A boot with the clock far off: no RTC, no fake-hwclock file, no time source.

Linux has no per-container wall clock (time namespaces cover only the
monotonic and boot clocks), and libfaketime breaks Python's sleeps (EINVAL
from clock_nanosleep), so the appliance keeps this machine's clock and the
clerk's device is twenty years ahead of it instead: for the hub that is the
same as booting twenty years in the past. Nothing vouches for the time at
boot: this kernel is not NTP-synchronised (the test says so and stops if it
is), there is no saved time, and the central server is not reachable yet.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

import pytest

from hub.core.clock import kernel_ntp_synchronised
from tests.phone_audio import tone_wav
from tests.system.conftest import (
    a_minute_ahead,
    clerk_session,
    csrf,
    error_of,
    receipt_of,
    send_feedback,
    sound_card_appears,
    wait_for,
)
from tests.system.test_journeys import CENTRAL_PORT, Central

TWENTY_YEARS = 20 * 365.25 * 86400
HUB_TIME_RE = re.compile(r'name="local_time" id="local-time" value="([0-9T:-]+)"')
BANNER = "The hub is not sure of the time."


def occurrences(app) -> list[tuple[str, str]]:
    r = app.sh("sqlite3 -readonly -separator '|' /var/lib/hub/hub.db"
               " \"select o.state, coalesce(o.detail, '') from occurrences o\"", user="hub")
    return [tuple(line.split("|", 1)) for line in r.stdout.splitlines()]


def test_a_clock_twenty_years_off_plays_nothing_at_a_wrong_time_and_one_click_fixes_it(
        make_appliance, tmp_path_factory, tmp_path):
    if kernel_ntp_synchronised():
        pytest.skip("this machine's kernel reports NTP synchronisation, so the hub would trust its clock")
    central = Central(tmp_path_factory.mktemp("central"))
    token = central.cli("add-hub", "commune-clock").strip().splitlines()[-1]
    app = make_appliance("hubc", settings={"central_url": f"http://127.0.0.1:{CENTRAL_PORT}",
                                           "central_token": token, "sync_interval_seconds": 10,
                                           "sync_max_backoff_seconds": 20, "default_language": "en"})
    app.drop_in("hub-announcer", "mock-pins", "[Service]\nEnvironment=GPIOZERO_PIN_FACTORY=mock\n")
    sound_card_appears(app)
    # No saved time either: fake-hwclock has nothing to restore at boot.
    (app.root / "etc/fake-hwclock.data").unlink(missing_ok=True)
    try:
        app.boot()
        clerk = clerk_session(app)
        # Until the first sync has failed, the console only says it waits for the district server.
        page = wait_for(lambda: (p := clerk.get(f"{app.staff}/clerk/?lang=en", timeout=30).text) and
                        BANNER in p and p, 60, message="no clock alert once the central server was unreachable")
        hub_now = datetime.fromisoformat(HUB_TIME_RE.search(page).group(1))

        # A clerk schedules for what the hub believes is a minute from now.
        at = a_minute_ahead(hub_now)
        token = csrf(clerk, f"{app.staff}/clerk/announcements/new")
        wav = tone_wav(tmp_path / "a.wav", seconds=1.0)
        r = clerk.post(f"{app.staff}/clerk/announcements/new",
                       data={"csrf_token": token, "title": "wrong time", "when": "once",
                             "date": at.date().isoformat(), "time": at.strftime("%H:%M"), "repeats": "1"},
                       files={"audio": ("a.wav", wav.read_bytes())}, allow_redirects=False, timeout=60)
        assert r.status_code == 303, error_of(r)
        code = receipt_of(send_feedback(app, body="made while the clock was wrong"))
        time.sleep((at - hub_now).total_seconds() + 20)  # past its time, on the hub's clock
        assert all(state != "played" for state, _ in occurrences(app)), occurrences(app)
        assert not list((app.root / "var/lib/hub/test").glob("speaker.raw*"))

        # One click with the clerk's device time, twenty years after the hub's.
        token = csrf(clerk, f"{app.staff}/clerk/")
        device_ms = int((time.time() + TWENTY_YEARS) * 1000)
        r = clerk.post(f"{app.staff}/clerk/clock", timeout=30, allow_redirects=False,
                       data={"csrf_token": token, "device_epoch_ms": str(device_ms)})
        assert r.status_code == 303
        page = clerk.get(f"{app.staff}/clerk/?lang=en", timeout=30).text
        assert BANNER not in page
        assert app.sh("date +%Y").stdout.strip() == str(datetime.now().year)  # the system clock: not stepped
        # The occurrence's time is twenty years gone: it is missed, never played late.
        wait_for(lambda: occurrences(app) and all(s == "missed" for s, _ in occurrences(app)), 30,
                 message=f"the stale occurrence was not given up: {occurrences(app)}")
        assert not list((app.root / "var/lib/hub/test").glob("speaker.raw*"))

        # The uplink comes up: sync was not stuck behind the wrong clock.
        central.start(app.ns)
        wait_for(lambda: code in str(central.records()), 120, interval=3,
                 message="the feedback made under the wrong clock did not reach the central server")
        assert app.unit("hub-sync", "NRestarts") == "0"
    finally:
        central.stop()
