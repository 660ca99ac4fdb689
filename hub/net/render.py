"""The appliance's config files, made from the settings (``hub netconfig render``).

- ``hostapd.conf``: the villagers' open access point (and an optional WPA2
  staff network beside it);
- ``dnsmasq.conf``: DHCP with option 114 (RFC 8910) and DNS that answers
  every name with the hub;
- ``nftables.conf``: port 80 from the villagers' Wi-Fi goes to the portal;
  villagers reach nothing else (not the clerk console, not the uplink);
- ``nginx.conf``: nginx in front of hub-web, two server blocks, one per side;
- ``hub-ap.network`` and ``hub-networkmanager.conf``: the hub's address on the
  access-point interfaces (systemd-networkd), kept away from NetworkManager.

Every value that goes into a file is checked first, so a setting can never
add a line to a config (an SSID with a newline, say).
"""

from __future__ import annotations

from pathlib import Path

from hub.net.nginx import nginx_site
from hub.net.plan import HEADER, has_staff_wifi, staff_network, validate, villager_network

#: Rendered file -> where `hub netconfig apply` installs it on a Pi.
INSTALL_PATHS: dict[str, str] = {
    "hostapd.conf": "/etc/hostapd/hostapd.conf",
    "dnsmasq.conf": "/etc/dnsmasq.d/hub.conf",
    "nftables.conf": "/etc/hub/nftables.conf",
    "nginx.conf": "/etc/nginx/sites-available/hub",
    "hub-ap.network": "/etc/systemd/network/20-hub-ap.network",
    "hub-networkmanager.conf": "/etc/NetworkManager/conf.d/hub.conf",
}

CAPTIVE_API_PATH = "/api/captive"


def _ssid_line(value: str) -> str:
    # Plain ASCII is written as is; anything else (Khmer names) as hex, which
    # hostapd reads without any quoting or escaping rules to get wrong.
    if value.isascii() and value.strip() == value:
        return f"ssid={value}"
    return f"ssid2={value.encode('utf-8').hex()}"


def hostapd_conf(settings) -> str:
    """The access point: villagers' open BSS with client isolation, and the staff BSS if set."""
    validate(settings)
    lines = [
        f"# {HEADER}",
        f"interface={settings.wifi_interface}",
        "driver=nl80211",
        "ctrl_interface=/run/hostapd",
        "ctrl_interface_group=0",
        "",
        "# Regulatory: the country's channels and power limits, advertised to phones (802.11d).",
        f"country_code={settings.country_code.upper()}",
        "ieee80211d=1",
        f"hw_mode={settings.wifi_hw_mode}",
        f"channel={settings.wifi_channel}",
        "ieee80211n=1",
        *(["ieee80211ac=1"] if settings.wifi_hw_mode == "a" else []),
        "wmm_enabled=1",
        "",
        "# Villagers: an open network; phones cannot reach each other, only the hub.",
        _ssid_line(settings.ssid),
        "utf8_ssid=1",
        "auth_algs=1",
        "wpa=0",
        "ignore_broadcast_ssid=0",
        "ap_isolate=1",
        f"max_num_sta={settings.max_clients}",
    ]
    if has_staff_wifi(settings):
        lines += [
            "",
            "# Staff: WPA2, a second network on the same radio, for the clerk console.",
            f"bss={settings.staff_wifi_interface}",
            _ssid_line(settings.staff_ssid),
            "utf8_ssid=1",
            "auth_algs=1",
            "wpa=2",
            "wpa_key_mgmt=WPA-PSK",
            "rsn_pairwise=CCMP",
            f"wpa_passphrase={settings.staff_passphrase}",
            "ignore_broadcast_ssid=0",
            "max_num_sta=10",
        ]
    return "\n".join(lines) + "\n"


def captive_api_url(settings) -> str:
    return f"http://{settings.ap_address}{CAPTIVE_API_PATH}"


def dnsmasq_conf(settings) -> str:
    """DHCP for phones (with option 114) and DNS that answers every name with the hub."""
    validate(settings)
    net = villager_network(settings)
    ap = settings.ap_address
    lines = [
        f"# {HEADER}",
        f"interface={settings.wifi_interface}",
        # The hub's own lookups (sync, NTP) must keep using the uplink's resolver.
        "except-interface=lo",
        "bind-dynamic",
        "",
        "# DNS: every name is the hub, so any address a phone tries opens the portal.",
        "no-resolv",
        "no-hosts",
        "no-poll",
        # Without local=/#/ dnsmasq has no upstream for AAAA and answers REFUSED,
        # which some phones take as a broken network; with it they get an empty answer.
        "local=/#/",
        f"address=/#/{ap}",
        "",
        "# DHCP",
        "dhcp-authoritative",
        f"dhcp-range=set:villagers,{settings.dhcp_range_start},{settings.dhcp_range_end},"
        f"{net.netmask},{settings.dhcp_lease_time}",
        f"dhcp-option=tag:villagers,option:router,{ap}",
        f"dhcp-option=tag:villagers,option:dns-server,{ap}",
        "# RFC 8910: where the phone finds the RFC 8908 captive-portal API.",
        f'dhcp-option=tag:villagers,114,"{captive_api_url(settings)}"',
    ]
    if has_staff_wifi(settings):
        snet = staff_network(settings)
        hosts = list(snet.hosts())
        lines += [
            "",
            "# Staff Wi-Fi",
            f"interface={settings.staff_wifi_interface}",
            f"dhcp-range=set:staff,{hosts[9]},{hosts[-5]},{snet.netmask},12h",
            f"dhcp-option=tag:staff,option:router,{settings.staff_ap_address}",
            f"dhcp-option=tag:staff,option:dns-server,{settings.staff_ap_address}",
        ]
    return "\n".join(lines) + "\n"


