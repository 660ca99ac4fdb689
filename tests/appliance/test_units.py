"""The systemd units: `systemd-analyze verify` prints nothing, and each unit keeps the rules."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.appliance.conftest import FIRSTBOOT_DIR, SYSTEMD_DIR, run, unit_tree
from tests.conftest import ROOT, need

DAEMONS = ("hub-web", "hub-announcer", "hub-recorder", "hub-transcriber", "hub-sync")
#: Daemons run by hub.core.daemon.serve, which sends READY=1 and watchdog pings.
SERVED = ("hub-recorder", "hub-transcriber", "hub-sync")


def our_units() -> list[Path]:
    units = sorted(SYSTEMD_DIR.glob("*.service")) + sorted(SYSTEMD_DIR.glob("*.timer"))
    units += sorted(SYSTEMD_DIR.glob("*.path"))
    return units + sorted(SYSTEMD_DIR.glob("*.target")) + [FIRSTBOOT_DIR / "hub-firstboot.service"]


def verify_in_tree(tmp_path, units: list[Path]) -> str:
    need("systemd-analyze")
    root = tmp_path / "root"
    etc = unit_tree(root, units)
    r = run(["systemd-analyze", "verify", f"--root={root}", *[u.name for u in units]], cwd=etc)
    return (r.stdout + r.stderr).strip()


def parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values]}} (systemd allows repeated keys)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = out.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return out


def test_every_unit_verifies_with_no_output(tmp_path):
    units = our_units()
    announcer = SYSTEMD_DIR / "hub-announcer.service"
    assert len(units) >= 9, units
    output = verify_in_tree(tmp_path, units)
    assert output == "", output
    if not announcer.exists():
        pytest.fail("systemd/hub-announcer.service is missing (hub.target wants it)")


def test_verify_in_the_tree_does_catch_mistakes(tmp_path):
    """The check above can fail: a typo and a missing binary both produce output."""
    bad = tmp_path / "bad"
    bad.mkdir()
    text = (SYSTEMD_DIR / "hub-sync.service").read_text()
    (bad / "hub-sync.service").write_text(text.replace("Type=notify", "Type=notfy"))
    (bad / "hub-migrate.service").write_text(
        (SYSTEMD_DIR / "hub-migrate.service").read_text().replace("/usr/bin/env ", "/usr/bin/env-nope "))
    output = verify_in_tree(tmp_path, sorted(bad.iterdir()))
    assert "notfy" in output and "env-nope" in output, output


def test_the_plain_done_when_command_prints_nothing():
    """`systemd-analyze verify systemd/*.service systemd/*.timer`, literally, from the repo root."""
    need("systemd-analyze")
    units = sorted(str(p.relative_to(ROOT)) for p in SYSTEMD_DIR.glob("*.service"))
    units += sorted(str(p.relative_to(ROOT)) for p in SYSTEMD_DIR.glob("*.timer"))
    r = run(["systemd-analyze", "verify", *units], cwd=ROOT)
    assert r.returncode == 0 and (r.stdout + r.stderr) == "", r.stdout + r.stderr


def test_daemons_keep_the_rules():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    target = parse(SYSTEMD_DIR / "hub.target")
    wanted = " ".join(target["Unit"]["Wants"]).split()
    for name in DAEMONS:
        assert f"{name}.service" in wanted, f"hub.target does not want {name}"
        path = SYSTEMD_DIR / f"{name}.service"
        if name == "hub-announcer" and not path.exists():
            continue  # written with the announcer; test_every_unit_... reports it missing
        u = parse(path)
        svc, unit = u["Service"], u["Unit"]
        assert svc["User"] == ["hub"], name
        assert svc["Restart"] == ["on-failure"], name
        assert svc["NoNewPrivileges"] == ["yes"], name
        assert svc["ProtectSystem"] == ["strict"], name
        assert svc["ReadWritePaths"] == ["/var/lib/hub"], name
        assert svc["Type"] == ["notify"], name
        assert "hub-migrate.service" in " ".join(unit.get("Requires", [])), name
        assert "hub-migrate.service" in " ".join(unit.get("After", [])), name
        env, exe = svc["ExecStart"][0].split()[:2]
        assert env == "/usr/bin/env", svc["ExecStart"]
        assert any(e.startswith("PATH=/opt/hub/current/bin:") for e in svc["Environment"]), name
        assert exe in scripts, f"{exe} is not a console script in pyproject.toml"
        caps = svc.get("CapabilityBoundingSet", [""])[0]
        if name in ("hub-web", "hub-sync"):
            assert caps == "CAP_SYS_TIME", name  # trusted time sources step the clock
        elif name != "hub-announcer":
            assert caps == "", f"{name} keeps capabilities: {caps}"
        if name in SERVED:
            assert int(svc["WatchdogSec"][0]) > 0, name
    web = parse(SYSTEMD_DIR / "hub-web.service")["Service"]
    assert "--bind unix:/run/hub/web.sock" in web["ExecStart"][0]
    assert web["RuntimeDirectory"] == ["hub"]
    assert "WatchdogSec" not in web  # gunicorn sends READY=1 but no watchdog pings
    t = parse(SYSTEMD_DIR / "hub-transcriber.service")["Service"]
    assert t["Nice"] == ["19"] and t["CPUSchedulingPolicy"] == ["idle"]
    assert t["IOSchedulingClass"] == ["idle"]
    # Groups come from the hub user's membership, never from the unit: a unit naming a
    # group the system lacks (gpio exists only on Raspberry Pi OS) cannot start at all.
    for unit in sorted(SYSTEMD_DIR.glob("*.service")):
        assert "SupplementaryGroups" not in parse(unit).get("Service", {}), unit.name
    mig = parse(SYSTEMD_DIR / "hub-migrate.service")["Service"]
    assert mig["Type"] == ["oneshot"] and mig["ExecStart"] == ["/usr/bin/env hub migrate"]


def _notify_listener(tmp_path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.5)
    return s, path


def test_hub_web_tells_systemd_it_is_ready(tmp_path):
    """What Type=notify relies on: `hub web` (gunicorn) sends READY=1 on $NOTIFY_SOCKET
    once it listens on the unix socket the unit gives it."""
    listener, address = _notify_listener(tmp_path)
    sock = tmp_path / "web.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATA_DIR=str(tmp_path / "data"), NOTIFY_SOCKET=address)
    subprocess.run([sys.executable, "-m", "hub.cli", "migrate"], env=env, check=True,
                   capture_output=True, cwd=tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "web", "--bind", f"unix:{sock}",
                             "--workers", "1"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    messages = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("READY=1" in m for m in messages):
            try:
                messages.append(listener.recv(4096).decode())
            except TimeoutError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert any("READY=1" in m for m in messages), messages
        # nginx (www-data) must be able to connect: the socket is open to others.
        assert sock.exists() and sock.stat().st_mode & 0o006 == 0o006
        r = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", sock,
                 "http://hub.local/"])
        assert r.stdout == "200", r
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
        proc.stderr.close()
        listener.close()


def test_every_unit_has_a_description_and_documentation():
    """Every unit names its purpose for a technician reading `systemctl status`."""
    for path in our_units():
        u = parse(path)
        assert u["Unit"]["Description"][0].startswith("Commune hub"), path.name
        assert re.match(r"file:///opt/hub/", u["Unit"]["Documentation"][0]), path.name
