"""`hub provision`: one commune's configuration and secrets onto a flashed card.

The files go to ``hub/`` on the FAT boot partition, which Raspberry Pi OS
mounts at ``/boot/firmware``. At first boot ``hub-firstboot`` moves them to
``/etc/hub`` and deletes them from the boot partition, which every local user
can read (FAT has no permissions), so the secrets stay there only until the
card first boots.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from hub.core import settings
from hub.core.errors import HubError
from hub.provision.image import FatPartition, boot_partition, check_writable_target

#: The folder on the boot partition the first-boot service looks for.
BOOT_DIR = "hub"
#: Where the daemons keep their data on a Pi; the systemd units allow writes there only.
PI_DATA_DIR = "/var/lib/hub"
HOSTNAME_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass
class Provisioned:
    target: str
    offset: int
    files: list[str]


def check_hostname(name: str) -> str:
    name = name.strip().lower()
    if not HOSTNAME_RE.match(name):
        raise HubError(f"hostname {name!r}: use 1-63 letters, digits and '-' (not at either end)")
    return name


def validate_config(config: Path) -> str:
    """Check *config* with the hub's own settings rules; return its text."""
    try:
        text = config.read_text(encoding="utf-8")
    except OSError as e:
        raise HubError(f"config file {config}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise HubError(f"config file {config}: not UTF-8 text") from None
    # The environment of the technician's laptop must not leak into a check of
    # what the Pi will read.
    settings.load(config, env={})
    raw = tomllib.loads(text)
    unknown = sorted(k for k in raw if k not in {s.name for s in settings.SETTINGS})
    if unknown:
        raise HubError(f"config file {config}: unknown setting {unknown[0]!r}")
    data_dir = raw.get("data_dir")
    if data_dir is not None and data_dir != PI_DATA_DIR:
        raise HubError(f"setting data_dir: {data_dir!r} must be {PI_DATA_DIR} on a Pi "
                       "(the services may write nowhere else)")
    return text


def provision(target: str, config: Path, hostname: str, clerk: tuple[str, str] | None = None,
              ssh: bool = False, readonly_root: bool = False) -> Provisioned:
    """Write the validated *config*, the hostname and an optional first clerk to *target*."""
    text = validate_config(config)
    hostname = check_hostname(hostname)
    if clerk is not None:
        name, password = clerk
        if not name or any(c.isspace() for c in name):
            raise HubError(f"clerk name {name!r}: one word, no spaces")
        if len(password) < 8:
            raise HubError("the first clerk's password needs at least 8 characters")
        if "\n" in password or "\r" in password:
            raise HubError("the first clerk's password must be one line")
    check_writable_target(target)
    part = boot_partition(target)
    fat = FatPartition(target, part.start)
    fat.mkdir(BOOT_DIR)
    files = []

    def put(name: str, data: bytes) -> None:
        fat.write(f"{BOOT_DIR}/{name}", data)
        files.append(f"{BOOT_DIR}/{name}")

    put("hostname", (hostname + "\n").encode())
    if clerk is not None:
        put("first-clerk", f"{clerk[0]}\n{clerk[1]}\n".encode())
    if ssh:
        fat.write("ssh", b"")
        files.append("ssh")
    if readonly_root:
        # First boot installs it as /etc/hub/readonly-root; the Debian image's
        # initramfs then keeps the root read-only from the next boot on.
        put("readonly-root", b"requested by hub provision --read-only-root\n")
    # hub.toml last: its presence is what starts the first-boot service, so a
    # card pulled out half-way never boots with a partial set.
    put("hub.toml", text.encode("utf-8"))
    return Provisioned(target, part.start, files)
