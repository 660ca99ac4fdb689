"""Core subcommands: run, migrate, user, settings."""

from __future__ import annotations

import getpass
import logging
import signal
import sys
import threading

from hub import accounts
from hub.backup.restore import refuse_if_pending
from hub.core import db as dbmod
from hub.core.context import Context, open_context
from hub.core.daemon import load_settings, run_together, setup_logging
from hub.core.errors import HubError
from hub.core.files import make_dir
from hub.core.settings import SETTINGS
from hub.migrations import MIGRATIONS
from hub.run import build_daemons, seed_demo, start_web
from hub.web import daemon as web_daemon

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("run", help="start every daemon in one process (development and demos)")
    p.add_argument("--demo", action="store_true",
                   help="seed demo notices and feedback, and make a demo clerk with a random password")
    p.add_argument("--only", metavar="NAMES",
                   help="comma-separated daemons to start (default: all); 'web' is the portal")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("web", help="serve the portal and console with gunicorn (production)")
    web_daemon.add_arguments(p)
    p.set_defaults(func=cmd_web)

    p = sub.add_parser("migrate", help="apply database migrations, then check integrity")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("user", help="manage clerk and admin accounts")
    usub = p.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    a = usub.add_parser("add", help="add an account; the password is read from stdin when it is not a terminal")
    a.add_argument("name")
    a.add_argument("--role", choices=("clerk", "admin"), default="clerk")
    a.set_defaults(func=cmd_user_add)
    a = usub.add_parser("passwd", help="set an account's password (read from stdin when it is not a terminal);"
                        " its sessions end")
    a.add_argument("name")
    a.set_defaults(func=cmd_user_passwd)
    a = usub.add_parser("disable", help="disable an account; its sessions end at once")
    a.add_argument("name")
    a.set_defaults(func=cmd_user_disable)
    a = usub.add_parser("enable", help="enable a disabled account again")
    a.add_argument("name")
    a.set_defaults(func=cmd_user_enable)
    a = usub.add_parser("list", help="list accounts")
    a.set_defaults(func=cmd_user_list)

    p = sub.add_parser("settings", help="list every setting with its current value")
    p.add_argument("--all", action="store_true", help="also show descriptions and environment variables")
    p.set_defaults(func=cmd_settings)


def _settings(args):
    return load_settings(args)


def _context(args, migrate: bool = True):
    return open_context(_settings(args), MIGRATIONS, migrate=migrate)


def read_password(prompt: str = "Password: ") -> str:
    """From stdin when it is not a terminal (scripts, provisioning), else asked twice."""
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise HubError("no password on stdin")
        return password
    first = getpass.getpass(prompt)
    if getpass.getpass("Again: ") != first:
        raise HubError("the passwords differ")
    return first


def cmd_migrate(args) -> int:
    settings = _settings(args)
    refuse_if_pending(settings.data_dir)
    make_dir(settings.media_dir)
    ctx = Context(settings)
    dbmod.integrity_check(ctx.db)
    applied = dbmod.migrate(ctx.db, MIGRATIONS)
    dbmod.integrity_check(ctx.db)
    print(f"database {settings.db_path}: " + (f"applied {', '.join(applied)}" if applied else "up to date"))
    return 0


def cmd_user_add(args) -> int:
    ctx = _context(args)
    accounts.add_user(ctx.db, args.name, read_password(), args.role)
    print(f"added {args.role} {args.name}")
    return 0


def cmd_user_passwd(args) -> int:
    ctx = _context(args)
    accounts.set_password(ctx.db, args.name, read_password())
    print(f"password changed for {args.name}")
    return 0


def cmd_user_disable(args) -> int:
    ctx = _context(args)
    accounts.set_disabled(ctx.db, args.name, True)
    print(f"disabled {args.name}; its sessions have ended")
    return 0


def cmd_user_enable(args) -> int:
    ctx = _context(args)
    accounts.set_disabled(ctx.db, args.name, False)
    print(f"enabled {args.name}")
    return 0


def cmd_user_list(args) -> int:
    ctx = _context(args)
    for u in accounts.list_users(ctx.db):
        flag = " (disabled)" if u["disabled"] else ""
        print(f"{u['username']}\t{u['role']}\t{u['created_at']}{flag}")
    return 0


def cmd_settings(args) -> int:
    settings = _settings(args)
    values = settings.as_dict()
    print(f"# from {settings.source or 'defaults'}")
    if settings.remote_source:
        print(f"# and the central server's changes in {settings.remote_source}")
    for s in SETTINGS:
        v = values[s.name]
        print(f"{s.name} = {v!r}")
        if args.all:
            print(f"    {s.env_var} ({s.type.__name__}): {s.description}")
    return 0


def cmd_web(args) -> int:
    return web_daemon.serve_gunicorn(_settings(args), bind=args.bind, workers=args.workers)


def cmd_run(args) -> int:
    """Every daemon in one process, the web app on werkzeug's threaded server."""
    settings = _settings(args)
    setup_logging(settings.log_level)
    ctx = _context(args)
    only = set(args.only.split(",")) if args.only else None
    if args.demo:
        seed_demo(ctx, out=sys.stdout)
    daemons = build_daemons(settings, only)
    stop = threading.Event()
    server = None
    if only is None or "web" in only:
        server = start_web(settings)
        print(f"hub: serving {settings.listen_url}", flush=True)
    try:
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        signal.signal(signal.SIGINT, lambda *a: stop.set())
        hung = run_together(daemons, stop)
    except KeyboardInterrupt:
        stop.set()
        hung = []
    finally:
        if server is not None:
            server.shutdown()
    if hung:
        log.error("daemons did not stop in time: %s", ", ".join(hung))
        return 1
    return 0
