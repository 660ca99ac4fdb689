"""Updates on the booted appliance: signed releases from a USB stick, A/B switch, rollback, power cuts.

The releases are this checkout's hub under other version numbers, built once per run:

- ``0.1.1``: the same code, a newer version: it must update;
- ``0.1.2``, published on a central server the test runs and fetched by sync: its web
  daemon exits at start, and it adds a migration: it must roll back
  to 0.1.1, with the database copy from before it put back (0.1.1 refuses a schema it
  does not know), and never be tried again;
- a release signed with another key: refused, nothing written.

The power-cut test SIGKILLs every process of the appliance while an update is held at
one of its steps (``HUB_UPDATE_PAUSE_AT``), boots it again, and checks that it runs one
of the two releases, healthily, with the feedback made before. CI cuts at ``trial``
(switched to the new release, not yet proved healthy); ``HUB_UPDATE_CUTS=all`` cuts at
every step, reusing one appliance.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.system.appliance import DAEMONS, REPO
from tests.system.conftest import receipt_of, send_feedback, session, wait_for
from tests.system.test_journeys import CENTRAL_PORT, Central

HUB = str(Path(sys.executable).with_name("hub"))
STEPS = ("install", "stop", "snapshot", "switch", "trial", "commit")
#: CI cuts once where the two releases meet (the new one switched to, not yet proved healthy).
CUTS = STEPS if os.environ.get("HUB_UPDATE_CUTS") == "all" else ("trial",)


def _build(work: Path, version: str, patch=None) -> Path:
    """This checkout's hub as a wheel of *version*, after *patch(src)*."""
    src = work / f"src-{version}"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in files:
        if (REPO / name).is_file() and not name.startswith("tests/"):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    for name, pattern, new in (("pyproject.toml", r'^version = "[^"]+"', f'version = "{version}"'),
                               ("hub/__init__.py", r'^__version__ = "[^"]+"', f'__version__ = "{version}"')):
        p = src / name
        text, n = re.subn(pattern, new, p.read_text(), count=1, flags=re.M)
        assert n == 1, name
        p.write_text(text)
    if patch:
        patch(src)
    out = work / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(src)],
                   check=True)
    return out / f"commune_hub-{version}-py3-none-any.whl"


def _break_web_and_migrate(src: Path) -> None:
    cmds = src / "hub/commands.py"
    text = cmds.read_text()
    assert "def cmd_web(args) -> int:\n" in text
    cmds.write_text(text.replace("def cmd_web(args) -> int:\n",
                                 "def cmd_web(args) -> int:\n    raise SystemExit('this release cannot serve')\n"))
    (src / "hub/migrations/update_probe.sql").write_text("create table update_probe (x integer);\n")
    mig = src / "hub/migrations/__init__.py"
    last = '    ("0009_page_versions", (HERE / "pages.sql",)),\n'
    mig.write_text(mig.read_text().replace(last, last + '    ("0010_update_probe", (HERE / "update_probe.sql",)),\n'))
    assert "0010_update_probe" in mig.read_text()


@pytest.fixture(scope="session")
def releases(tmp_path_factory) -> dict[str, Path]:
    """The release files, and the public key the appliance gets."""
    work = tmp_path_factory.mktemp("releases")
    key = work / "release.key"
    subprocess.run([HUB, "central", "release", "keygen", str(key)], check=True, capture_output=True)
    other = work / "other.key"
    subprocess.run([HUB, "central", "release", "keygen", str(other)], check=True, capture_output=True)
    good = _build(work, "0.1.1")
    bad = _build(work, "0.1.2", _break_web_and_migrate)
    made = {"pub": key.with_name("release.key.pub"), "key": key, "bad_wheel": bad}
    for name, wheel, k in (("good", good, key), ("bad", bad, key), ("forged", good, other)):
        out = work / f"{name}.release"
        subprocess.run([HUB, "central", "release", "publish", str(wheel), "--key", str(k), "--min-version", "0.1.0",
                        "--out", str(out), "--file-only"], check=True, capture_output=True)
        made[name] = out
    return made


def _appliance(make_appliance, releases, name: str, **settings):
    app = make_appliance(name, settings={"update_health_seconds": 60, **settings})
    app.write("/etc/hub/release-key.pub", releases["pub"].read_bytes())
    for n in ("good", "bad", "forged"):
        app.write(f"/media/usb/{n}.release", releases[n].read_bytes())
    return app


def running(app) -> str:
    link = app.sh("readlink /opt/hub/current").stdout.strip()
    version = app.hub("--version").stdout.split()[-1]
    assert link == f"releases/{version}", (link, version)
    return version


def all_active(app) -> bool:
    # (`systemctl is-active A B` exits 0 when any one is active: read each state.)
    states = app.sh(f"systemctl is-active {' '.join(DAEMONS)} hub-migrate", check=False).stdout.split()
    return states == ["active"] * (len(DAEMONS) + 1)


def healthy(app) -> None:
    assert all_active(app), app.sh(f"systemctl is-active {' '.join(DAEMONS)} hub-migrate", check=False).stdout
    assert session().get(f"{app.portal}/", timeout=30).status_code == 200


def migrations(app) -> list[str]:
    r = app.sh("sqlite3 -readonly /var/lib/hub/hub.db 'select name from _migrations'", user="hub")
    return r.stdout.split()


def has_receipt(app, receipt: str) -> bool:
    r = app.sh(f"sqlite3 -readonly /var/lib/hub/hub.db \"select count(*) from feedback where receipt = '{receipt}'\"",
               user="hub")
    return r.stdout.strip() == "1"


