"""An urgent broadcast on the booted appliance: made on the central server at night, played at once, acked.

One boot. The central server runs in the hub's network namespace (as in
test_journeys.py); the hub's announcer plays into a paced ALSA file, so a
routine clip takes its real time and the urgent broadcast must cut it short.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import subprocess
from datetime import UTC, datetime, timedelta

from hub.central.web import create_central_app
from hub.core import settings as settings_mod
from tests.phone_audio import tone_wav
from tests.system.conftest import ZONE, clerk_session, csrf, error_of, sound_card_appears, wait_for
from tests.system.test_journeys import CENTRAL_PORT, HUB, Central, doctor

URGENT_EVERY = 10
TITLE = "ការព្រមានទឹកជំនន់"


def cap_alert(audio: bytes) -> bytes:
    expires = (datetime.now(UTC) + timedelta(hours=2)).isoformat(timespec="seconds")
    return (f'<?xml version="1.0" encoding="UTF-8"?><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
            f"<identifier>KH-TEST-1</identifier><sender>warning@mowram.gov.kh</sender>"
            f"<sent>2026-12-02T15:00:00+07:00</sent><status>Actual</status><msgType>Alert</msgType>"
            f"<scope>Public</scope><info><language>km-KH</language><category>Met</category><event>Flood</event>"
            f"<urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>"
            f"<expires>{expires}</expires><headline>{TITLE}</headline><description>ទឹកឡើង។</description>"
            f"<resource><resourceDesc>spoken warning</resourceDesc><mimeType>audio/wav</mimeType>"
            f"<size>{len(audio)}</size><derefUri>{base64.b64encode(audio).decode()}</derefUri>"
            f"<digest>{hashlib.sha1(audio).hexdigest()}</digest></resource></info></alert>").encode()


def test_an_urgent_broadcast_made_at_night_plays_at_once_cutting_routine_playout_and_is_acked(
        make_appliance, tmp_path):
    central = Central(tmp_path / "central")
    token = central.cli("add-hub", "urgent-hub").strip().splitlines()[-1]
    local = datetime.now(ZONE)
    night = {"quiet_hours_start": (local - timedelta(hours=1)).strftime("%H:%M"),
             "quiet_hours_end": (local + timedelta(hours=2)).strftime("%H:%M")}
    # The full sync only once an hour: what brings the broadcast is the urgent poll.
    app = make_appliance("urgent", uplink=True, settings={
        **night, "central_url": f"http://127.0.0.1:{CENTRAL_PORT}", "central_token": token,
        "sync_interval_seconds": 3600, "sync_urgent_interval_seconds": URGENT_EVERY, "log_level": "debug"})
    app.drop_in("hub-announcer", "mock-pins", "[Service]\nEnvironment=GPIOZERO_PIN_FACTORY=mock\n")
    central.start(app.ns)
    try:
        app.boot()
        sound_card_appears(app, paced=True)
        wait_for(lambda: "never" not in central.cli("hubs"), 120, interval=2,
                 message="the hub's first sync did not reach the central server")
        wait_for(lambda: "hub_speaker" not in doctor(app)["services"]["detail"], 60)

        # A clerk's routine clip, 40 s long, is playing when the broadcast is made.
        clerk = clerk_session(app)
        token = csrf(clerk, f"{app.staff}/clerk/announcements/new")
        wav = tone_wav(tmp_path / "routine.wav", seconds=40.0, freq=330)
        r = clerk.post(f"{app.staff}/clerk/announcements/new",
                       data={"csrf_token": token, "title": "routine", "when": "now", "repeats": "1"},
                       files={"audio": ("routine.wav", wav.read_bytes())}, allow_redirects=False, timeout=120)
        assert r.status_code == 303, error_of(r)
        speaker = app.root / "var/lib/hub/test"
        wait_for(lambda: sum(p.stat().st_size for p in speaker.glob("speaker.raw*")) > 48000 * 2 * 3, 60,
                 interval=0.5, message="the routine clip did not start playing")

        alert = tmp_path / "alert.xml"
        alert.write_bytes(cap_alert(tone_wav(tmp_path / "urgent.wav", seconds=2.0, freq=880).read_bytes()))
        published = datetime.now(UTC)
        pub_id = central.cli("publish-cap", str(alert)).split()[0]

        def log_rows():
            out = app.hub("announce log --csv").stdout
            return {row["title"]: row for row in csv.DictReader(io.StringIO(out))}

        rows = wait_for(lambda: (rows := log_rows()).get(TITLE) and rows, URGENT_EVERY + 60, interval=1,
                        message="the urgent broadcast did not play")
        urgent, routine = rows[TITLE], rows["routine"]
        assert urgent["outcome"] == "played", urgent
        assert routine["outcome"] == "missed" and routine["detail"] == "interrupted by an urgent announcement"
        took = (datetime.fromisoformat(urgent["started_at"]) - published).total_seconds()
        print(f"urgent broadcast started {took:.1f} s after it was published (urgent poll every {URGENT_EVERY} s)")
        # Within one urgent interval, plus the audio's trip and conversion.
        assert 0 < took <= URGENT_EVERY + 10, took
        assert datetime.fromisoformat(routine["ended_at"]) <= datetime.fromisoformat(urgent["started_at"])

        # The acknowledgement reaches the central server at the next urgent poll, and its console shows it.
        line = wait_for(lambda: re.search(r"^urgent-hub\tplayed\t(\S+)", central.cli("acks", pub_id), re.M),
                        URGENT_EVERY + 30, interval=1, message="the hub's acknowledgement did not arrive")
        assert line.group(1) == urgent["started_at"]
        page = console_page(central, f"/publications/{pub_id}/acks")
        assert 'data-hub="urgent-hub" data-outcome="played"' in page and "Played on 1 of 1 hubs" in page
    finally:
        print(app.journal("hub-sync")[-3000:])
        central.stop()


def console_page(central: Central, path: str) -> str:
    """An officer's view of the central console (the server's own app and database, in this process)."""
    r = subprocess.run([HUB, "central", "user", "add", "officer"], env=central.env, input="a long password here\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    settings = settings_mod.load(config=None, env={}, overrides={"data_dir": central.dir})
    client = create_central_app(settings).test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    r = client.post("/login", data={"username": "officer", "password": "a long password here", "csrf_token": token})
    assert r.status_code in (302, 303)
    page = client.get(path + "?lang=en")
    assert page.status_code == 200
    return page.get_data(as_text=True)
