"""The hub as deployed: booted under systemd, used through nginx as phones and clerks use it.

One appliance is booted for the module, and the tests below are the journeys
of its users, in order: it comes up; its daemons survive missing hardware and
recover when the sound card appears; villagers send voice from every kind of
phone; a clerk publishes, schedules and reads; sync reaches a central server
and brings a publication back; hub doctor tells the truth.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.phone_audio import encode, tone_wav
from tests.system.appliance import DAEMONS, Appliance, run
from tests.system.conftest import (
    MEDIA_RE,
    ZONE,
    a_minute_ahead,
    clerk_session,
    csrf,
    error_of,
    quiet_hours_away,
    receipt_of,
    send_feedback,
    session,
    sound_card_appears,
    wait_for,
)

HUB = str(Path(os.sys.executable).with_name("hub"))
CENTRAL_PORT = 8700


class Central:
    """The district server, run by the test inside the hub's network namespace on its loopback."""

    def __init__(self, data_dir: Path):
        self.dir = data_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("HUB_")},
                    "HUB_DATA_DIR": str(data_dir), "HUB_PORT": str(CENTRAL_PORT), "HUB_HOST": "127.0.0.1"}
        self.proc = None

    def cli(self, *args: str) -> str:
        r = subprocess.run([HUB, "central", *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def start(self, netns: str) -> None:
        self.log = open(self.dir / "central.log", "ab")  # noqa: SIM115 - closed in stop
        self.proc = subprocess.Popen(["ip", "netns", "exec", netns, HUB, "central"], env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def records(self) -> list[dict]:
        out = self.cli("export", "--format", "jsonl")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.log.close()


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    c = Central(tmp_path_factory.mktemp("central"))
    yield c
    c.stop()


@pytest.fixture(scope="module")
def app(hub_layer, tmp_path_factory, central):
    token = central.cli("add-hub", "commune-test").strip().splitlines()[-1]
    settings = {**quiet_hours_away(), "central_url": f"http://127.0.0.1:{CENTRAL_PORT}",
                "central_token": token, "sync_interval_seconds": 10, "log_level": "debug"}
    a = Appliance(tmp_path_factory.mktemp("journeys"), *hub_layer, name="hubj", settings=settings, uplink=True)
    try:
        a.prepare()
        # No pins here: the relay goes through gpiozero's mock pin factory, so the
        # announcer has pins to switch. The kiosk keeps the real factory, and no GPIO.
        a.drop_in("hub-announcer", "mock-pins", "[Service]\nEnvironment=GPIOZERO_PIN_FACTORY=mock\n")
        central.start(a.ns)
        started = time.monotonic()
        a.boot()
        a.booted_at = started
        print(f"booted in {time.monotonic() - started:.1f} s")
        yield a
    finally:
        if a.proc is not None:
            print("--- console:\n" + a.console.read_text(errors="replace")[-4000:])
            for unit in DAEMONS:
                print(f"--- {unit}:\n" + a.journal(unit)[-2500:])
        a.destroy()


def text_of(r) -> str:
    """A page's text without the zero-width spaces the hub puts between Khmer words."""
    return r.text.replace("\u200b", "")


def doctor(app: Appliance) -> dict:
    r = app.hub("doctor --json --lang en", check=False)
    report = json.loads(r.stdout)
    return {c["id"]: c for c in report["checks"]}


def test_every_daemon_is_active_and_none_has_restarted_a_minute_after_boot(app):
    time.sleep(max(0.0, 60 - (time.monotonic() - app.booted_at)))
    states = {u: (app.unit(u, "ActiveState"), app.unit(u, "NRestarts")) for u in DAEMONS}
    assert states == {u: ("active", "0") for u in DAEMONS}, states
    assert app.unit("nginx", "ActiveState") == "active"
    assert app.sh("ps -o user= -C nginx | sort -u").stdout.split() == ["root", "www-data"]


def test_missing_sound_card_and_pins_are_reported_and_the_daemons_keep_running(app):
    found = wait_for(lambda: (d := doctor(app)["services"]) and "cannot use" in d["detail"] and d,
                     30, message="hub doctor does not say what the daemons cannot use")
    assert found["status"] == "warn"
    assert "announcer" in found["detail"] and "hub_speaker" in found["detail"]
    assert "recorder" in found["detail"] and "button pin GPIO22" in found["detail"]
    assert app.unit("hub-announcer", "NRestarts") == "0" and app.unit("hub-recorder", "NRestarts") == "0"
    # The clerk sees it too.
    page = clerk_session(app).get(f"{app.staff}/clerk/", timeout=30).text
    assert "hub_speaker" in page and "GPIO22" in page


def test_the_announcer_recovers_when_the_sound_card_appears(app):
    pid = app.unit("hub-announcer", "MainPID")
    sound_card_appears(app)
    wait_for(lambda: "hub_speaker" not in doctor(app)["services"]["detail"], 60,
             message="the announcer did not find the sound card once it appeared")
    assert app.unit("hub-announcer", "MainPID") == pid


@pytest.mark.parametrize("fmt", ["m4a", "3gp", "webm", "mp3"])
def test_a_villager_sends_voice_from_a_phone_and_its_web_copy_plays_through_nginx(app, fmt, tmp_path):
    voice = encode(tone_wav(tmp_path / "v.wav", seconds=2.0), fmt, tmp_path)
    code = receipt_of(send_feedback(app, voice))
    assert session().get(f"{app.portal}/receipt/{code}", timeout=30).status_code == 200
    clerk = clerk_session(app)
    inbox = clerk.get(f"{app.staff}/clerk/feedback/", timeout=30).text
    row = next(row for row in inbox.split("<tr")[1:] if code in row)
    name = MEDIA_RE.search(row).group(1)
    r = clerk.get(f"{app.staff}/media/{name}", timeout=30)
    assert (r.status_code, r.headers["Content-Type"]) == (200, "audio/mpeg")
    assert len(r.content) > 4000


def test_a_clerk_publishes_a_notice_with_a_picture_and_audio_and_a_phone_gets_both(app, tmp_path):
    png = tmp_path / "poster.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=green:s=320x200", "-frames:v", "1",
                    str(png)], check=True)
    mp3 = encode(tone_wav(tmp_path / "n.wav", seconds=1.5), "mp3", tmp_path)
    clerk = clerk_session(app)
    token = csrf(clerk, f"{app.staff}/clerk/notices/new")
    r = clerk.post(f"{app.staff}/clerk/notices/new",
                   data={"csrf_token": token, "title_km": "ប្រជុំភូមិ", "title_en": "Village meeting",
                         "body_km": "នៅសាលាឃុំ"},
                   files={"image": ("poster.png", png.read_bytes()), "audio": ("n.mp3", mp3.read_bytes())},
                   allow_redirects=False, timeout=120)
    assert r.status_code in (302, 303), r.text[:800]
    phone = session()
    home = text_of(phone.get(f"{app.portal}/", timeout=30))
    assert "ប្រជុំភូមិ" in home
    notice = home.split('href="/notice/', 1)[1].split('"', 1)[0]
    page = phone.get(f"{app.portal}/notice/{notice}", timeout=30).text
    got = {}
    for name in MEDIA_RE.findall(page):
        r = phone.get(f"{app.portal}/media/{name}", timeout=30)
        got[name.rsplit(".", 1)[1]] = (r.status_code, r.headers.get("Content-Type"))
    assert got == {"jpg": (200, "image/jpeg"), "mp3": (200, "audio/mpeg")}


def test_a_phone_gets_the_portal_pages_from_the_file_the_hub_wrote(app):
    """The page cache as deployed: hub-web (user hub) writes the page, nginx (www-data) serves it."""
    phone = session()
    first = phone.get(f"{app.portal}/", timeout=30)
    second = phone.get(f"{app.portal}/", timeout=30)
    assert first.status_code == second.status_code == 200
    assert "ETag" in second.headers, "the second visit did not come from the file nginx serves"
    assert second.content == first.content
    owner = app.sh("stat -c '%U:%G %a' /var/lib/hub/pages/live/km/home.html").stdout.split()
    assert owner == ["hub:hub", "640"], owner


def curl_from(ifname: str, url: str) -> tuple[int, str]:
    """curl's exit status and HTTP code for *url*, sent out of the host's end of *ifname*.

    7: refused (the hub answered with a reset), 28: no answer at all (dropped),
    52: the connection closed with no reply (nginx's 444)."""
    r = run(["curl", "--noproxy", "*", "-s", "--max-time", "4", "-o", "/dev/null", "-w", "%{http_code}",
             "--interface", f"if!{ifname}", url], check=False)
    return r.returncode, r.stdout


def test_the_console_exists_only_on_the_staff_side(app):
    r = session().get(f"{app.portal}/clerk/login", timeout=30, allow_redirects=False)
    assert r.status_code == 404
    # A phone asking for the staff address is turned to the portal, which has no console.
    assert curl_from(app.phone_if, f"http://{app.staff_address}/clerk/login") == (0, "404")
    clerk = clerk_session(app)
    assert clerk.get(f"{app.staff}/clerk/", timeout=30, allow_redirects=False).status_code == 200
    # The uplink (eth1 here) reaches the hub: a closed port answers with a reset ...
    assert curl_from(app.uplink_if, f"http://{app.staff_address}:81/")[0] == 7
    # ... but port 80 answers nothing there: not at its own address, not at the staff one.
    for address in (app.uplink_address, app.staff_address, app.ap_address):
        assert curl_from(app.uplink_if, f"http://{address}/clerk/login") == (28, "000"), address
    # nginx answers no address but the two sides': even from the staff LAN, the uplink's
    # address closes the connection unanswered.
    assert curl_from(app.clerk_if, f"http://{app.uplink_address}/clerk/login") == (52, "000")


def test_an_announcement_scheduled_in_the_console_plays_with_the_relay_around_it(app, tmp_path):
    sound_card_appears(app)
    wait_for(lambda: "hub_speaker" not in doctor(app)["services"]["detail"], 60)
    clerk = clerk_session(app)
    # The container has no time source: the clerk confirms the clock with one click.
    token = csrf(clerk, f"{app.staff}/clerk/")
    clerk.post(f"{app.staff}/clerk/clock", data={"csrf_token": token,
                                                 "device_epoch_ms": str(int(time.time() * 1000))}, timeout=30)
    at = a_minute_ahead(datetime.now(ZONE))
    wav = tone_wav(tmp_path / "a.wav", seconds=2.0, freq=660)
    token = csrf(clerk, f"{app.staff}/clerk/announcements/new")
    r = clerk.post(f"{app.staff}/clerk/announcements/new",
                   data={"csrf_token": token, "title": "ប្រជុំ", "when": "once", "date": at.date().isoformat(),
                         "time": at.strftime("%H:%M"), "repeats": "1"},
                   files={"audio": ("a.wav", wav.read_bytes())}, allow_redirects=False, timeout=120)
    assert r.status_code == 303, error_of(r)

    def played():
        out = app.hub("announce log --csv").stdout
        # The proof-of-play log has a row once an occurrence has ended, however it ended.
        return [row for row in csv.DictReader(io.StringIO(out)) if row["title"] == "ប្រជុំ"]

    rows = wait_for(played, 180, interval=2, message="the announcement did not play")
    assert [row["outcome"] for row in rows] == ["played"], rows
    captured = sorted((app.root / "var/lib/hub/test").glob("speaker.raw*"))
    assert captured and max(p.stat().st_size for p in captured) > 2 * 48000 * 2
    # The relay (a mock pin in this container) went on before the first sample and off after the last.
    relay = {}
    for line in app.journal("hub-announcer").splitlines():
        for word in ("amplifier on", "amplifier off"):
            if line.endswith(word):
                relay.setdefault(word, datetime.fromisoformat(line.split()[0]))
    started, ended = (datetime.fromisoformat(rows[0][k]) for k in ("started_at", "ended_at"))
    assert relay["amplifier on"] <= started <= ended <= relay["amplifier off"], (relay, started, ended)


def test_sync_delivers_to_the_central_server_and_a_publication_comes_back(app, central):
    code = receipt_of(send_feedback(app, body="ទឹកអណ្តូងខូច"))
    wait_for(lambda: any(r.get("receipt") == code or code in json.dumps(r, ensure_ascii=False)
                         for r in central.records()), 120, interval=3,
             message="the feedback did not reach the central server")
    central.cli("publish", "--title-km", "ព័ត៌មានពីស្រុក", "--title-en", "News from the district")
    try:
        wait_for(lambda: "ព័ត៌មានពីស្រុក" in text_of(session().get(f"{app.portal}/", timeout=30)), 120, interval=3,
                 message="the publication did not come down to the portal")
    except AssertionError:
        print(app.journal("hub-sync")[-3000:], (central.dir / "central.log").read_text()[-3000:])
        raise


def test_hub_doctor_names_a_unit_that_keeps_restarting_and_why(app):
    checks = doctor(app)
    assert checks["database"]["status"] == "ok" and checks["portal"]["status"] == "ok"
    assert checks["services"]["status"] in ("ok", "warn")
    # The technician's `sudo hub doctor` sees the same hub as the services.
    report = json.loads(app.hub("doctor --json --lang en", check=False, user=None).stdout)
    as_root = {c["id"]: c for c in report["checks"]}
    assert {k: v["status"] for k, v in as_root.items()} == {k: v["status"] for k, v in checks.items()}
    # A unit that names a group this system lacks cannot start, and systemd restarts it for ever.
    app.write("/etc/systemd/system/hub-transcriber.service.d/group.conf",
              "[Service]\nSupplementaryGroups=nosuchgroup\n")
    app.sh("systemctl daemon-reload && systemctl restart hub-transcriber", check=False)
    try:
        found = wait_for(lambda: "216/GROUP" in (d := doctor(app)["services"])["detail"] and d, 60,
                         message="hub doctor did not name the restarting unit")
        assert found["status"] == "fail" and "hub-transcriber" in found["detail"]
    finally:
        (app.root / "etc/systemd/system/hub-transcriber.service.d/group.conf").unlink()
        app.sh("systemctl daemon-reload && systemctl restart hub-transcriber", check=False)
