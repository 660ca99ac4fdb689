"""`hub-web`: the portal and console under gunicorn, for production behind nginx."""

from __future__ import annotations

import argparse
import sys

from hub.core.daemon import load_settings, setup_logging
from hub.core.errors import HubError
from hub.web import create_app


def serve_gunicorn(settings, bind: str | None = None, workers: int = 2) -> int:
    """Run gunicorn in this process with the hub's app (a unix socket on a Pi)."""
    from gunicorn.app.base import BaseApplication  # only the production server needs it

    class HubApplication(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", bind or f"{settings.host}:{settings.port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 4)
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", None)
            self.cfg.set("proc_name", "hub-web")
            if "control_socket_disable" in self.cfg.settings:
                # No runtime control socket: under ProtectSystem=strict there is nowhere to put it.
                self.cfg.set("control_socket_disable", True)

        def load(self):
            return create_app(settings)

    HubApplication().run()
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `hub web` and `hub-web`."""
    parser.add_argument("--bind", help="gunicorn bind address (default HOST:PORT from settings)")
    parser.add_argument("--workers", type=int, default=2)


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
