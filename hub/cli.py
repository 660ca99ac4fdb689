"""The ``hub`` command: a thin layer over the package, one subcommand per task.

Each part of the hub adds its own subcommands from its ``commands`` module
(listed in :data:`COMMAND_MODULES`). A command function takes the parsed
arguments and returns an exit code; expected failures raise
:class:`hub.errors.HubError` and are printed as one line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from hub import __version__
from hub.errors import HubError

#: Modules with a ``register(subparsers)`` function, in the order --help lists them.
COMMAND_MODULES = (
    "hub.commands",
    "hub.announce.commands",
    "hub.voice.commands",
    "hub.sync.commands",
    "hub.central.commands",
    "hub.net.commands",
    "hub.provision.commands",
    "hub.doctor",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hub",
        description="Commune hub: Wi-Fi portal, loudspeaker announcements, spoken feedback and sync.",
        epilog="Settings come from --config (default /etc/hub/hub.toml on a Pi, var/hub.toml in a"
        " checkout) and HUB_<NAME> environment variables; `hub settings` lists them.",
    )
    parser.add_argument("--version", action="version", version=f"hub {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):
                continue  # that part of the hub is not built yet
            raise
        module.register(sub)
    return parser


def load_settings(args):
    from hub import settings

    return settings.load(args.config)


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging("warning")
    try:
        return int(args.func(args) or 0)
    except HubError as e:
        print(f"hub: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
