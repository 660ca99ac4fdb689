"""`hub central` and its actions: serve, add-hub, place-hub, revoke-hub, hubs, areas, user, publish, export,
backup, restore (and alerts, hub-backup from :mod:`hub.central.fleet_commands`)."""

from __future__ import annotations

import sys

from hub.central import backup, cap, fleet_commands
from hub.central.store import CentralError, CentralStore
from hub.central.web import create_central_app
from hub.commands import read_password
from hub.core.daemon import load_settings, setup_logging
from hub.core.words import load_catalog
from hub.update import publish_commands


def register(sub) -> None:
    p = sub.add_parser("central", help="run the central server (district, province or national), or manage it",
                       description="Without an action, the same as `hub central serve`. The database is the"
                                   " database_url setting: empty for SQLite in data_dir, or postgresql://...")
    _serve_options(p)
    p.set_defaults(func=cmd_serve)
    csub = p.add_subparsers(dest="central_command", metavar="ACTION")
    a = csub.add_parser("serve", help="serve the sync API and the officers' console under gunicorn",
                        description="Migrates the database once, then starts gunicorn with WORKERS processes of"
                                    " 8 threads each. Workers share nothing but the database, so add workers"
                                    " (about 2 per core) for more hubs; with PostgreSQL, several machines can"
                                    " serve the same database behind one nginx. See the README for the nginx"
                                    " and TLS front.")
    _serve_options(a)
    a.set_defaults(func=cmd_serve)
    fleet_commands.register(csub)
    publish_commands.register(csub)
    a = csub.add_parser("add-hub", help="register a hub and print its token (shown once)")
    a.add_argument("name")
    a.add_argument("--hub-id", help="the hub's own id (its hub_id setting); default: made here")
    a.add_argument("--commune", metavar="CODE", help="the hub's commune, by its 6-digit code (see `areas`)")
    a.set_defaults(func=cmd_add_hub)
    a = csub.add_parser("place-hub", help="put a registered hub in a commune")
    a.add_argument("name")
    a.add_argument("commune", metavar="CODE", help="6-digit commune code")
    a.set_defaults(func=cmd_place_hub)
    a = csub.add_parser("areas", help="list provinces, or the districts or communes inside an area, with codes")
    a.add_argument("code", nargs="?", help="a province (2 digits) or district (4 digits); default: provinces")
    a.set_defaults(func=cmd_areas)
    a = csub.add_parser("revoke-hub", help="revoke a hub's token; its requests are refused from now on")
    a.add_argument("name")
    a.set_defaults(func=cmd_revoke_hub)
    a = csub.add_parser("hubs", help="list registered hubs: commune, last contact and health")
    a.set_defaults(func=cmd_hubs)
    a = csub.add_parser("user", help="manage officer accounts for the console")
    usub = a.add_subparsers(dest="central_user_command", metavar="ACTION", required=True)
    u = usub.add_parser("add", help="add an officer; the password is read from stdin when it is not a terminal")
    u.add_argument("name")
    u.add_argument("--area", metavar="CODE",
                   help="limit the officer to a province (2 digits) or district (4 digits); default: every hub")
    u.set_defaults(func=cmd_user_add)
    a = csub.add_parser("publish", help="publish a notice or announcement to all hubs, to areas or to chosen hubs")
    a.add_argument("--kind", choices=("notice", "announcement"), default="notice")
    a.add_argument("--title-km", default="")
    a.add_argument("--title-en", default="")
    a.add_argument("--body-km", default="")
    a.add_argument("--body-en", default="")
    a.add_argument("--urgent", action="store_true",
                   help="announcements: an urgent broadcast, played at once by every hub it reaches, through"
                        " quiet hours and cutting short routine playout, until --expires; needs --audio and"
                        " --expires")
    a.add_argument("--expires", metavar="TIME",
                   help="when it stops being played or shown, with its offset, e.g. 2026-12-02T18:00+07:00")
    a.add_argument("--urgency", choices=cap.URGENCIES, help="CAP urgency of an urgent broadcast (default Unknown)")
    a.add_argument("--severity", choices=cap.SEVERITIES, help="CAP severity of an urgent broadcast (default Unknown)")
    a.add_argument("--certainty", choices=cap.CERTAINTIES,
                   help="CAP certainty of an urgent broadcast (default Unknown)")
    a.add_argument("--audio", metavar="FILE", help="a recording to go with it")
    a.add_argument("--play-at", metavar="TIME",
                   help="announcements: when the loudspeakers play it, e.g. 2026-12-01T07:00 (hub time);"
                        " default: as soon as each hub receives it")
    a.add_argument("--repeats", type=int, default=1, help="announcements: times to play it in a row")
    a.add_argument("--to", action="append", metavar="HUB", help="hub name (repeat); default: all hubs")
    a.add_argument("--area", action="append", metavar="CODE",
                   help="a province, district or commune by its code (repeat); default: all hubs")
    a.set_defaults(func=cmd_publish)
    a = csub.add_parser("publish-cap", help="publish an urgent broadcast from a CAP 1.2 XML message",
                        description="An Alert or Update becomes an urgent loudspeaker announcement (its <info>"
                                    " headline, text, urgency, severity, certainty and expiry, and the audio of"
                                    " its <resource>); an Update or Cancel withdraws the alerts it references."
                                    " The audio is inside the message (<derefUri>) or a file given with --audio,"
                                    " named as the <uri>'s last part. Prints the publication ids.")
    a.add_argument("file", help="the CAP 1.2 XML message")
    a.add_argument("--audio", action="append", metavar="FILE", help="an audio file the message's <resource> names")
    a.add_argument("--to", action="append", metavar="HUB", help="hub name (repeat); default: all hubs")
    a.add_argument("--area", action="append", metavar="CODE",
                   help="a province, district or commune by its code (repeat); default: all hubs")
    a.set_defaults(func=cmd_publish_cap)
    a = csub.add_parser("acks", help="which hubs played an urgent broadcast and when, and which have not",
                        description="One line per hub the broadcast is addressed to: outcome (or 'waiting'),"
                                    " when it started playing, and the hub's last contact.")
    a.add_argument("publication", help="the publication's id (as `publish` printed it)")
    a.set_defaults(func=cmd_acks)
    a = csub.add_parser("export", help="write every record held (or those of one area) to stdout")
    a.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    a.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    a.add_argument("--area", metavar="CODE", help="only the hubs in this province, district or commune")
    a.set_defaults(func=cmd_export)
    a = csub.add_parser("backup", help="copy the database (SQLite backup API or pg_dump) and all media to DIR",
                        description="Safe while the server runs. DIR must be new or empty.")
    a.add_argument("dir")
    a.set_defaults(func=cmd_backup)
    a = csub.add_parser("restore", help="restore a backup made by `backup` into an empty database",
                        description="The settings name the database and data_dir to restore into; they must"
                                    " hold no hubs or records yet.")
    a.add_argument("dir")
    a.set_defaults(func=cmd_restore)