def nftables_conf(settings) -> str:
    """The firewall: port 80 to the portal, nothing else for villagers; no web server on a separate uplink."""
    validate(settings)
    wifi = settings.wifi_interface
    ap = settings.ap_address
    staff_nat = ""
    if has_staff_wifi(settings):
        staff_nat = f"""
    # The staff Wi-Fi may use the uplink, like the office LAN.
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{settings.uplink_interface}" ip saddr {staff_network(settings)} masquerade
    }}
"""
    uplink = ""
    if settings.uplink_interface != settings.staff_interface:
        uplink = f"""
        # The uplink is not the staff side: nothing there may reach the web server.
        iifname "{settings.uplink_interface}" tcp dport {{ 80, 443 }} counter drop"""
    return f"""#!/usr/sbin/nft -f
# {HEADER}
# Only the table "hub" is replaced; other rulesets are left alone.
table inet hub
delete table inet hub

table inet hub {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        # Any web request a phone makes, to any address, reaches the portal.
        iifname "{wifi}" ip daddr != {ap} tcp dport 80 dnat ip to {ap}:80
        # So does DNS sent to a resolver the phone has built in.
        iifname "{wifi}" ip daddr != {ap} meta l4proto {{ tcp, udp }} th dport 53 dnat ip to {ap}:53
    }}

    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "{wifi}" jump from_villagers{uplink}
    }}

    # What a villager's phone may reach on the hub: DHCP, DNS and the portal.
    # Not the staff side's addresses, not SSH, not the clerk listener.
    chain from_villagers {{
        ct state established,related accept
        udp sport 68 udp dport 67 accept
        ip daddr {ap} meta l4proto {{ tcp, udp }} th dport 53 accept
        ip daddr {ap} tcp dport 80 accept
        ip daddr {ap} icmp type echo-request limit rate 10/second accept
        counter reject with icmpx type admin-prohibited
    }}

    chain forward {{
        type filter hook forward priority filter; policy accept;
        # Villagers never reach the uplink or the office LAN through the hub.
        iifname "{wifi}" counter reject with icmpx type admin-prohibited
        oifname "{wifi}" counter drop
    }}
{staff_nat}}}
"""


def networkd_conf(settings) -> str:
    """The hub's fixed address on the access-point interface(s), for systemd-networkd."""
    validate(settings)
    out = f"""# {HEADER}
[Match]
Name={settings.wifi_interface}

[Link]
RequiredForOnline=no

[Network]
Address={settings.ap_address}/{settings.ap_prefix}
ConfigureWithoutCarrier=yes
IPv6AcceptRA=no
LinkLocalAddressing=no
"""
    return out


def networkmanager_conf(settings) -> str:
    """Keeps NetworkManager (Raspberry Pi OS) off the access point's interfaces."""
    validate(settings)
    names = [settings.wifi_interface] + ([settings.staff_wifi_interface] if has_staff_wifi(settings) else [])
    devices = ";".join(f"interface-name:{n}" for n in names)
    return f"# {HEADER}\n[keyfile]\nunmanaged-devices={devices}\n"


def staff_networkd_conf(settings) -> str:
    return f"""# {HEADER}
[Match]
Name={settings.staff_wifi_interface}

[Link]
RequiredForOnline=no

[Network]
Address={settings.staff_ap_address}/24
ConfigureWithoutCarrier=yes
LinkLocalAddressing=no
"""


def render_all(settings) -> dict[str, str]:
    """Every file, by name (see :data:`INSTALL_PATHS`)."""
    validate(settings)
    files = {
        "hostapd.conf": hostapd_conf(settings),
        "dnsmasq.conf": dnsmasq_conf(settings),
        "nftables.conf": nftables_conf(settings),
        "nginx.conf": nginx_site(settings),
        "hub-ap.network": networkd_conf(settings),
        "hub-networkmanager.conf": networkmanager_conf(settings),
    }
    if has_staff_wifi(settings):
        files["hub-staff.network"] = staff_networkd_conf(settings)
    return files


def install_path(name: str) -> str:
    if name == "hub-staff.network":
        return "/etc/systemd/network/21-hub-staff.network"
    return INSTALL_PATHS[name]


def write(out_dir: Path, files: dict[str, str]) -> list[Path]:
    """Write the rendered files into *out_dir*; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
