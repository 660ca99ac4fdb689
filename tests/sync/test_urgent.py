"""Urgent broadcasts: a CAP 1.2 message on the central server (PostgreSQL), the hubs' urgent poll, the acks.

The central server and `hub sync urgent` run as processes, as in production;
the announcer's part (what plays, and when) is in tests/announce/test_urgent.py
and on the booted appliance in tests/system/test_urgent.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from hub.announce import store as announcements
from hub.central import cap
from hub.central.store import CentralStore
from hub.sync import state as sync_state
from hub.sync import urgent
from hub.sync.client import CentralClient
from tests.sync.procs import hub_cmd

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ZONE = ZoneInfo("Asia/Phnom_Penh")


def tone(path, seconds: float = 1.0):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=f=440:d={seconds}",
                    "-c:a", "libmp3lame", str(path)], check=True)
    return path.read_bytes()


def cap_message(audio: bytes | None = None, uri: str = "flood.mp3", identifier: str = "KH-MOWRAM-2026-0042",
                expires: datetime | None = None, urgency: str = "Immediate", msg_type: str = "Alert",
                references: str = "", digest: str | None = None, extra: str = "") -> bytes:
    """A CAP 1.2 alert as a warning service writes it: a Khmer and an English info block, audio resource."""
    expires = expires or datetime.now(UTC) + timedelta(hours=3)
    sha1 = digest if digest is not None else (hashlib.sha1(audio).hexdigest() if audio else "")
    deref = f"<derefUri>{base64.b64encode(audio).decode()}</derefUri>" if audio and not uri else ""
    size = f"<size>{len(audio)}</size>" if audio else ""
    resource = (f"<resource><resourceDesc>spoken warning</resourceDesc><mimeType>audio/mpeg</mimeType>{size}"
                f"{f'<uri>https://warning.example/{uri}</uri>' if uri else ''}{deref}"
                f"{f'<digest>{sha1}</digest>' if sha1 else ''}</resource>")
    refs = f"<references>{references}</references>" if references else ""

    def info(lang, headline, text):
        return (f"<info><language>{lang}</language><category>Met</category><event>Flood</event>"
                f"<urgency>{urgency}</urgency><severity>Severe</severity><certainty>Likely</certainty>"
                f"<expires>{expires.isoformat(timespec='seconds')}</expires><headline>{headline}</headline>"
                f"<description>{text}</description><instruction>Move to high ground.</instruction>"
                f"{resource}</info>")

    return (f'<?xml version="1.0" encoding="UTF-8"?>{extra}<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
            f"<identifier>{identifier}</identifier><sender>warning@mowram.gov.kh</sender>"
            f"<sent>2026-12-02T15:00:00+07:00</sent><status>Actual</status><msgType>{msg_type}</msgType>"
            f"<scope>Public</scope>{refs}"
            + info("km-KH", "ការព្រមានទឹកជំនន់", "ទឹកទន្លេកំពុងឡើង។")
            + info("en-US", "Flood warning", "The river is rising.")
            + "</alert>").encode()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_cap_alert_reaches_the_hub_by_the_urgent_poll_and_its_ack_shows_on_the_console(
        central, make_hub, tmp_path):
    token = central.add_hub("kampong")
    central.add_hub("silent")  # addressed too, never heard from
    hub = make_hub(central.url, token, sync_urgent_interval_seconds=5)
    assert sync_once_ok(hub)
    audio = tone(tmp_path / "flood.mp3")
    (tmp_path / "alert.xml").write_bytes(cap_message(audio))
    r = central.run("publish-cap", str(tmp_path / "alert.xml"), "--audio", str(tmp_path / "flood.mp3"))
    assert r.returncode == 0, r.stderr
    (pub_id,) = r.stdout.split()

    used_before = sync_state.usage(hub.ctx.db, hub.ctx.clock.now().date().isoformat())
    first = urgent_poll(hub, by_command=True)
    assert first["status"] == 200 and first["applied"] == 1 and first["error"] is None
    (a,) = announcements.listing(hub.ctx.db, include_stopped=True)
    assert a["urgent"] == 1 and a["publication_id"] == pub_id and a["title"] == "ការព្រមានទឹកជំនន់"
    assert a["rrule"] is None and a["loud_name"]  # play now, through the media pipeline
    assert abs(datetime.fromisoformat(a["expires_at"]) - (datetime.now(UTC) + timedelta(hours=3))) < timedelta(
        minutes=2)
    (occ,) = announcements.recent(hub.ctx.db)
    assert occ["state"] == "due" and occ["urgent"] == 1 and occ["play_now"] == 1

    # Nothing new: 304 with no body, a few hundred bytes, counted against the data budget.
    second = urgent_poll(hub)
    assert second["status"] == 304 and second["applied"] == 0, second
    assert second["wire_bytes"] < 1500, second
    used_after = sync_state.usage(hub.ctx.db, hub.ctx.clock.now().date().isoformat())
    assert used_after - used_before >= first["wire_bytes"] + second["wire_bytes"]
    assert first["wire_bytes"] > len(audio)  # the audio came in the first poll

    # The announcer plays it (tests/announce shows how); its proof of play goes back as the ack.
    now = hub.ctx.clock.now()
    assert announcements.mark_playing(hub.ctx.db, occ["id"], now)
    announcements.finish(hub.ctx.db, hub.ctx.hub_id, occ["id"], "played", now + timedelta(seconds=5), True,
                         started=now, ended=now + timedelta(seconds=5))
    third = urgent_poll(hub)
    assert third["status"] == 304 and third["acked"] == 1, third
    assert urgent_poll(hub)["acked"] == 0  # sent once

    r = central.run("acks", pub_id)
    assert r.returncode == 0, r.stderr
    lines = [line.split("\t") for line in r.stdout.splitlines()]
    assert [(x[0], x[1]) for x in lines] == [("kampong", "played"), ("silent", "waiting")]
    assert lines[0][2].startswith(now.astimezone(UTC).isoformat()[:16])

    page = console_page(central, f"/publications/{pub_id}/acks")
    assert 'data-hub="kampong" data-outcome="played"' in page
    assert 'data-hub="silent" data-outcome="waiting"' in page

    # A CAP Cancel withdraws it: the ETag changes, and the hub stops what it had not played.
    (tmp_path / "cancel.xml").write_bytes(cap_message(
        msg_type="Cancel", identifier="KH-MOWRAM-2026-0043",
        references="warning@mowram.gov.kh,KH-MOWRAM-2026-0042,2026-12-02T15:00:00+07:00"))
    r = central.run("publish-cap", str(tmp_path / "cancel.xml"))
    assert r.returncode == 0 and r.stdout.split() == [pub_id], r.stderr
    fourth = urgent_poll(hub)
    assert fourth["status"] == 200, fourth
    store = central.open_store()
    try:
        assert store.publications()[0]["withdrawn"]
    finally:
        store.close()


def sync_once_ok(hub) -> bool:
    r = hub_cmd(["sync", "once", "--json"], hub.env)
    assert r.returncode == 0, r.stdout + r.stderr
    return True


def urgent_poll(hub, by_command: bool = False) -> dict:
    """One urgent poll: `hub sync urgent` as a technician runs it, or the same call in this process."""
    if by_command:
        r = hub_cmd(["sync", "urgent"], hub.env)
        lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
        assert lines, r.stdout + r.stderr
        return json.loads(lines[-1])
    client = CentralClient(hub.ctx.settings, hub.ctx)
    try:
        return {**urgent.poll(hub.ctx, client), "wire_bytes": client.wire_bytes}
    finally:
        client.close()


def console_page(central, path: str) -> str:
    r = central.run("user", "add", "officer", stdin="a long password for the test\n")
    assert r.returncode == 0, r.stderr
    s = requests.Session()
    s.trust_env = False
    token = CSRF.search(s.get(central.url + "/login").text).group(1)
    r = s.post(central.url + "/login", data={"username": "officer", "password": "a long password for the test",
                                             "csrf_token": token}, allow_redirects=False)
    assert r.status_code in (302, 303), r.text[:500]
    page = s.get(central.url + path, params={"lang": "en"})
    assert page.status_code == 200, page.text[:500]
    return page.text


# --- CAP input refused, with nothing stored --------------------------------------------------

BOMB = ('<!DOCTYPE alert [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>')
EXTERNAL = '<!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


@pytest.mark.parametrize("case, code", [
    ("bomb", "unsafe"), ("external", "unsafe"), ("not_xml", "not_xml"), ("not_cap", "not_cap"),
    ("urgency", "bad_value"), ("expired", "expired"), ("no_upload", "audio_missing"), ("digest", "digest"),
    ("no_audio", "no_audio"), ("test_status", "status"),
])
def test_a_cap_message_that_cannot_be_broadcast_is_refused_and_nothing_is_stored(tmp_path, case, code):
    audio = b"ID3 not really an mp3, but bytes to check"
    content = {
        "bomb": lambda: cap_message(audio, uri="", extra=BOMB).replace(b"<event>Flood", b"<event>&c;"),
        "external": lambda: cap_message(audio, uri="", extra=EXTERNAL).replace(b"<event>Flood", b"<event>&x;"),
        "not_xml": lambda: b"<alert><unclosed></alert>",
        "not_cap": lambda: b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.1"><identifier>x</identifier></alert>',
        "urgency": lambda: cap_message(audio, uri="", urgency="Soon"),
        "expired": lambda: cap_message(audio, uri="", expires=datetime.now(UTC) - timedelta(minutes=1)),
        "no_upload": lambda: cap_message(audio),
        "digest": lambda: cap_message(audio, uri="", digest="0" * 40),
        "no_audio": lambda: re.sub(rb"<resource>.*?</resource>", b"", cap_message(audio, uri="")),
        "test_status": lambda: cap_message(audio, uri="").replace(b"<status>Actual", b"<status>Test"),
    }[case]()
    store = CentralStore.open(tmp_path)
    try:
        with pytest.raises(cap.CapError) as e:
            store.publish_cap(content, {}, None, "test")
        assert e.value.code == code, e.value
        assert store.publications() == []
        assert store.db.conn.execute("select count(*) from files").fetchone()[0] == 0
    finally:
        store.close()


def test_cap_refusals_are_said_in_khmer_with_the_english_beside(tmp_path):
    from hub.central.web import create_central_app
    from hub.core import settings as settings_mod
    from tests.sync.procs import base_env

    env = base_env(tmp_path / "central")
    (tmp_path / "old.xml").write_bytes(cap_message(b"x", uri="", expires=datetime.now(UTC) - timedelta(hours=1)))
    r = hub_cmd(["central", "publish-cap", str(tmp_path / "old.xml")], env)
    assert r.returncode != 0
    assert "ការព្រមាននេះបានផុតកំណត់" in r.stderr and "This alert expired at" in r.stderr, r.stderr
    # The console, as an officer who reads Khmer (the default) uploads a message with entities.
    store = CentralStore.open(tmp_path / "central")
    try:
        store.add_officer("officer", "a long password for the test")
        client = create_central_app(settings_mod.load(config=None, env={}, overrides={
            "data_dir": tmp_path / "central"}), store).test_client()
        token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
        client.post("/login", data={"username": "officer", "password": "a long password for the test",
                                    "csrf_token": token})
        token = CSRF.search(client.get("/publish").get_data(as_text=True)).group(1)
        r = client.post("/publish/cap", data={"csrf_token": token, "cap": (io.BytesIO(
            cap_message(b"x", uri="", extra=BOMB)), "bomb.xml", "application/xml")})
        page = r.get_data(as_text=True)
        assert r.status_code == 400
        assert "ត្រូវបានបដិសេធដើម្បីសុវត្ថិភាព" in page and "they are refused for safety" in page, page[-2000:]
        assert store.publications() == []
    finally:
        store.close()


def test_an_officer_marks_an_announcement_urgent_in_the_console_form(tmp_path):
    from hub.central.web import create_central_app
    from hub.core import settings as settings_mod

    store = CentralStore.open(tmp_path / "central")
    try:
        store.add_officer("officer", "a long password for the test")
        client = create_central_app(settings_mod.load(config=None, env={}, overrides={
            "data_dir": tmp_path / "central"}), store).test_client()
        token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
        client.post("/login", data={"username": "officer", "password": "a long password for the test",
                                    "csrf_token": token})
        token = CSRF.search(client.get("/publish?lang=en").get_data(as_text=True)).group(1)
        form = {"csrf_token": token, "kind": "announcement", "title_km": "ព្យុះ", "urgent": "1",
                "urgency": "Immediate", "severity": "Extreme", "certainty": "Observed", "to": "all"}

        def post(**extra):
            return client.post("/publish", data={**form, **extra, "audio": (io.BytesIO(b"ID3 audio"), "storm.mp3",
                                                                              "audio/mpeg")})

        r = post()
        assert r.status_code == 200 and "needs the time after which it stops playing" in r.get_data(as_text=True)
        r = post(urgent_expires=(datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
        assert "expired" in r.get_data(as_text=True)
        assert store.publications() == []
        later = datetime.now(UTC).astimezone(ZONE) + timedelta(hours=3)
        r = post(urgent_expires=later.strftime("%Y-%m-%dT%H:%M"))
        assert r.status_code == 303, r.get_data(as_text=True)[-1500:]
        (p,) = store.publications()
        assert p["urgent"] and p["kind"] == "announcement"
        assert (p["data"]["urgency"], p["data"]["severity"], p["data"]["certainty"]) == (
            "Immediate", "Extreme", "Observed")
        assert p["expires_at"] == later.replace(second=0, microsecond=0).astimezone(UTC).isoformat()
        page = client.get("/publish?lang=en").get_data(as_text=True)
        assert f"/publications/{p['id']}/acks" in page
    finally:
        store.close()
