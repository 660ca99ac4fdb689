"""Settings changed and diagnostics asked for from the central console, carried out on the next sync.

The central server's hello answer names what is waiting for this hub
(``remote``): at most one settings change and any diagnostics requests.

- **A settings change** is a few of :data:`hub.core.settings.REMOTE_SETTINGS`.
  :func:`checked` loads the hub's whole settings with the change on top, the
  way every daemon loads them (hub.toml, then the changes file), and runs the
  network plan's checks (``hub netconfig``'s): one bad value refuses the whole
  change, with its reason, and nothing is written. A good change is written
  durably to ``remote-settings.toml`` in the data directory; the file it
  replaces is kept as ``remote-settings.toml.previous``. The result goes back
  to the central server, then :data:`APPLY_FILE` asks the root unit
  ``hub-settings.service`` (started by ``hub-settings.path``) to re-render the
  network files if the Wi-Fi changed and to restart ``hub.target``: the
  daemons re-read their settings when they start. hub-sync itself may not
  restart units or write /etc.
- **A diagnostics bundle** is ``hub doctor --json``, versions, the settings in
  force and the newest journal lines of the hub's units, with every secret
  the hub knows replaced by ``[redacted]`` before it leaves (:func:`redact`).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import tomli_w

from hub import __version__
from hub.core import settings as settings_mod
from hub.core.db import utcnow
from hub.core.files import write_durably
from hub.core.settings import REMOTE_SETTINGS, SETTINGS, SettingsError
from hub.doctor.services import SERVICES
from hub.net.plan import validate as validate_network
from hub.sync import state as sync_state

log = logging.getLogger(__name__)

#: Written by hub-sync after a change, read (and removed) by `hub sync apply-settings` as root.
APPLY_FILE = "remote-settings.apply"
#: Settings whose change needs the network files rendered again (`hub netconfig apply`).
NETWORK_SETTINGS = ("ssid", "staff_ssid", "staff_passphrase")
#: What replaces a secret in anything sent to the central server.
REDACTED = "[redacted]"
#: Journal lines per bundle, newest last, and the bundle's largest size.
JOURNAL_LINES = 400
MAX_BUNDLE_BYTES = 768 * 1024
#: Libraries whose versions a bundle lists.
PACKAGES = ("flask", "gunicorn", "requests", "vosk", "pyaudio", "gpiozero", "psycopg")
#: A bearer token or key=value secret in free text (a URL, a command line).
SECRET_PATTERNS = (re.compile(r"(?i)(bearer\s+)\S+"),
                   re.compile(r"(?i)((?:token|passphrase|password|secret|key)[\"']?\s*[=:]\s*[\"']?)[^\s\"',}]+"))


def checked(settings, changes: dict) -> settings_mod.Settings:
    """*settings*' sources with *changes* on top of the changes file, checked as hub.toml is; or SettingsError."""
    current = settings_mod.read_remote(settings_mod.remote_path(settings.data_dir))
    new = settings_mod.load(settings.source, env=dict(os.environ), remote={**current, **changes})
    validate_network(new)
    return new


#: Stands in for a passphrase the hub's own hub.toml may hold, when the central server checks a
#: change of the staff network's name alone; the hub checks the change again with its real one.
_SOME_PASSPHRASE = "passphrase"


def check_change(changes: dict) -> settings_mod.Settings:
    """The central server's check of an officer's change, on the defaults (it has no hub.toml)."""
    values = dict(changes)
    if values.get("staff_ssid") and "staff_passphrase" not in values:
        values["staff_passphrase"] = _SOME_PASSPHRASE
    new = settings_mod.load(config=os.devnull, env={}, remote=values)
    validate_network(new)
    return new


def reported_values(settings) -> dict:
    """The remotely changeable settings in force, secrets masked, for the console."""
    shown = settings.as_dict()
    return {k: shown[k] for k in REMOTE_SETTINGS}


def apply_change(ctx, change: dict) -> dict:
    """Check and write one settings change; return the report for the central server."""
    values = change.get("values") if isinstance(change.get("values"), dict) else {}
    change_id = str(change.get("id", ""))
    path = settings_mod.remote_path(ctx.settings.data_dir)
    try:
        if not values:
            raise SettingsError("the change names no setting")
        new = checked(ctx.settings, values)
    except SettingsError as e:
        log.warning("settings change %s from the central server refused: %s", change_id, e)
        return {"state": "refused", "message": str(e), "values": reported_values(ctx.settings)}
    current = settings_mod.read_remote(path)
    merged = {**current, **values}
    if merged != current or sync_state.get_state(ctx.db, "settings_change") != change_id:
        head = (f"# Settings changed from the central console (change {change_id}, {utcnow()}), read after\n"
                f"# hub.toml. Written by hub-sync; the file before is {path.name}{settings_mod.PREVIOUS_SUFFIX}.\n")
        if path.exists():
            write_durably(path.with_name(path.name + settings_mod.PREVIOUS_SUFFIX), source=path, mode=0o640)
        write_durably(path, (head + tomli_w.dumps(merged)).encode("utf-8"), mode=0o640)
        sync_state.set_state(ctx.db, settings_change=change_id,
                             settings_change_restart=json.dumps({
                                 "change": change_id,
                                 "netconfig": any(k in values for k in NETWORK_SETTINGS)}))
        log.info("settings change %s from the central server written to %s: %s", change_id, path,
                 ", ".join(sorted(values)))
    return {"state": "applied", "message": "", "values": reported_values(new)}