def _serve_options(p) -> None:
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    p.add_argument("--bind", help="address to listen on (default HOST:PORT from settings)")


def _store(args):

    return CentralStore.from_settings(load_settings(args))


def cmd_serve(args) -> int:
    from gunicorn.app.base import BaseApplication  # only the serving process needs it


    settings = load_settings(args)
    setup_logging(settings.log_level)
    CentralStore.from_settings(settings).close()  # migrate once, before the workers start
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

    backend = "PostgreSQL" if settings.database_url else f"SQLite in {settings.data_dir}"
    print(f"hub central: serving http://{bind}/ with {max(1, args.workers)} workers on {backend}", flush=True)
    CentralApplication().run()
    return 0


def cmd_add_hub(args) -> int:
    hub_id, token = _store(args).add_hub(args.name, args.hub_id, args.commune)
    print(f"hub {args.name} registered, id {hub_id}", file=sys.stderr)
    print("put this token in the hub's central_token setting (it is not shown again):", file=sys.stderr)
    print(token, flush=True)
    return 0


def cmd_place_hub(args) -> int:
    _store(args).place_hub(args.name, args.commune)
    print(f"hub {args.name}: commune {args.commune}")
    return 0


def cmd_areas(args) -> int:
    store = _store(args)
    if args.code and store.area(args.code) is None:

        raise CentralError(f"no area with the code {args.code!r}")
    for a in store.areas(args.code):
        print(f"{a['code']}\t{a['name_en']}\t{a['name_km']}")
    return 0


