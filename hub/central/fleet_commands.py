"""`hub central alerts` and `hub central hub-backup`: the fleet's alerts, and a hub's backup for a new card."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from hub.central import fleet
from hub.central.errors import CentralError
from hub.central.store import CentralStore
from hub.core.daemon import load_settings, setup_logging


def register(csub) -> None:
    a = csub.add_parser(
        "alerts", help="tell officers on Telegram about silent hubs, low disks and missed plays",
        description="One pass over the fleet (or one every --every seconds): a problem that has lasted"
        " fleet_alert_after_minutes is sent once to fleet_chat_id with telegram_bot_token, and a recovery"
        " message follows when it clears.")
    a.add_argument("--every", type=float, metavar="SECONDS", help="keep running, one pass every SECONDS")
    a.set_defaults(func=cmd_alerts)
    a = csub.add_parser("hub-backup", help="write the newest backup a hub sent to FILE, for `hub restore`")
    a.add_argument("name", help="the hub's name, as `hub central hubs` lists it")
    a.add_argument("file", metavar="FILE")
    a.set_defaults(func=cmd_hub_backup)


def cmd_alerts(args) -> int:
    settings = load_settings(args)
    setup_logging(settings.log_level)
    if not (settings.telegram_bot_token and settings.fleet_chat_id):
        raise CentralError("set telegram_bot_token and fleet_chat_id to send fleet alerts")
    store = CentralStore.from_settings(settings)
    send = fleet.telegram_sender(settings)
    while True:
        for text in fleet.run_alerts(store, settings, send):
            print(text.replace("\n", " / "), flush=True)
        if not args.every:
            return 0
        time.sleep(args.every)


def cmd_hub_backup(args) -> int:
    store = CentralStore.from_settings(load_settings(args))
    found = store.latest_backup(args.name)
    if found is None:
        raise CentralError(f"no backup of hub {args.name!r} has arrived yet")
    row, name = found
    out = Path(args.file)
    tmp = out.with_name(f".{out.name}.part")
    with store.media.open(name) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    tmp.replace(out)
    print(f"backup of {args.name} made {row['made_at']} ({row['bytes']} bytes, sha256 {row['sha256']})"
          f" written to {out}", file=sys.stderr)
    return 0
