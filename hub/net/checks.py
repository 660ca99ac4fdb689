"""Probes of the access point and the portal, for `hub doctor`.

Each probe returns a :class:`~hub.core.checks.Finding`: whether it passed, what
was seen, and a fix a technician can act on. None of them changes anything.
:func:`check_access_point` and :func:`check_portal` are the doctor's two network
checks, made of these probes.
"""

from __future__ import annotations

import http.client
import json
import secrets
import shutil
import socket
import struct
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from hub.core.checks import FAIL, OK, Checkup, Finding, verdict
from hub.core.words import N_
from hub.net import render
from hub.net.render import CAPTIVE_API_PATH


def _run(cmd: list[str], timeout: float = 5) -> subprocess.CompletedProcess | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def service_active(service: str) -> Finding:
    """Whether systemd reports *service* active."""
    r = _run(["systemctl", "is-active", service])
    state = (r.stdout.strip() if r else "") or "unknown"
    return verdict(
        f"service {service}",
        state == "active",
        state,
        "" if state == "active" else f"see `journalctl -u {service} -b`; then `systemctl restart {service}`",
    )


def config_current(settings, root: Path = Path("/")) -> Finding:
    """Whether the installed config files are what the settings make now."""
    try:
        files = render.render_all(settings)
    except Exception as e:  # a bad setting: the message names it
        return verdict("network config", False, str(e), "fix that setting in /etc/hub/hub.toml")
    stale, unreadable = [], []
    for name, text in files.items():
        path = Path(root) / render.install_path(name).lstrip("/")
        try:
            if path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        except PermissionError:
            # hostapd.conf holds the Wi-Fi password (0600 root): the daily check runs as
            # the hub user, who may not read it. Not compared is not out of date.
            unreadable.append(str(path))
        except OSError:
            stale.append(f"{path} (missing)")
    if stale:
        return verdict(
            "network config",
            False,
            "out of date: " + ", ".join(stale),
            "run `sudo hub netconfig apply`",
        )
    compared = len(files) - len(unreadable)
    detail = f"{compared} files match the settings"
    if unreadable:
        detail += f"; {len(unreadable)} only root may read, not compared: {', '.join(unreadable)}"
    return verdict("network config", True, detail)


def interface_address(settings) -> Finding:
    """Whether the villagers' interface carries the hub's address."""
    name = f"address on {settings.wifi_interface}"
    r = _run(["ip", "-j", "addr", "show", "dev", settings.wifi_interface])
    if r is None or r.returncode != 0:
        return verdict(
            name,
            False,
            f"no interface {settings.wifi_interface}",
            "check wifi_interface in hub.toml and that the Wi-Fi is not blocked (`rfkill list`)",
        )
    addrs = [a.get("local") for link in json.loads(r.stdout or "[]") for a in link.get("addr_info", [])]
    ok = settings.ap_address in addrs
    return verdict(
        name,
        ok,
        ", ".join(a for a in addrs if a) or "no address",
        "" if ok else "restart systemd-networkd; check /etc/systemd/network/20-hub-ap.network",
    )


def access_point(settings) -> Finding:
    """hostapd's own view: is the access point up, and how many phones are on it."""
    name = "access point"
    r = _run(["hostapd_cli", "-p", "/run/hostapd", "-i", settings.wifi_interface, "status"])
    if r is None or r.returncode != 0:
        return verdict(
            name,
            False,
            "hostapd does not answer",
            "`systemctl status hostapd`; `journalctl -u hostapd -b` shows the driver's error",
        )
    fields = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    state = fields.get("state", "unknown")
    ok = state == "ENABLED"
    detail = f"{state}, channel {fields.get('channel', '?')}, {fields.get('num_sta[0]', '0')} phones"
    return verdict(name, ok, detail, "" if ok else "check wifi_channel and country_code; restart hostapd")


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


def dns_answers(settings, server: str | None = None) -> Finding:
    """Whether the hub's DNS sends a phone's connectivity check to the hub."""
    server = server or settings.ap_address
    name = "DNS for phones"
    try:
        rcode, addrs = dns_query(server, "connectivitycheck.gstatic.com")
        rcode6, _ = dns_query(server, "connectivitycheck.gstatic.com", qtype=28)
    except OSError as e:
        return verdict(name, False, f"no answer from {server}: {e}", "`systemctl restart dnsmasq`")
    ok = rcode == 0 and addrs == [settings.ap_address] and rcode6 == 0
    detail = f"A {', '.join(addrs) or 'none'} (rcode {rcode}), AAAA rcode {rcode6}"
    return verdict(name, ok, detail, "" if ok else "run `sudo hub netconfig apply` and restart dnsmasq")


