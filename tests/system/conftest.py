"""Fixtures for the booted appliance: the installed hub (once per run) and a client for each side."""

from __future__ import annotations

import os
import re
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.system.appliance import ALSA_FILES, CLERK, DAEMONS, Appliance, installed_layer

PACER = Path(__file__).resolve().parents[1] / "announce" / "pacer.py"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')
RECEIPT_RE = re.compile(r"/receipt/(\d+)")
MEDIA_RE = re.compile(r"/media/([0-9a-f-]{36}\.web\.(?:mp3|jpg))")
ZONE = ZoneInfo("Asia/Phnom_Penh")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/system/" in str(item.fspath):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def hub_layer(tmp_path_factory):
    """The hub of this checkout installed above the cached Debian root."""
    if os.geteuid() != 0:
        pytest.fail("the booted-appliance tests need root (mount, systemd-nspawn, ip netns); `make test` runs as root")
    for tool in ("mmdebstrap", "systemd-nspawn", "nsenter", "mcopy", "mkfs.vfat"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed; `make test` installs it")
    work = tmp_path_factory.mktemp("system")
    layer, base = installed_layer(work, log=lambda m: print(m, flush=True))
    return layer, base


def quiet_hours_away() -> dict:
    """Quiet hours that start six hours from now, so routine playout is allowed all test long."""
    now = datetime.now(ZONE)
    start, end = now + timedelta(hours=6), now + timedelta(hours=7)
    return {"quiet_hours_start": start.strftime("%H:%M"), "quiet_hours_end": end.strftime("%H:%M")}


@pytest.fixture
def make_appliance(hub_layer, tmp_path_factory):
    """Build appliances; each is powered off and taken apart at the end of the test."""
    made: list[Appliance] = []

    def make(name: str = "hub", **kw) -> Appliance:
        settings = {**quiet_hours_away(), **kw.pop("settings", {})}
        app = Appliance(tmp_path_factory.mktemp(name), *hub_layer, name=name, settings=settings, **kw)
        made.append(app)
        app.prepare()
        return app

    yield make
    for app in made:
        if app.proc is not None:
            print(f"--- console of {app.name}:\n" + app.console.read_text(errors="replace")[-3000:])
            for unit in (*DAEMONS, "nginx"):
                print(f"--- {unit}:\n" + app.journal(unit)[-2000:])
        app.destroy()


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # never a proxy from the environment
    # As a browser says of a form posted from the hub's own page (hub.web.pagecache).
    s.headers["Sec-Fetch-Site"] = "same-origin"
    return s


def csrf(s: requests.Session, url: str) -> str:
    r = s.get(url, timeout=30)
    assert r.status_code == 200, (url, r.status_code)
    m = CSRF_RE.search(r.text)
    assert m, f"no CSRF token on {url}"
    return m.group(1)


def clerk_session(app: Appliance) -> requests.Session:
    """A clerk logged in to the console from the office LAN."""
    s = session()
    token = csrf(s, f"{app.staff}/clerk/login")
    r = s.post(f"{app.staff}/clerk/login", data={"username": CLERK[0], "password": CLERK[1], "csrf_token": token},
               allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303), r.text[:500]
    return s


def send_feedback(app: Appliance, voice=None, body: str = "", s: requests.Session | None = None,
                  timeout: float = 120) -> requests.Response:
    """A villager's phone sends feedback through nginx on the villagers' side."""
    s = s or session()
    token = csrf(s, f"{app.portal}/feedback")
    files = {"voice": (voice.name, voice.read_bytes(), "application/octet-stream")} if voice else None
    return s.post(f"{app.portal}/feedback", data={"csrf_token": token, "category": "water", "body": body},
                  files=files, allow_redirects=False, timeout=timeout)


def receipt_of(r: requests.Response) -> str:
    assert r.status_code == 303, (r.status_code, r.text[:800])
    m = RECEIPT_RE.search(r.headers["Location"])
    assert m, r.headers["Location"]
    return m.group(1)


def a_minute_ahead(now: datetime) -> datetime:
    """The first whole minute at least 30 s after *now* (the console schedules to the minute)."""
    return (now + timedelta(seconds=90)).replace(second=0, microsecond=0)


def error_of(r: requests.Response) -> str:
    """The error a page shows, for assertion messages."""
    m = re.search(r'class="error"[^>]*>(.*?)</', r.text, re.S)
    return f"{r.status_code}: {re.sub(r'<[^>]+>', '', m.group(1)).strip() if m else r.text[:300]}"


def wait_for(what, timeout: float, interval: float = 1.0, message: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError((message() if callable(message) else message) or f"timed out after {timeout} s")
        time.sleep(interval)


def sound_card_appears(app: Appliance, paced: bool = False) -> None:
    """The hub's sound devices come to exist: ALSA files under the same names the image defines.

    *paced*: the speaker takes sound no faster than a real card (tests/announce/pacer.py
    behind an ALSA pipe), so playout lasts its real time and a power cut can land inside it.
    """
    app.write("/var/lib/hub/test/mic.raw", b"\0" * 32000 * 5, owner="hub")
    conf = ALSA_FILES
    if paced:
        app.write("/usr/local/lib/hub-test/pacer.py", PACER.read_bytes())
        conf = conf.replace('file "/var/lib/hub/test/speaker.raw"; format "raw"; truncate false',
                            'file "|/usr/bin/python3 /usr/local/lib/hub-test/pacer.py /var/lib/hub/test/speaker.raw";'
                            ' format "raw"')
        assert "pacer.py" in conf
    app.write("/etc/asound.conf", conf)