def central_health(central) -> dict:
    conn = sqlite3.connect(central.dir / "central.db")
    try:
        row = conn.execute("select health from hubs where name = 'commune-up'").fetchone()
    finally:
        conn.close()
    return json.loads(row[0]) if row and row[0] else {}


def test_a_signed_release_updates_and_a_broken_one_rolls_back(make_appliance, releases, tmp_path):
    central = Central(tmp_path / "central")
    token = central.cli("add-hub", "commune-up").strip().splitlines()[-1]
    app = _appliance(make_appliance, releases, "hubup", central_url=f"http://127.0.0.1:{CENTRAL_PORT}",
                     central_token=token, sync_interval_seconds=10)
    central.start(app.ns)
    try:
        _usb_then_sync(app, central, releases, tmp_path)
    finally:
        central.stop()


def _usb_then_sync(app, central, releases, tmp_path):
    app.boot()
    assert running(app) == "0.1.0"
    receipt = receipt_of(send_feedback(app, body="ទឹកមិនស្អាត before the update"))

    # A release signed with another key: refused before anything is written.
    r = app.hub("update /media/usb/forged.release", user=None, check=False)
    assert r.returncode == 1 and "signature" in r.stderr, r.stdout + r.stderr
    assert app.sh("ls /opt/hub/releases").stdout.split() == ["0.1.0"]
    assert running(app) == "0.1.0"

    # The good release from a USB stick: installed beside 0.1.0, switched to, healthy.
    r = app.hub("update /media/usb/good.release", user=None, check=False, timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "is running and healthy" in r.stdout
    assert running(app) == "0.1.1"
    assert app.sh("ls /opt/hub/releases").stdout.split() == ["0.1.0", "0.1.1"]
    wait_for(lambda: all_active(app), 60, interval=2)
    healthy(app)
    assert has_receipt(app, receipt)
    before = migrations(app)

    # The broken release, published on the central server: hub-sync downloads it,
    # hub-update.service installs it; its web daemon never starts, and it had migrated.
    central.cli("release", "publish", str(releases["bad_wheel"]), "--key", str(releases["key"]),
                "--min-version", "0.1.0", "--out", str(tmp_path / "bad.release"))
    history = app.root / "var/lib/hub/update/history.json"
    wait_for(lambda: history.exists() and '"0.1.2", "result": "rolled back"' in history.read_text(), 400,
             interval=2, message="release 0.1.2 was not downloaded, tried and rolled back")
    journal = app.journal("hub-update")
    assert "is not healthy" in journal and "hub-web.service" in journal, journal[-3000:]
    assert "putting back the copy" in journal, journal[-3000:]
    assert running(app) == "0.1.1"
    assert migrations(app) == before and "0010_update_probe" not in before
    wait_for(lambda: all_active(app), 90, interval=2)
    healthy(app)
    assert has_receipt(app, receipt)
    assert '"0.1.2"' in app.hub("update --status", user=None).stdout
    # Reported upstream with the next hello.
    wait_for(lambda: central_health(central).get("update_failed") == ["0.1.2"], 120, interval=3,
             message=f"the central server was not told: {central_health(central)}")
    assert central_health(central)["version"] == "0.1.1"
    # Never tried again: not downloaded again, and refused from a stick.
    assert not (app.root / "var/lib/hub/update/ready.release").exists()
    r = app.hub("update /media/usb/bad.release", user=None, check=False)
    assert r.returncode == 1 and "not tried again" in r.stderr, r.stdout + r.stderr
    assert app.sh("ls /opt/hub/releases").stdout.split() == ["0.1.0", "0.1.1"]


def test_a_power_cut_at_each_step_of_an_update_leaves_a_hub_on_one_release(make_appliance, releases):
    app = _appliance(make_appliance, releases, "hubpc")
    app.boot()
    receipt = receipt_of(send_feedback(app, body="ផ្លូវខូច before the cuts"))
    state = app.root / "var/lib/hub/update/state.json"
    for step in CUTS:
        assert running(app) == "0.1.0"
        out: dict = {}

        def go(step=step, out=out):
            out["r"] = app.sh(f"HUB_UPDATE_PAUSE_AT={step} hub update /media/usb/good.release", check=False,
                              timeout=400)

        t = threading.Thread(target=go, daemon=True)
        t.start()
        wait_for(lambda step=step: state.exists() and f'"step": "{step}"' in state.read_text(), 300,
                 interval=0.2, message=f"the update never reached step {step}: {out}")
        time.sleep(0.5)
        app.power_cut()
        t.join(timeout=30)
        app.boot()
        version = running(app)
        print(f"cut at {step}: boots on {version}", flush=True)
        assert version == ("0.1.1" if step == "commit" else "0.1.0"), step
        assert not state.exists(), step
        wait_for(lambda: all_active(app), 90, interval=2)
        healthy(app)
        assert has_receipt(app, receipt), step
        r = app.sh("sqlite3 -readonly /var/lib/hub/hub.db 'pragma integrity_check'", user="hub")
        assert r.stdout.strip() == "ok"
    if "commit" not in CUTS:
        # After the cuts the same release still installs: a cut is no failure of the release.
        r = app.hub("update /media/usb/good.release", user=None, check=False, timeout=400)
        assert r.returncode == 0, r.stdout + r.stderr
        assert running(app) == "0.1.1"
        assert has_receipt(app, receipt)
