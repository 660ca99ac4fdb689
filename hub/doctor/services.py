"""The doctor's check of the hub's own services: each running and not restarting, and what each cannot use."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from hub.core import problems
from hub.core.checks import FAIL, OK, SKIP, WARN, Checkup, Finding
from hub.core.words import N_

#: The hub's long-running services, as systemd names them.
SERVICES = ("hub-web", "hub-announcer", "hub-recorder", "hub-transcriber", "hub-sync")

#: systemd's own exit codes (systemd.exec(5), "Process Exit Codes"): a service that
#: never got to run its program.
_SYSTEMD_EXITS = {200: "CHDIR", 203: "EXEC", 204: "MEMORY", 205: "LIMITS", 209: "STDOUT",
                  210: "CHROOT", 216: "GROUP", 217: "USER", 218: "CAPABILITIES", 219: "CGROUP",
                  225: "NETWORK", 226: "NAMESPACE", 227: "NO_NEW_PRIVILEGES", 228: "SECCOMP",
                  233: "RUNTIME_DIRECTORY", 238: "STATE_DIRECTORY"}


def check_services(checkup: Checkup) -> Finding:
    """Every daemon running and not restarting, and what each cannot use right now."""
    units = _unit_states(SERVICES)
    troubles = []
    for unit, state in (units or {}).items():
        restarts = int(state.get("NRestarts") or 0)
        why = _exit_reason(state)
        if state.get("ActiveState") != "active" or state.get("SubState") == "auto-restart":
            troubles.append(f"{unit} is {state.get('ActiveState')}/{state.get('SubState')}"
                            + (f" ({why})" if why else ""))
        elif restarts:
            troubles.append(f"{unit} restarted {restarts} time(s)" + (f", last {why}" if why else ""))
    if troubles:
        return Finding("services", FAIL, N_("%(troubles)s"), {"troubles": "; ".join(troubles)},
                       N_("`systemctl status UNIT` and `journalctl -u UNIT` say more; status=216/GROUP"
                          " or 217/USER means the unit names a group or user this system lacks."))
    now = problems.current(checkup.settings.data_dir) if checkup.settings is not None else {}
    reported = [f"{daemon}: {p['text']}" for daemon, parts in now.items() for p in parts.values()]
    if reported:
        return Finding("services", WARN, N_("Running, but cannot use: %(what)s"),
                       {"what": "; ".join(reported)},
                       N_("Plug in the sound card or check the pins and the hub user's groups (audio,"
                          " gpio); the services try again by themselves."))
    if units is None:
        return Finding("services", SKIP, N_("systemd is not running here"))
    return Finding("services", OK, N_("%(count)s services running, none restarting"), {"count": len(units)})


def _unit_states(units: tuple[str, ...]) -> dict[str, dict[str, str]] | None:
    """systemd's view of *units*, or None where systemd is not PID 1."""
    if not (Path("/run/systemd/system").is_dir() and shutil.which("systemctl")):
        return None
    props = "Id,ActiveState,SubState,NRestarts,Result,ExecMainCode,ExecMainStatus,StatusText"
    r = subprocess.run(["systemctl", "show", "-p", props, *[f"{u}.service" for u in units]],
                       capture_output=True, text=True, check=False)
    out: dict[str, dict[str, str]] = {}
    for block in r.stdout.strip().split("\n\n"):
        state = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if state.get("Id"):
            out[state["Id"].removesuffix(".service")] = state
    return out


def _exit_reason(state: dict[str, str]) -> str:
    """How the unit's main process last ended, in systemd's words (e.g. status=216/GROUP)."""
    status = int(state.get("ExecMainStatus") or 0)
    code = state.get("ExecMainCode")
    if code == "2" or state.get("Result") == "signal":  # CLD_KILLED
        return f"killed by signal {status}"
    if status:
        name = _SYSTEMD_EXITS.get(status)
        return f"status={status}/{name}" if name else f"status={status}"
    if state.get("Result") not in (None, "", "success"):
        return state["Result"]
    return state.get("StatusText", "")
