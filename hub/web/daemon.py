"""`hub-web`: the portal and console under gunicorn, for production behind nginx."""

from __future__ import annotations

import argparse
import gc
import sys

from hub.core.daemon import load_settings, setup_logging
from hub.core.errors import HubError
from hub.web import create_app

#: One worker of twelve threads: nginx serves the cached villager pages, so the app renders
#: only what changed, posts and the console; a second worker would cost ~30 MB of a 1 GB Pi.
#: Uploads converting or waiting in line (conversion_slots + conversion_queue, 10 by default)
#: each hold a thread, and the other requests, which take milliseconds, keep the rest. Each
#: thread that has served costs about 0.6 MB (its SQLite connection and schema among it), so
#: sixteen put hub-web over its 60 MB budget (make bench).
WORKERS = 1
THREADS = 12


def serve_gunicorn(settings, bind: str | None = None, workers: int = WORKERS) -> int:
    """Run gunicorn in this process with the hub's app (a unix socket on a Pi).

    The app is built once in the arbiter and the workers are forked from it
    (``preload_app``), so they share its code and templates instead of each
    loading its own copy.
    """
    from gunicorn.app.base import BaseApplication  # only the production server needs it

    class HubApplication(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", bind or f"{settings.host}:{settings.port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", THREADS)
            self.cfg.set("preload_app", True)
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", None)
            self.cfg.set("proc_name", "hub-web")
            if "control_socket_disable" in self.cfg.settings:
                # No runtime control socket: under ProtectSystem=strict there is nowhere to put it.
                self.cfg.set("control_socket_disable", True)

        def load(self):
            app = create_app(settings)
            # A SQLite connection must not cross a fork: each worker thread opens its own.
            app.config["HUB_CONTEXT"].close()
            share_with_workers(app)
            return app

    HubApplication().run()
    return 0


def share_with_workers(app) -> None:
    """Compile every template in the arbiter and keep the garbage collector off what it built.

    The workers are forked from the arbiter: what it holds they share, page by page,
    until one of them writes to a page. Compiled templates would otherwise be built in
    each worker, and a collection walking the arbiter's objects would touch (and so
    copy) their pages; ``gc.freeze()`` leaves them alone.
    """
    for name in app.jinja_env.list_templates(extensions=["html"]):
        app.jinja_env.get_template(name)
    gc.collect()
    gc.freeze()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `hub web` and `hub-web`."""
    parser.add_argument("--bind", help="gunicorn bind address (default HOST:PORT from settings)")
    parser.add_argument("--workers", type=int, default=WORKERS,
                        help=f"gunicorn worker processes, of {THREADS} threads each (default {WORKERS})")


def main(argv: list[str] | None = None) -> int:
    """`hub-web`: the same as `hub web`."""
    parser = argparse.ArgumentParser(prog="hub-web", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("--config", metavar="FILE", help="TOML settings file")
    add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging("warning")
    try:
        return serve_gunicorn(load_settings(args), bind=args.bind, workers=args.workers)
    except HubError as e:
        print(f"hub-web: error: {e}", file=sys.stderr)
        return 1