def request_restart(ctx) -> None:
    """Ask hub-settings.service (root) to re-render what the change needs and restart the daemons."""
    pending = sync_state.get_state(ctx.db, "settings_change_restart")
    if not pending:
        return
    write_durably(Path(ctx.settings.data_dir) / APPLY_FILE, pending.encode(), mode=0o640)
    sync_state.set_state(ctx.db, settings_change_restart=None)


# --- diagnostics -----------------------------------------------------------------------------

def secrets_of(settings) -> list[str]:
    """Every secret value the hub holds in its settings (long enough to be worth hiding)."""
    return [v for s in SETTINGS if s.secret and isinstance(v := getattr(settings, s.name), str) and len(v) >= 4]


def redact(text: str, secrets_: list[str]) -> str:
    for s in sorted(set(secrets_), key=len, reverse=True):
        text = text.replace(s, REDACTED)
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def _run(cmd: list[str], beat, timeout: float = 120.0) -> tuple[int, str, str]:
    """Run *cmd*, keeping the watchdog fed; (exit code, stdout, stderr)."""
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
    except OSError as e:
        return -1, "", f"{cmd[0]}: {e.strerror}"
    deadline = time.monotonic() + timeout
    while True:
        beat()
        try:
            out, err = proc.communicate(timeout=2)
            return proc.returncode, out, err
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                proc.kill()
                out, err = proc.communicate()
                return -1, out, err + f"\n(stopped after {timeout:.0f} s)"


def doctor_command(settings) -> list[str]:
    cmd = [sys.executable, "-m", "hub.cli"]
    if settings.source:
        cmd += ["--config", str(settings.source)]
    return cmd + ["doctor", "--json", "--lang", "en", "--timeout", "3"]


def journal_command() -> list[str]:
    units = [f"--unit={u}.service" for u in (*SERVICES, "hub-migrate", "hub-doctor", "hub-settings", "hub-firstboot")]
    return ["journalctl", "--no-pager", "--quiet", "--output=short-iso", f"--lines={JOURNAL_LINES}", *units]


def _versions() -> dict:
    out = {"hub": __version__, "python": platform.python_version(), "kernel": platform.release(),
           "machine": platform.machine()}
    for name, path in (("os", "/etc/os-release"), ("release", "/etc/hub/release")):
        try:
            out[name] = Path(path).read_text(encoding="utf-8", errors="replace")[:2000]
        except OSError:
            out[name] = ""
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = ""
    return out


def bundle(ctx, beat=lambda: None, journal: list[str] | None = None) -> dict:
    """The diagnostics bundle of this hub now, every known secret redacted."""
    s = ctx.settings
    code, doctor_out, doctor_err = _run(doctor_command(s), beat)
    try:
        doctor = json.loads(doctor_out)
    except ValueError:
        doctor = {"exit": code, "output": doctor_out[-20000:], "errors": doctor_err[-4000:]}
    code, lines, err = _run(journal or journal_command(), beat, timeout=60)
    journal_lines = lines.splitlines()[-JOURNAL_LINES:] if code == 0 else [f"journalctl: {err.strip()[-500:]}"]
    remote_file = settings_mod.remote_path(s.data_dir)
    data = {"hub_id": ctx.hub_id, "made_at": utcnow(), "versions": _versions(), "doctor": doctor,
            "settings": {k: str(v) for k, v in s.as_dict().items()},
            "remote_settings_file": remote_file.exists(),
            "sync_state": {k: v for k, v in sync_state.all_state(ctx.db).items()
                           if not k.startswith(("audio_of:", "announcement_of:"))},
            "journal": journal_lines}
    data = redact_all(json.loads(json.dumps(data, default=str)), secrets_of(s))
    while len(json.dumps(data, ensure_ascii=False).encode("utf-8")) > MAX_BUNDLE_BYTES and data["journal"]:
        data["journal"] = data["journal"][len(data["journal"]) // 4 + 1:]
    return data


def redact_all(value, secrets_: list[str]):
    """*value* (JSON data) with every string in it redacted."""
    if isinstance(value, str):
        return redact(value, secrets_)
    if isinstance(value, list):
        return [redact_all(v, secrets_) for v in value]
    if isinstance(value, dict):
        return {k: redact_all(v, secrets_) for k, v in value.items()}
    return value


# --- one sync cycle's part ---------------------------------------------------------------------

def run(ctx, client, hello: dict, out, beat=lambda: None) -> None:
    """Carry out what the central console asked of this hub (the hello answer's ``remote``)."""
    remote = hello.get("remote") if isinstance(hello.get("remote"), dict) else {}
    for request_id in [str(r) for r in remote.get("diagnostics") or []][:3]:
        client.call_json("PUT", f"/diagnostics/{request_id}", bundle(ctx, beat))
        out.extra.setdefault("diagnostics", []).append(request_id)
    change = remote.get("settings")
    if isinstance(change, dict) and change.get("id"):
        report = apply_change(ctx, change)
        try:
            client.call_json("POST", f"/settings/{change['id']}", report)
        finally:
            if report["state"] == "applied":
                request_restart(ctx)
        out.extra["settings_change"] = {"id": change["id"], **{k: report[k] for k in ("state", "message")}}
