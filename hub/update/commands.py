"""`hub update`: install a signed release (from a USB stick, or downloaded by sync), or recover at boot."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from hub.core.daemon import load_settings
from hub.core.errors import HubError
from hub.update import install


def register(sub) -> None:
    p = sub.add_parser(
        "update", help="install a signed hub release beside the running one; switch back if it is not healthy",
        description="Checks FILE (a release file from `hub central release publish`: the wheel and its manifest,"
        " signed with the central server's release key) against release_key_file, installs it into"
        " /opt/hub/releases/VERSION beside the running release, copies the database, switches /opt/hub/current"
        " and restarts hub.target. The new release must be healthy within update_health_seconds (migrations"
        " applied, every daemon active, the portal answering, no new `hub doctor` failure); otherwise the hub"
        " switches back, puts the database copy back if the release had migrated it, and never tries that"
        " version again. Needs root. Exit status: 0 updated, 1 refused or failed, 3 rolled back.")
    p.add_argument("file", metavar="FILE", nargs="?", help="a release file (e.g. on a USB stick)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--ready", action="store_true",
                   help="install the release sync has downloaded (DATA/update/ready.release), if any;"
                        " hub-update.service runs this")
    g.add_argument("--recover", action="store_true",
                   help="finish or undo an update a power cut interrupted; hub-update-recover.service runs this"
                        " at boot, before the daemons")
    g.add_argument("--status", action="store_true", help="print the running release, the update under way,"
                                                         " failed versions and the last results, as JSON")
    p.set_defaults(func=cmd_update)


def cmd_update(args) -> int:
    settings = load_settings(args)
    if args.status:
        print(json.dumps(status(settings), ensure_ascii=False, indent=2))
        return 0
    if args.recover:
        print(install.recover(settings))
        return 0
    if args.ready:
        ready = install.work_dir(settings) / "ready.release"
        if not ready.exists():
            print("no downloaded release is waiting")
            return 0
        # Out of the hub user's reach before it is checked: the file checked is the file installed.
        taken = Path(settings.update_root) / install.TAKEN
        shutil.move(str(ready), taken)
        try:
            return _run(settings, taken)
        finally:
            taken.unlink(missing_ok=True)
    if not args.file:
        raise HubError("give a release FILE (or --ready, --recover, --status)")
    return _run(settings, Path(args.file))


def _run(settings, path: Path) -> int:
    ok = install.update(settings, path, say=lambda m: print(m, flush=True), pause=_pause_for_tests())
    return 0 if ok else 3


def status(settings) -> dict:
    try:
        running = install.running_version(settings)
    except install.UpdateError as e:
        running = f"? ({e})"
    return {"running": running, "under_way": install.read_state(settings),
            "failed": sorted(install.failed_versions(settings)), "history": install.history(settings)[-5:]}


def _pause_for_tests():
    """HUB_UPDATE_PAUSE_AT=STEP holds the update for a minute once STEP is recorded, so that the
    booted-appliance test can cut the power exactly there (tests/system/test_update.py)."""
    at = os.environ.get("HUB_UPDATE_PAUSE_AT", "")

    def pause(step: str) -> None:
        if step == at:
            print(f"paused at step {step}", flush=True)
            time.sleep(60)
    return pause
