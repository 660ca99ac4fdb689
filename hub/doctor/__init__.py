"""`hub doctor`: the one command a technician runs to see what is wrong.

The doctor only collects. Each check lives beside the part of the hub it checks
and returns a :class:`~hub.core.checks.Finding`: ok, warn (works, but look at it),
fail (something the hub needs is broken; the exit code is 1) or skip (does not
apply to this hub). Every failure carries a fix hint. :mod:`hub.doctor.report`
says the findings in Khmer or English, through the same catalogue as the web
pages, and ``--json`` prints them for scripts.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

from hub.core.checks import FAIL, SKIP, WARN, Checkup, Finding
from hub.core.db import utcnow
from hub.core.errors import HubError
from hub.core.files import write_durably
from hub.core.words import N_
from hub.doctor.report import render_json, render_text

#: Every check, in report order, and where it lives; `--skip` takes these names.
#: The configuration and database checks come first: the later ones use what they found.
CHECKS = {
    "config": "hub.doctor.system:check_config",
    "database": "hub.doctor.system:check_database",
    "disk": "hub.doctor.system:check_disk",
    "clock": "hub.doctor.system:check_clock",
    "services": "hub.doctor.services:check_services",
    "access_point": "hub.net.checks:check_access_point",
    "portal": "hub.net.checks:check_portal",
    "audio": "hub.doctor.hardware:check_audio",
    "gpio": "hub.doctor.hardware:check_gpio",
    "speech": "hub.voice.checks:check_speech",
    "uplink": "hub.sync.checks:check_uplink",
    "sync": "hub.sync.checks:check_sync",
    "backup": "hub.backup.checks:check_backup",
}


def check_function(name: str):
    """The function a CHECKS entry names."""
    module, _, function = CHECKS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def run(checkup: Checkup, skip: set[str] | None = None) -> list[Finding]:
    """Every check in order; one that crashes is reported as failed, not raised."""
    skip = skip or set()
    results = []
    for name in CHECKS:
        if name != "config" and name in skip:
            results.append(Finding(name, SKIP, N_("Skipped on request")))
            continue
        try:
            results.append(check_function(name)(checkup))
        except Exception as e:
            results.append(Finding(name, FAIL, N_("The check itself failed: %(error)s"),
                                   {"error": f"{type(e).__name__}: {e}"},
                                   N_("Report this to the hub's developers with the output of"
                                      " `hub doctor --json`.")))
    if checkup.db is not None:
        checkup.db.close()
        checkup.db = None
    return results


#: Where the newest run's failing checks are kept; sync sends them to the central server.
SUMMARY = "doctor.json"


def save_summary(settings, results: list[Finding]) -> None:
    """Keep the names of the failing and warning checks for the health report (best effort)."""
    data_dir = Path(getattr(settings, "data_dir", "") or ".")
    if not data_dir.is_dir() or not os.access(data_dir, os.W_OK):
        return
    summary = {"at": utcnow(), "failing": [r.name for r in results if r.status == FAIL],
               "warning": [r.name for r in results if r.status == WARN]}
    path = data_dir / SUMMARY
    try:
        write_durably(path, json.dumps(summary).encode())
        owner = data_dir.stat()
        if os.geteuid() == 0:
            os.chown(path, owner.st_uid, owner.st_gid)
    except OSError:
        pass


def register(sub) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the whole hub and say what is wrong, with a fix for each problem",
        description="Checks the configuration, database, free disk, clock, Wi-Fi access point,"
        " portal, sound devices, GPIO pins, speech models, uplink, sync and the last backup. Exits 1 when a"
        " check fails.",
    )
    p.add_argument("--lang", choices=("km", "en"),
                   help="language of the report (default: the hub's default_language)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--skip", metavar="CHECKS", default="",
                   help=f"comma-separated checks to leave out: {', '.join(list(CHECKS)[1:])}")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="seconds to wait for the portal and the central server")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args) -> int:
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(CHECKS)
    if unknown:
        raise HubError(f"unknown check {sorted(unknown)[0]!r} (checks: {', '.join(CHECKS)})")
    checkup = Checkup(args.config, dict(os.environ), timeout=args.timeout)
    results = run(checkup, skip)
    save_summary(checkup.settings, results)
    lang = args.lang or getattr(checkup.settings, "default_language", "km")
    if args.json:
        sys.stdout.write(render_json(results, lang))
    else:
        sys.stdout.write(render_text(results, lang, getattr(checkup.settings, "hub_name", "")))
    return 1 if any(r.status == FAIL for r in results) else 0
