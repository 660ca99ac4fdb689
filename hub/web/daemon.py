"""`hub-web`: the portal and console under gunicorn, for production behind nginx."""

from __future__ import annotations

import sys


def serve_gunicorn(settings, bind: str | None = None, workers: int = 2) -> int:
    """Run gunicorn in this process with the hub's app (a unix socket on a Pi)."""
    from gunicorn.app.base import BaseApplication

    from hub.web import create_app

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


def main(argv: list[str] | None = None) -> int:
    from hub.cli import main as hub_main

    return hub_main(["web", *(argv if argv is not None else sys.argv[1:])])
