"""Probes of the access point and the portal, for `hub doctor`.

Each returns a :class:`Probe`: whether it passed, what was seen, and a fix a
technician can act on. None of them changes anything.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import struct
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from hub.net import render
from hub.net.render import CAPTIVE_API_PATH


@dataclass(frozen=True)
class Probe:
    name: str
    ok: bool
    detail: str
    hint: str = ""


def _run(cmd: list[str], timeout: float = 5) -> subprocess.CompletedProcess | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def service_active(service: str) -> Probe:
    """Whether systemd reports *service* active."""
    r = _run(["systemctl", "is-active", service])
    state = (r.stdout.strip() if r else "") or "unknown"
    return Probe(
        f"service {service}",
        state == "active",
        state,
        "" if state == "active" else f"see `journalctl -u {service} -b`; then `systemctl restart {service}`",
    )


def config_current(settings, root: Path = Path("/")) -> Probe:
    """Whether the installed config files are what the settings make now."""
    try:
        files = render.render_all(settings)
    except Exception as e:  # a bad setting: the message names it
        return Probe("network config", False, str(e), "fix that setting in /etc/hub/hub.toml")
    stale = []
    for name, text in files.items():
        path = Path(root) / render.install_path(name).lstrip("/")
        try:
            if path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        except OSError:
            stale.append(f"{path} (missing)")
    if stale:
        return Probe(
            "network config",
            False,
            "out of date: " + ", ".join(stale),
            "run `sudo hub netconfig apply`",
        )
    return Probe("network config", True, f"{len(files)} files match the settings")


def interface_address(settings) -> Probe:
    """Whether the villagers' interface carries the hub's address."""
    name = f"address on {settings.wifi_interface}"
    r = _run(["ip", "-j", "addr", "show", "dev", settings.wifi_interface])
    if r is None or r.returncode != 0:
        return Probe(
            name,
            False,
            f"no interface {settings.wifi_interface}",
            "check wifi_interface in hub.toml and that the Wi-Fi is not blocked (`rfkill list`)",
        )
    addrs = [a.get("local") for link in json.loads(r.stdout or "[]") for a in link.get("addr_info", [])]
    ok = settings.ap_address in addrs
    return Probe(
        name,
        ok,
        ", ".join(a for a in addrs if a) or "no address",
        "" if ok else "restart systemd-networkd; check /etc/systemd/network/20-hub-ap.network",
    )


def access_point(settings) -> Probe:
    """hostapd's own view: is the access point up, and how many phones are on it."""
    name = "access point"
    r = _run(["hostapd_cli", "-p", "/run/hostapd", "-i", settings.wifi_interface, "status"])
    if r is None or r.returncode != 0:
        return Probe(
            name,
            False,
            "hostapd does not answer",
            "`systemctl status hostapd`; `journalctl -u hostapd -b` shows the driver's error",
        )
    fields = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    state = fields.get("state", "unknown")
    ok = state == "ENABLED"
    detail = f"{state}, channel {fields.get('channel', '?')}, {fields.get('num_sta[0]', '0')} phones"
    return Probe(name, ok, detail, "" if ok else "check wifi_channel and country_code; restart hostapd")


def dns_query(server: str, qname: str, qtype: int = 1, timeout: float = 2.0, port: int = 53) -> tuple[int, list[str]]:
    """One DNS query over UDP: (response code, IPv4/IPv6 addresses in the answer)."""
    qid = secrets.randbits(16)
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in qname.rstrip(".").split("."):
        packet += bytes([len(label)]) + label.encode("ascii")
    packet += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (server, port))
        data = s.recv(4096)
    rid, flags, qd, an = struct.unpack(">HHHH", data[:8])
    if rid != qid:
        raise OSError("DNS answer with the wrong id")
    pos = 12
    for _ in range(qd):
        pos = _skip_name(data, pos) + 4
    addrs = []
    for _ in range(an):
        pos = _skip_name(data, pos)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", data[pos : pos + 10])
        rdata = data[pos + 10 : pos + 10 + rdlen]
        if rtype == 1:
            addrs.append(socket.inet_ntop(socket.AF_INET, rdata))
        elif rtype == 28:
            addrs.append(socket.inet_ntop(socket.AF_INET6, rdata))
        pos += 10 + rdlen
    return flags & 0xF, addrs


