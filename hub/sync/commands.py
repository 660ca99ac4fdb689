"""`hub sync once`, `hub sync urgent` and `hub sync status`."""

from __future__ import annotations

import json
import logging

from hub.core.context import open_context
from hub.core.daemon import load_settings
from hub.migrations import MIGRATIONS
from hub.sync import outbox, urgent
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
