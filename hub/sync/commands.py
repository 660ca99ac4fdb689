"""`hub sync once`, `hub sync urgent`, `hub sync status` and `hub sync apply-settings`."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from hub.core.context import open_context
from hub.core.daemon import load_settings
from hub.core.errors import HubError
from hub.migrations import MIGRATIONS
from hub.net import commands as netconfig
from hub.sync import outbox, remote, urgent
from hub.sync import state as sync_state
from hub.sync.client import CentralClient
from hub.sync.engine import run_cycle


def register(sub) -> None:
    p = sub.add_parser("sync", help="sync with the central server")
    ssub = p.add_subparsers(dest="sync_command", metavar="ACTION", required=True)
    a = ssub.add_parser("once", help="run one sync cycle now and print what happened")
    a.add_argument("--json", action="store_true", help="print the outcome as JSON")
    a.set_defaults(func=cmd_once)
    a = ssub.add_parser("urgent", help="ask the central server for urgent broadcasts now, and send their acks",
                        description="The small conditional request hub-sync makes every"
                                    " sync_urgent_interval_seconds: answered 304 while nothing is new. A new"
                                    " urgent broadcast goes to the announcer at once; acknowledgements of"
                                    " those played are sent. Prints what happened as JSON.")
    a.set_defaults(func=cmd_urgent)
    a = ssub.add_parser("status", help="print the outbox, media and last result")
    a.set_defaults(func=cmd_status)
    a = ssub.add_parser(
        "apply-settings", help="as root: carry out a settings change from the central server (hub-settings.service)",
        description="hub-sync writes the central console's settings changes to remote-settings.toml in the data"
        " directory and then remote-settings.apply. This (run as root by hub-settings.service when that file"
        " appears) removes it, writes the network files again with `hub netconfig apply` when the Wi-Fi changed,"
        " and restarts hub.target so that every daemon reads the new settings.")
    a.set_defaults(func=cmd_apply_settings)


def _context(args):
    settings = load_settings(args)
    # `hub` set up logging at "warning" before the settings were read.
    logging.getLogger().setLevel(settings.log_level.upper())
    return open_context(settings, MIGRATIONS)


def cmd_once(args) -> int:
    ctx = _context(args)
    out = run_cycle(ctx)
    print(json.dumps(out.as_dict()) if args.json else out.summary(), flush=True)
    return 0 if out.ok else 1


def cmd_urgent(args) -> int:
    ctx = _context(args)
    client = CentralClient(ctx.settings, ctx)
    try:
        out = urgent.poll(ctx, client)
        out["wire_bytes"] = client.wire_bytes
    finally:
        client.close()
    print(json.dumps(out), flush=True)
    return 0 if out["error"] is None else 1


def cmd_status(args) -> int:
    ctx = _context(args)
    db = ctx.db
    print(f"central_url: {ctx.settings.central_url or '(empty: sync is off)'}")
    print("outbox: " + ", ".join(f"{k} {v}" for k, v in outbox.counts(db).items()))
    print("media: " + ", ".join(f"{k} {v}" for k, v in outbox.media_counts(db).items()))
    state = sync_state.all_state(db)
    for key in ("last_online", "last_success", "last_error", "last_error_at", "last_outcome", "pull_cursor",
                "urgent_etag"):
        if key in state:
            print(f"{key}: {state[key]}")
    if "backup_upload" in state:
        job = json.loads(state["backup_upload"])
        print(f"backup to the central server: {job['bytes']} bytes made {job['made_at']}, being sent")
    return 0


def cmd_apply_settings(args) -> int:
    if os.geteuid() != 0:
        raise HubError("apply-settings restarts the hub's services: run it as root (hub-settings.service does)")
    settings = load_settings(args)
    job_file = Path(settings.data_dir) / remote.APPLY_FILE
    if not job_file.exists():
        print("no settings change waits", file=sys.stderr)
        return 0
    try:
        job = json.loads(job_file.read_text(encoding="utf-8") or "{}")
    except ValueError:
        job = {"netconfig": True}
    job_file.unlink()  # first: hub-settings.path starts this again while the file is there
    failed = False
    if job.get("netconfig"):
        try:
            for path in netconfig.apply(settings, Path("/")):
                print(path)
        except HubError as e:
            # The daemons still take the change; `hub doctor` shows what the network lacks.
            print(f"hub: settings change {job.get('change', '')}: hub netconfig apply: {e}", file=sys.stderr)
            failed = True
    r = subprocess.run(["systemctl", "restart", "hub.target"], capture_output=True, text=True)
    if r.returncode != 0:
        raise HubError(f"systemctl restart hub.target failed: {(r.stderr or r.stdout).strip()}")
    print(f"settings change {job.get('change', '')} applied; hub.target restarted", file=sys.stderr)
    return 1 if failed else 0
