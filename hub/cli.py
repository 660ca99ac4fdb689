"""The ``hub`` command: a thin layer over the package, one subcommand per task.

Each part of the hub adds its own subcommands from its ``commands`` module
(listed in :data:`COMMAND_MODULES`). A command function takes the parsed
arguments and returns an exit code; expected failures raise
:class:`hub.core.errors.HubError` and are printed as one line.
"""

from __future__ import annotations

import argparse
import sys

from hub import __version__, commands, doctor
from hub.announce import commands as announce_commands
from hub.backup import commands as backup_commands
from hub.central import commands as central_commands
from hub.core.daemon import setup_logging
from hub.core.errors import HubError
from hub.net import commands as net_commands
from hub.provision import commands as provision_commands
from hub.sync import commands as sync_commands
from hub.update import commands as update_commands
from hub.voice import commands as voice_commands

#: Modules with a ``register(subparsers)`` function, in the order --help lists them.
COMMAND_MODULES = (
    commands,
    backup_commands,
    update_commands,
    announce_commands,
    voice_commands,
    sync_commands,
    central_commands,
    net_commands,
    provision_commands,
    doctor,
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
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


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
