"""`hub provision` and `hub flash`: preparing SD cards for the Pi."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from hub import accounts
from hub.commands import read_password
from hub.core.errors import HubError
from hub.provision.card import provision, validate_config
from hub.provision.flash import check_published_digest, image_digest, verify, write_image
from hub.provision.image import check_writable_target


def register(sub) -> None:
    p = sub.add_parser(
        "provision",
        help="write one hub's configuration and secrets onto a flashed card or image (no mounting)",
        description="Validate hub.toml, then copy it, the hostname and an optional first clerk"
        " to hub/ on the card's FAT boot partition with mtools. At first boot the Pi moves"
        " them to /etc/hub and deletes them from the boot partition.",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--image", metavar="IMG", help="a Raspberry Pi OS image file")
    where.add_argument("--device", metavar="DEV",
                       help="a flashed card, e.g. /dev/sdb (not mounted)")
    p.add_argument("--config", dest="provision_config", metavar="HUB_TOML",
                   help="this hub's settings (default: hub --config FILE)")
    p.add_argument("--hostname", default="commune-hub",
                   help="the Pi's host name (default %(default)s)")
    p.add_argument("--clerk", metavar="NAME",
                   help="make this admin account at first boot; the password is read from stdin"
                   " (or asked twice on a terminal) and never printed")
    p.add_argument("--ssh", action="store_true", help="also enable the SSH server at first boot")
    p.add_argument("--read-only-root", action="store_true",
                   help="keep the root file system read-only after first boot (the Debian image):"
                   " only the data partition is written")
    p.set_defaults(func=cmd_provision)

    p = sub.add_parser(
        "flash",
        help="write a Raspberry Pi OS image (.img, .img.xz, .img.gz) to a card and verify it",
        description="Write IMAGE to DEV with a progress bar, then read it back and compare."
        " Refuses a mounted card and the disk this computer runs from.",
    )
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("device", metavar="DEV", help="the card (e.g. /dev/sdb) or a file")
    p.add_argument("--yes", action="store_true", help="do not ask before erasing a device")
    p.add_argument("--verify-only", action="store_true",
                   help="only compare DEV with IMAGE (a card written earlier)")
    p.add_argument("--config", dest="provision_config", metavar="HUB_TOML",
                   help="then provision the card with these settings (as hub provision --device)")
    p.add_argument("--hostname", default="commune-hub",
                   help="with --config: the Pi's host name (default %(default)s)")
    p.add_argument("--clerk", metavar="NAME", help="with --config: the first admin account")
    p.add_argument("--ssh", action="store_true", help="with --config: enable SSH at first boot")
    p.add_argument("--read-only-root", action="store_true",
                   help="with --config: keep the root read-only after first boot")
    p.set_defaults(func=cmd_flash)


def cmd_provision(args) -> int:
    config = args.provision_config or args.config
    if not config:
        raise HubError("give the hub's settings with --config hub.toml")
    target = args.image or args.device
    if args.image and not Path(args.image).is_file():
        raise HubError(f"image {args.image}: not a file")
    if args.device and not _is_block(args.device):
        raise HubError(f"device {args.device}: not a block device (use --image for a file)")
    clerk = None
    if args.clerk:
        clerk = (args.clerk, read_password(f"Password for {args.clerk}: "))
        # Refused now, not at first boot, where nobody would see why there is no account.
        accounts.check_password(clerk[1], clerk[0])
    done = provision(target, Path(config), args.hostname, clerk=clerk, ssh=args.ssh,
                     readonly_root=args.read_only_root)
    print(f"{target}: wrote {', '.join(done.files)} to the boot partition"
          f" (at byte {done.offset})")
    if clerk:
        print("the first clerk's password is on the card until its first boot; keep the card safe")
    return 0


def _is_block(path: str) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def _describe(device: str) -> str:
    name = os.path.basename(os.path.realpath(device))
    sys_dir = Path("/sys/class/block") / name
    try:
        size = int((sys_dir / "size").read_text()) * 512
    except (OSError, ValueError):
        return device
    model = ""
    try:
        model = (sys_dir / "device" / "model").read_text().strip()
    except OSError:
        pass
    return f"{device} ({size / 1e9:.1f} GB{', ' + model if model else ''})"


def cmd_flash(args) -> int:
    image = Path(args.image)
    if not image.is_file():
        raise HubError(f"image {image}: not a file")
    if args.verify_only:
        length, digest = image_digest(image)
        verify(args.device, length, digest)
        print(f"{args.device}: matches {image} ({length} bytes, sha256 {digest[:16]}…)")
        return 0
    block = _is_block(args.device)
    if not os.path.exists(args.device) and os.path.realpath(args.device).startswith("/dev/"):
        raise HubError(f"{args.device}: no such device (is the card inserted?)")
    if block:
        check_writable_target(args.device)
        if not args.yes:
            if not sys.stdin.isatty():
                raise HubError(f"{args.device} would be erased; add --yes to confirm")
            answer = input(f"Erase everything on {_describe(args.device)}? Type yes: ")
            if answer.strip().lower() != "yes":
                print("nothing written")
                return 1
    elif os.path.exists(args.device) and not os.path.isfile(args.device):
        raise HubError(f"{args.device}: neither a block device nor a regular file")
    if args.provision_config:
        config = Path(args.provision_config)
        validate_config(config)  # a bad setting stops it before the card is erased
    published = check_published_digest(image)
    if published:
        print(f"{image}: matches {published.name}")
    clerk = None
    if args.provision_config and args.clerk:
        clerk = (args.clerk, read_password(f"Password for {args.clerk}: "))
        accounts.check_password(clerk[1], clerk[0])
    digest = write_image(image, args.device)
    print(f"{args.device}: written and verified (sha256 {digest[:16]}…)")
    if args.provision_config:
        done = provision(args.device, config, args.hostname, clerk=clerk, ssh=args.ssh,
                         readonly_root=args.read_only_root)
        print(f"{args.device}: wrote {', '.join(done.files)} to the boot partition")
    return 0
