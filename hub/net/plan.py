"""The hub's networks as the settings describe them, every value checked before it goes into a config file.

Every renderer (:mod:`hub.net.render`, :mod:`hub.net.nginx`) starts from here, so a
setting can never add a line to a config (an SSID with a newline, say).
"""

from __future__ import annotations

import ipaddress
import re

from hub.core.settings import SettingsError
from hub.net.wifi import check_channel

HEADER = "Made by `hub netconfig render` from the hub's settings; change hub.toml, not this file."
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
LEASE_RE = re.compile(r"^(infinite|\d+[smhdw]?)$")
UUID_RE = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _bad(name: str, value, why: str) -> SettingsError:
    return SettingsError(f"setting {name}: {value!r} {why}")


def _ipv4(settings, name: str) -> ipaddress.IPv4Address:
    value = getattr(settings, name)
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise _bad(name, value, "is not an IPv4 address") from None


def villager_network(settings) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Interface(f"{settings.ap_address}/{settings.ap_prefix}").network


def staff_network(settings) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Interface(f"{settings.staff_ap_address}/24").network


def has_staff_wifi(settings) -> bool:
    return bool(settings.staff_ssid)


#: The hub itself: a technician on the Pi, and `hub run` on a laptop.
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def staff_lan(settings) -> ipaddress.IPv4Interface | None:
    """The hub's own address on the office LAN (``staff_address``), or None."""
    if not settings.staff_address:
        return None
    try:
        iface = ipaddress.IPv4Interface(settings.staff_address)
    except ValueError:
        raise _bad("staff_address", settings.staff_address,
                   "is not an IPv4 address with its prefix, like 192.168.1.250/24") from None
    if "/" not in settings.staff_address or not 8 <= iface.network.prefixlen <= 30:
        raise _bad("staff_address", settings.staff_address, "needs its prefix, /8 to /30, like 192.168.1.250/24")
    return iface


def staff_addresses(settings) -> list[str]:
    """The hub's addresses on the staff side, where nginx serves the console."""
    out = []
    lan = staff_lan(settings)
    if lan is not None:
        out.append(str(lan.ip))
    if has_staff_wifi(settings):
        out.append(settings.staff_ap_address)
    return out


def staff_networks(settings) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Where a clerk's request may come from: ``staff_networks``, or by default the staff LAN's
    subnet, the staff Wi-Fi's and the hub itself. Never the villagers' network."""
    if settings.staff_networks:
        nets = []
        for n in settings.staff_networks:
            try:
                nets.append(ipaddress.ip_network(str(n), strict=False))
            except ValueError:
                raise _bad("staff_networks", n, "is not a network like 192.168.1.0/24") from None
        return nets
    nets = list(LOOPBACK)
    lan = staff_lan(settings)
    if lan is not None:
        nets.append(lan.network)
    if has_staff_wifi(settings):
        nets.append(staff_network(settings))
    return nets


def validate(settings) -> None:
    """Raise a one-line :class:`SettingsError` naming the first setting that cannot work."""
    for name in ("wifi_interface", "uplink_interface", "staff_interface", "staff_wifi_interface"):
        value = getattr(settings, name)
        if not IFNAME_RE.match(value):
            raise _bad(name, value, "is not an interface name (1-15 letters, digits, _ . -)")
    for name in ("uplink_interface", "staff_interface"):
        if getattr(settings, name) == settings.wifi_interface:
            raise _bad(
                name,
                getattr(settings, name),
                "is the villagers' Wi-Fi interface; it must be another one",
            )
    check_channel(settings.country_code, settings.wifi_hw_mode, settings.wifi_channel)
    _check_ssid("ssid", settings.ssid)
    if not 1 <= settings.max_clients <= 2007:
        raise _bad("max_clients", settings.max_clients, "must be between 1 and 2007")
    if not 8 <= settings.ap_prefix <= 30:
        raise _bad("ap_prefix", settings.ap_prefix, "must be between 8 and 30")
    ap = _ipv4(settings, "ap_address")
    net = villager_network(settings)
    if ap in (net.network_address, net.broadcast_address):
        raise _bad("ap_address", settings.ap_address, f"is not a host address in {net}")
    start, end = _ipv4(settings, "dhcp_range_start"), _ipv4(settings, "dhcp_range_end")
    for name, addr in (("dhcp_range_start", start), ("dhcp_range_end", end)):
        if addr not in net or addr in (net.network_address, net.broadcast_address):
            raise _bad(name, str(addr), f"is not in the villagers' network {net} (ap_address/ap_prefix)")
    if start > end:
        raise _bad("dhcp_range_end", str(end), "comes before dhcp_range_start")
    if start <= ap <= end:
        raise _bad("ap_address", str(ap), "is inside the DHCP range; phones could be given it")
    if not LEASE_RE.match(settings.dhcp_lease_time):
        raise _bad("dhcp_lease_time", settings.dhcp_lease_time, "is not a lease time like 2h, 45m or 3600")
    if not settings.web_socket.startswith("/"):
        raise _bad("web_socket", settings.web_socket, "must be an absolute path")
    lan = staff_lan(settings)
    if lan is not None and lan.network.overlaps(net):
        raise _bad("staff_address", settings.staff_address, f"overlaps the villagers' network {net}")
    if has_staff_wifi(settings):
        _check_ssid("staff_ssid", settings.staff_ssid)
        if settings.staff_ssid == settings.ssid:
            raise _bad("staff_ssid", settings.staff_ssid, "must differ from ssid")
        p = settings.staff_passphrase
        if not (8 <= len(p) <= 63 and all(32 <= ord(c) < 127 for c in p)):
            raise SettingsError(
                "setting staff_passphrase: must be 8 to 63 printable ASCII characters when staff_ssid is set"
            )
        if settings.staff_wifi_interface == settings.wifi_interface:
            raise _bad(
                "staff_wifi_interface",
                settings.staff_wifi_interface,
                "must differ from wifi_interface",
            )
        _ipv4(settings, "staff_ap_address")
        if staff_network(settings).overlaps(net):
            raise _bad(
                "staff_ap_address",
                settings.staff_ap_address,
                f"overlaps the villagers' network {net}",
            )
    _check_staff_networks(settings, net)


def _check_staff_networks(settings, net) -> None:
    for n in staff_networks(settings):
        if n.version == 4 and n.overlaps(net) and n.prefixlen >= net.prefixlen:
            raise _bad("staff_networks", str(n), f"is inside the villagers' network {net}")


def _check_ssid(name: str, value: str) -> None:
    if not 1 <= len(value.encode("utf-8")) <= 32:
        raise _bad(name, value, "must be 1 to 32 bytes long (a Khmer letter takes 3)")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise _bad(name, value, "contains a control character")
