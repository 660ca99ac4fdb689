"""systemd/hub-announcer.service: `systemd-analyze verify` prints nothing, and the unit keeps
the announcer's promises (notify, watchdog, restart, migrations first, hardening)."""

from __future__ import annotations

import tomllib

from tests.appliance.conftest import SYSTEMD_DIR, run, unit_tree
from tests.conftest import ROOT, need

UNIT = SYSTEMD_DIR / "hub-announcer.service"


def _parse(text: str) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = out.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key, []).append(value)
    return out


def _verify(tmp_path, text: str) -> str:
    need("systemd-analyze")
    unit = tmp_path / "units" / "hub-announcer.service"
    unit.parent.mkdir()
    unit.write_text(text)
    units = [unit, SYSTEMD_DIR / "hub-migrate.service", SYSTEMD_DIR / "hub.target"]
    root = tmp_path / "root"
    etc = unit_tree(root, units)
    r = run(["systemd-analyze", "verify", f"--root={root}", "hub-announcer.service"], cwd=etc)
    return (r.stdout + r.stderr).strip()


def test_unit_verifies_with_no_output(tmp_path):
    assert _verify(tmp_path, UNIT.read_text()) == ""


def test_verify_would_catch_a_mistake(tmp_path):
    bad = UNIT.read_text().replace("WatchdogSec=30", "WatchdogSecs=30")
    assert "WatchdogSecs" in _verify(tmp_path, bad)


def test_unit_keeps_the_announcers_promises():
    u = _parse(UNIT.read_text())
    svc, unit = u["Service"], u["Unit"]
    assert svc["Type"] == ["notify"] and svc["NotifyAccess"] == ["main"]
    assert int(svc["WatchdogSec"][0]) >= 10  # a beat every 50 ms of sound; slack for slow SD
    assert svc["Restart"] == ["on-failure"]
    assert svc["User"] == ["hub"]
    # /opt/hub/venv/bin/... or `/usr/bin/env` with PATH pointing there.
    (pre,) = svc["ExecStartPre"]
    (exe,) = svc["ExecStart"]
    assert pre.endswith("/hub migrate") or pre == "/usr/bin/env hub migrate", pre
    assert exe.split()[-1].rsplit("/", 1)[-1] == "hub-announcer", exe
    # Its groups are the hub user's own (audio, gpio where it exists): a unit naming a
    # group the system lacks never starts (status=216/GROUP).
    assert "SupplementaryGroups" not in svc
    assert svc["NoNewPrivileges"] == ["yes"] and svc["ProtectSystem"] == ["strict"]
    assert svc["ReadWritePaths"] == ["/var/lib/hub"]
    assert "PrivateDevices" not in svc  # it needs /dev/snd and /dev/gpiochip*
    assert "hub-migrate.service" in unit["Requires"][0]
    assert u["Install"]["WantedBy"] == ["hub.target"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["hub-announcer"] == "hub.announce.daemon:main"
