"""`hub netconfig`: write the appliance's network and web configs, or install them on a Pi."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hub.core.daemon import load_settings
from hub.core.errors import HubError
from hub.net import render
from hub.net.checks import web_settings
from hub.net.plan import staff_addresses

#: Debian's hostapd package ships masked; dnsmasq, nftables and nginx are plain services.
SERVICES = ("systemd-networkd", "hostapd", "dnsmasq", "nginx")
NFTABLES_MAIN = "/etc/nftables.conf"


def register(sub) -> None:
    p = sub.add_parser("netconfig", help="access point, DHCP/DNS, firewall and nginx configuration")
    nsub = p.add_subparsers(dest="netconfig_command", metavar="ACTION", required=True)
    r = nsub.add_parser("render", help="write the config files made from the settings into a folder")
    r.add_argument("--out", required=True, metavar="DIR", help="folder to write them into")
    r.set_defaults(func=cmd_render)
    a = nsub.add_parser("apply", help="install the config files on this Pi and reload the services (root)")
    a.add_argument(
        "--root",
        default="/",
        metavar="DIR",
        help="install into this tree instead of / (an image being prepared); implies --no-reload",
    )
    a.add_argument("--no-reload", action="store_true", help="write the files only")
    a.set_defaults(func=cmd_apply)


def cmd_render(args) -> int:
    settings = load_settings(args)
    for path in render.write(Path(args.out), render.render_all(settings)):
        print(path)
    _warn_web_settings(settings)
    return 0


def _warn_web_settings(settings) -> None:
    probe = web_settings(settings)
    if not probe.ok:
        print(f"hub: warning: {probe.detail}; set {probe.hint}", file=sys.stderr)
    if not staff_addresses(settings):
        print("hub: warning: staff_address is empty and there is no staff Wi-Fi, so the clerk console is served"
              ' only on the hub itself; set staff_address = "ADDRESS/PREFIX" (the hub\'s fixed address on the'
              " office LAN)", file=sys.stderr)


def cmd_apply(args) -> int:
    root = Path(args.root)
    live = root.resolve() == Path("/")
    if live and os.geteuid() != 0:
        raise HubError(
            "netconfig apply changes /etc and restarts services: run it as root"
            " (sudo hub netconfig apply), or give --root DIR to write into a folder"
        )
    settings = load_settings(args)
    for path in apply(settings, root, reload=live and not args.no_reload):
        print(path)
    _warn_web_settings(settings)
    return 0


def check_files(files: dict[str, str]) -> None:
    """Run the real tools' own checks on rendered files; raise HubError on the first failure."""
    with tempfile.TemporaryDirectory(prefix="hub-netconfig-") as tmp:
        t = Path(tmp)
        for name, text in files.items():
            (t / name).write_text(text, encoding="utf-8")
        checks = [
            ("dnsmasq.conf", ["dnsmasq", "--test", f"--conf-file={t / 'dnsmasq.conf'}"]),
            ("nftables.conf", ["nft", "-c", "-f", str(t / "nftables.conf")]),
        ]
        for name, cmd in checks:
            if shutil.which(cmd[0]) is None:
                raise HubError(f"{cmd[0]} is not installed; it is needed for {name}")
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                detail = (r.stderr or r.stdout).strip().splitlines()
                raise HubError(f"{name} was refused by {cmd[0]}: {detail[0] if detail else r.returncode}")


def apply(settings, root: Path, reload: bool = True) -> list[Path]:
    """Install every rendered file under *root*; with *reload*, check and restart the services."""
    files = render.render_all(settings)
    if reload:
        check_files(files)
    written = []
    for name, text in files.items():
        dest = root / render.install_path(name).lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.hub-tmp")
        tmp.write_text(text, encoding="utf-8")
        # hostapd.conf holds the staff passphrase.
        tmp.chmod(0o600 if name == "hostapd.conf" else 0o644)
        os.replace(tmp, dest)
        written.append(dest)
    # A staff network switched off leaves no address file behind.
    stale = root / render.install_path("hub-staff.network").lstrip("/")
    if "hub-staff.network" not in files and stale.exists():
        stale.unlink()
    written += _enable_site(root)
    written += _include_firewall(root)
    written += _dnsmasq_defaults(root)
    if reload:
        _reload_services()
    return written


def _enable_site(root: Path) -> list[Path]:
    """sites-enabled/hub -> sites-available/hub; Debian's default site would claim port 80."""
    enabled = root / "etc/nginx/sites-enabled"
    enabled.mkdir(parents=True, exist_ok=True)
    default = enabled / "default"
    if default.is_symlink() or default.exists():
        default.unlink()
    link = enabled / "hub"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to("/etc/nginx/sites-available/hub")
    return [link]


def _include_firewall(root: Path) -> list[Path]:
    """Make nftables.service load the hub's table at boot, after Debian's own rules."""
    main = root / NFTABLES_MAIN.lstrip("/")
    line = 'include "/etc/hub/nftables.conf"'
    text = main.read_text(encoding="utf-8") if main.exists() else "#!/usr/sbin/nft -f\nflush ruleset\n"
    if line in text:
        return []
    main.parent.mkdir(parents=True, exist_ok=True)
    main.write_text(text.rstrip("\n") + f"\n\n# The commune hub's captive network.\n{line}\n", encoding="utf-8")
    return [main]


def _dnsmasq_defaults(root: Path) -> list[Path]:
    """Stop Debian's dnsmasq service from making itself the hub's own resolver (via resolvconf).

    Its DNS answers every name with the hub; the hub's own lookups (sync,
    NTP) must keep going to the uplink's resolver.
    """
    path = root / "etc/default/dnsmasq"
    line = 'DNSMASQ_EXCEPT="lo"'
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if line in text.splitlines():
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + ("\n" if text else "") + f"# commune hub\n{line}\n", encoding="utf-8")
    return [path]


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        detail = (r.stderr or r.stdout).strip().splitlines()
        raise HubError(f"`{' '.join(cmd)}` failed: {detail[-1] if detail else r.returncode}")


def _reload_services() -> None:
    # Raspberry Pi OS keeps Wi-Fi soft-blocked until a country is set; hostapd sets it.
    if shutil.which("rfkill"):
        subprocess.run(["rfkill", "unblock", "wlan"], capture_output=True)
    _run(["nft", "-f", "/etc/hub/nftables.conf"])
    _run(["nginx", "-t", "-q"])
    _run(["systemctl", "unmask", "hostapd.service"])
    _run(["systemctl", "enable", "nftables.service", *(f"{s}.service" for s in SERVICES)])
    for service in SERVICES:
        _run(["systemctl", "restart", f"{service}.service"])