def _skip_name(data: bytes, pos: int) -> int:
    while True:
        n = data[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:
            return pos + 2
        pos += n + 1


def dns_answers(settings, server: str | None = None) -> Probe:
    """Whether the hub's DNS sends a phone's connectivity check to the hub."""
    server = server or settings.ap_address
    name = "DNS for phones"
    try:
        rcode, addrs = dns_query(server, "connectivitycheck.gstatic.com")
        rcode6, _ = dns_query(server, "connectivitycheck.gstatic.com", qtype=28)
    except OSError as e:
        return Probe(name, False, f"no answer from {server}: {e}", "`systemctl restart dnsmasq`")
    ok = rcode == 0 and addrs == [settings.ap_address] and rcode6 == 0
    detail = f"A {', '.join(addrs) or 'none'} (rcode {rcode}), AAAA rcode {rcode6}"
    return Probe(name, ok, detail, "" if ok else "run `sudo hub netconfig apply` and restart dnsmasq")


def portal_answers(settings, base_url: str | None = None, timeout: float = 5.0) -> Probe:
    """Whether the portal's RFC 8908 API answers through nginx, as a phone would ask it."""
    url = (base_url or f"http://{settings.ap_address}").rstrip("/") + CAPTIVE_API_PATH
    name = "portal"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            body = json.loads(resp.read().decode("utf-8"))
            ctype = resp.headers.get("Content-Type", "")
    except (OSError, ValueError, urllib.error.URLError) as e:
        reason = getattr(e, "reason", e)
        return Probe(
            name,
            False,
            f"{url}: {reason}",
            "`systemctl status nginx hub-web`; `journalctl -u hub-web -b`",
        )
    ok = ctype.startswith("application/captive+json") and "user-portal-url" in body
    return Probe(
        name,
        ok,
        f"{url}: {ctype}",
        "" if ok else "something else answers on port 80; check nginx's sites-enabled",
    )


def web_settings(settings) -> Probe:
    """Whether the app is set up for nginx in front of it and phones on the Wi-Fi."""
    problems = []
    if not settings.behind_proxy:
        problems.append("behind_proxy is false (the app would see every phone as nginx)")
    host = urlsplit(settings.portal_url).hostname if settings.portal_url else None
    if host not in {settings.ap_address, *settings.hostnames}:
        problems.append(f"portal_url {settings.portal_url or '(empty)'} is not the hub on the Wi-Fi")
    if problems:
        return Probe(
            "web settings",
            False,
            "; ".join(problems),
            f'in hub.toml: behind_proxy = true, portal_url = "http://{settings.ap_address}/"',
        )
    return Probe("web settings", True, f"behind nginx, portal at {settings.portal_url}")


def firewall_loaded() -> Probe:
    """Whether the hub's nftables table is in the kernel."""
    r = _run(["nft", "list", "table", "inet", "hub"])
    ok = r is not None and r.returncode == 0
    return Probe(
        "firewall",
        ok,
        "table inet hub loaded" if ok else "table inet hub missing",
        "" if ok else "`sudo nft -f /etc/hub/nftables.conf`; `systemctl enable nftables`",
    )


def run_all(settings) -> list[Probe]:
    """Every network probe, in the order a technician would fix them."""
    probes = [config_current(settings), web_settings(settings)]
    for service in ("hostapd", "dnsmasq", "nginx"):
        probes.append(service_active(service))
    probes += [
        interface_address(settings),
        access_point(settings),
        firewall_loaded(),
        dns_answers(settings),
        portal_answers(settings),
    ]
    return probes