def portal_answers(settings, base_url: str | None = None, timeout: float = 5.0) -> Finding:
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
        return verdict(
            name,
            False,
            f"{url}: {reason}",
            "`systemctl status nginx hub-web`; `journalctl -u hub-web -b`",
        )
    ok = ctype.startswith("application/captive+json") and "user-portal-url" in body
    return verdict(
        name,
        ok,
        f"{url}: {ctype}",
        "" if ok else "something else answers on port 80; check nginx's sites-enabled",
    )


def web_settings(settings) -> Finding:
    """Whether the app is set up for nginx in front of it and phones on the Wi-Fi."""
    problems = []
    if not settings.behind_proxy:
        problems.append("behind_proxy is false (the app would see every phone as nginx)")
    host = urlsplit(settings.portal_url).hostname if settings.portal_url else None
    if host not in {settings.ap_address, *settings.hostnames}:
        problems.append(f"portal_url {settings.portal_url or '(empty)'} is not the hub on the Wi-Fi")
    if problems:
        return verdict(
            "web settings",
            False,
            "; ".join(problems),
            f'in hub.toml: behind_proxy = true, portal_url = "http://{settings.ap_address}/"',
        )
    return verdict("web settings", True, f"behind nginx, portal at {settings.portal_url}")


def firewall_loaded() -> Finding:
    """Whether the hub's nftables table is in the kernel."""
    r = _run(["nft", "list", "table", "inet", "hub"])
    ok = r is not None and r.returncode == 0
    return verdict(
        "firewall",
        ok,
        "table inet hub loaded" if ok else "table inet hub missing",
        "" if ok else "`sudo nft -f /etc/hub/nftables.conf`; `systemctl enable nftables`",
    )


def run_all(settings) -> list[Finding]:
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


def check_access_point(checkup: Checkup) -> Finding:
    """The probes of the access point, in the order a technician fixes them, as one finding."""
    s = checkup.settings
    calls = [(config_current, (s,)), (service_active, ("hostapd",)),
             (service_active, ("dnsmasq",)), (service_active, ("nginx",)),
             (interface_address, (s,)), (access_point, (s,)), (firewall_loaded, ()),
             (dns_answers, (s,))]
    failed, fine, hints = [], [], []
    for probe, args in calls:
        try:
            found = probe(*args)
            ok, label, detail, hint = found.ok, found.name, found.detail, found.hint
        except Exception as e:
            ok, label, detail, hint = False, probe.__name__, f"{type(e).__name__}: {e}", ""
        if not ok and probe is service_active and _service_running(args[0]):
            ok = True  # no systemd here (a container or a test); the process runs
        (fine if ok else failed).append(f"{label}: {detail}")
        if not ok and hint:
            hints.append(hint)
    if failed:
        return Finding("access_point", FAIL, N_("Not working: %(error)s"),
                        {"error": "; ".join(failed)}, N_("%(text)s"),
                        {"text": "; ".join(hints) or "hub netconfig apply"})
    return Finding("access_point", OK, N_("%(text)s"), {"text": "; ".join(fine)})


def check_portal(checkup: Checkup) -> Finding:
    url = checkup.settings.listen_url
    problems = []
    # The captive-portal API answers as a phone would ask it.
    probe = portal_answers(checkup.settings, base_url=url, timeout=checkup.timeout)
    status: int | str = probe.detail
    if not probe.ok:
        problems.append(probe.detail)
    sock = Path("/run/hub/web.sock")
    if sock.exists():
        sstatus = _http_status_unix(str(sock), checkup.timeout)
        if isinstance(sstatus, str) or sstatus >= 500:
            problems.append(f"{sock}: {sstatus}")
    if problems:
        return Finding("portal", FAIL, N_("The portal does not answer: %(error)s"),
                       {"error": "; ".join(problems)},
                       N_("Restart the web service (systemctl restart hub-web nginx) and read"
                          " `journalctl -u hub-web`."))
    return Finding("portal", OK, N_("%(url)s answers (%(status)s)"),
                   {"url": url, "status": f"HTTP {status}" if isinstance(status, int)
                    else status})


def _service_running(name: str) -> bool:
    """Whether a system service runs: systemd when it is PID 1, else a process by that name."""
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        r = subprocess.run(["systemctl", "is-active", "--quiet", name], check=False)
        if r.returncode == 0:
            return True
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() == name:
                return True
        except OSError:
            continue
    return False


def _http_status_unix(path: str, timeout: float) -> int | str:
    class UnixConnection(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(path)

    conn = UnixConnection("localhost", timeout=timeout)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    except OSError as e:
        return e.strerror or str(e)
    finally:
        conn.close()
