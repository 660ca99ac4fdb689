"""`hub central` and its actions: serve, add-hub, revoke-hub, hubs, user, publish, export."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from hub import accounts
from hub.central.store import CentralError, CentralStore
from hub.central.web import create_central_app
from hub.commands import read_password
from hub.core.daemon import load_settings, setup_logging


def register(sub) -> None:
    p = sub.add_parser("central", help="run the central server (district/province), or manage it")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    p.add_argument("--bind", help="address to listen on (default HOST:PORT from settings)")
    p.set_defaults(func=cmd_serve)
    csub = p.add_subparsers(dest="central_command", metavar="ACTION")
    a = csub.add_parser("add-hub", help="register a hub and print its token (shown once)")
    a.add_argument("name")
    a.add_argument("--hub-id", help="the hub's own id (its hub_id setting); default: made here")
    a.set_defaults(func=cmd_add_hub)
    a = csub.add_parser("revoke-hub", help="revoke a hub's token; its requests are refused from now on")
    a.add_argument("name")
    a.set_defaults(func=cmd_revoke_hub)
    a = csub.add_parser("hubs", help="list registered hubs, their last contact and health")
    a.set_defaults(func=cmd_hubs)
    a = csub.add_parser("user", help="manage officer accounts for the console")
    usub = a.add_subparsers(dest="central_user_command", metavar="ACTION", required=True)
    u = usub.add_parser("add", help="add an officer; the password is read from stdin when it is not a terminal")
    u.add_argument("name")
    u.set_defaults(func=cmd_user_add)
    a = csub.add_parser("publish", help="publish a notice or announcement to all hubs or chosen ones")
    a.add_argument("--kind", choices=("notice", "announcement"), default="notice")
    a.add_argument("--title-km", default="")
    a.add_argument("--title-en", default="")
    a.add_argument("--body-km", default="")
    a.add_argument("--body-en", default="")
    a.add_argument("--urgent", action="store_true")
    a.add_argument("--audio", metavar="FILE", help="a recording to go with it")
    a.add_argument("--play-at", metavar="TIME",
                   help="announcements: when the loudspeakers play it, e.g. 2026-12-01T07:00 (hub time);"
                        " default: as soon as each hub receives it")
    a.add_argument("--repeats", type=int, default=1, help="announcements: times to play it in a row")
    a.add_argument("--to", action="append", metavar="HUB", help="hub name (repeat); default: all hubs")
    a.set_defaults(func=cmd_publish)
    a = csub.add_parser("export", help="write every record held to stdout")
    a.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    a.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    a.set_defaults(func=cmd_export)


def _store(args):
    return CentralStore.open(load_settings(args).data_dir)


def cmd_serve(args) -> int:
    # only the production central server runs under gunicorn
    from gunicorn.app.base import BaseApplication

    settings = load_settings(args)
    setup_logging(settings.log_level)
    CentralStore.open(settings.data_dir).close()  # migrate once, before the workers start
    bind = args.bind or f"{settings.host}:{settings.port}"

    class CentralApplication(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", bind)
            self.cfg.set("workers", max(1, args.workers))
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 8)
            self.cfg.set("timeout", 120)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", None)
            self.cfg.set("proc_name", "hub-central")
            self.cfg.set("control_socket_disable", True)

        def load(self):
            return create_central_app(settings)

    print(f"hub central: serving http://{bind}/", flush=True)
    CentralApplication().run()
    return 0


def cmd_add_hub(args) -> int:
    hub_id, token = _store(args).add_hub(args.name, args.hub_id)
    print(f"hub {args.name} registered, id {hub_id}", file=sys.stderr)
    print("put this token in the hub's central_token setting (it is not shown again):", file=sys.stderr)
    print(token, flush=True)
    return 0


def cmd_revoke_hub(args) -> int:
    _store(args).revoke_hub(args.name)
    print(f"hub {args.name}: token revoked")
    return 0


def cmd_hubs(args) -> int:
    for h in _store(args).hubs():
        state = "revoked" if h["revoked_at"] else "active"
        health = h["health"]
        print(f"{h['name']}\t{h['id']}\t{state}\tlast contact {h['last_contact'] or 'never'}"
              f"\tpending {health.get('outbox_pending', '?')}\tfree {health.get('disk_free_mb', '?')} MB")
    return 0


def cmd_user_add(args) -> int:
    accounts.add_user(_store(args).db, args.name, read_password(), "admin")
    print(f"added officer {args.name}")
    return 0


def cmd_publish(args) -> int:
    store = _store(args)
    data = {"title_km": args.title_km, "title_en": args.title_en, "body_km": args.body_km,
            "body_en": args.body_en, "urgent": args.urgent}
    if args.kind == "announcement":
        if not args.audio:
            raise CentralError("an announcement needs --audio")
        if args.play_at:
            try:
                datetime.fromisoformat(args.play_at)
            except ValueError:
                raise CentralError(f"--play-at {args.play_at!r} is not a date and time like 2026-12-01T07:00") from None
            data["play_at"] = args.play_at
        data["repeats"] = max(1, min(args.repeats, 5))
    targets = None
    if args.to:
        by_name = {h["name"]: h["id"] for h in store.hubs() if not h["revoked_at"]}
        unknown = [n for n in args.to if n not in by_name]
        if unknown:
            raise CentralError(f"no active hub {', '.join(unknown)}")
        targets = [by_name[n] for n in args.to]
    if args.audio:
        path = Path(args.audio)
        row = store.add_file(path.read_bytes(), path.name, "audio/mpeg")
        data["audio"] = {"id": row["id"], "sha256": row["sha256"], "bytes": row["bytes"]}
    print(store.publish(args.kind, data, targets, "cli"))
    return 0


def cmd_export(args) -> int:
    store = _store(args)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            n = store.export(args.format, f)
    else:
        n = store.export(args.format, sys.stdout)
    print(f"exported {n} records", file=sys.stderr)
    return 0