def cmd_revoke_hub(args) -> int:
    _store(args).revoke_hub(args.name)
    print(f"hub {args.name}: token revoked")
    return 0


def cmd_hubs(args) -> int:
    for h in _store(args).hubs():
        state = "revoked" if h["revoked_at"] else "active"
        health = h["health"]
        print(f"{h['name']}\t{h['id']}\t{h['commune_code'] or '-'}\t{state}"
              f"\tlast contact {h['last_contact'] or 'never'}"
              f"\tpending {health.get('outbox_pending', '?')}\tfree {health.get('disk_free_mb', '?')} MB")
    return 0


def cmd_user_add(args) -> int:

    _store(args).add_officer(args.name, read_password(), args.area)
    print(f"added officer {args.name}" + (f" for area {args.area}" if args.area else ""))
    return 0


def cmd_publish(args) -> int:
    from pathlib import Path


    store = _store(args)
    data = {"title_km": args.title_km, "title_en": args.title_en, "body_km": args.body_km,
            "body_en": args.body_en, "urgent": args.urgent}
    if args.expires:
        data["expires_at"] = args.expires
    for name in ("urgency", "severity", "certainty"):
        if getattr(args, name):
            data[name] = getattr(args, name)
    if args.kind == "announcement":
        if not args.audio:
            raise CentralError("an announcement needs --audio")
        if args.play_at:
            from datetime import datetime

            try:
                datetime.fromisoformat(args.play_at)
            except ValueError:
                raise CentralError(f"--play-at {args.play_at!r} is not a date and time like 2026-12-01T07:00") from None
            data["play_at"] = args.play_at
        data["repeats"] = max(1, min(args.repeats, 5))
    targets = _hub_ids(store, args.to)
    if args.audio:
        path = Path(args.audio)
        row = store.add_file(path.read_bytes(), path.name, "audio/mpeg")
        data["audio"] = {"id": row["id"], "sha256": row["sha256"], "bytes": row["bytes"]}
    print(store.publish(args.kind, data, targets, "cli", areas=args.area))
    return 0


def _hub_ids(store, names: list[str] | None) -> list[str] | None:
    if not names:
        return None
    by_name = {h["name"]: h["id"] for h in store.hubs() if not h["revoked_at"]}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise CentralError(f"no active hub {', '.join(unknown)}")
    return [by_name[n] for n in names]


def cmd_publish_cap(args) -> int:
    from pathlib import Path

    store = _store(args)
    uploads = {Path(f).name: Path(f).read_bytes() for f in args.audio or []}
    try:
        ids = store.publish_cap(Path(args.file).read_bytes(), uploads, _hub_ids(store, args.to), "cli",
                                areas=args.area)
    except cap.CapError as e:
        # The officer's language first, English beside it.
        km = load_catalog("km").get(e.message, e.message)
        raise CentralError((km % e.values if e.values else km) + "\n" + str(e)) from None
    for pub_id in ids:
        print(pub_id)
    return 0


def cmd_acks(args) -> int:
    for h in _store(args).acks(args.publication):
        started = h["started_at"] or "-"
        print(f"{h['name']}\t{h['outcome'] or 'waiting'}\t{started}\t{h['detail'] or ''}"
              f"\tlast contact {h['last_contact'] or 'never'}")
    return 0


def cmd_export(args) -> int:
    store = _store(args)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            n = store.export(args.format, f, scope=args.area)
    else:
        n = store.export(args.format, sys.stdout, scope=args.area)
    print(f"exported {n} records", file=sys.stderr)
    return 0


def cmd_backup(args) -> int:

    m = backup.backup(_store(args), args.dir)
    c = m["counts"]
    print(f"backed up {c['hubs']} hubs, {c['records']} records, {c['publications']} publications and"
          f" {m['media_files']} media files ({m['backend']}) to {args.dir}")
    return 0


def cmd_restore(args) -> int:

    m = backup.restore(_store(args), args.dir)
    c = m["counts"]
    print(f"restored {c['hubs']} hubs, {c['records']} records, {c['publications']} publications and"
          f" {m['media_files']} media files from {args.dir} (made {m['made_at']})")
    return 0
