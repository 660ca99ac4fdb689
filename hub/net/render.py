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

import ipaddress
import re
from pathlib import Path

from hub.core.settings import SettingsError
from hub.net.wifi import check_channel
from hub.web.current import STATIC_DIR

HEADER = "Made by `hub netconfig render` from the hub's settings; change hub.toml, not this file."

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


def _check_ssid(name: str, value: str) -> None:
    if not 1 <= len(value.encode("utf-8")) <= 32:
        raise _bad(name, value, "must be 1 to 32 bytes long (a Khmer letter takes 3)")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise _bad(name, value, "contains a control character")


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
    """The firewall: port 80 to the portal, nothing else for villagers; the staff side untouched."""
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
        iifname "{wifi}" jump from_villagers
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


# nginx: @NAME@ markers are filled in by nginx_site(); $names are nginx's own.
_NGINX_HTTP = """\
# @HEADER@
# nginx in front of hub-web (gunicorn on a unix socket). Two server blocks:
# the villagers' side on the access point's address, the staff side on every
# other address. nginx serves /static/ and /media/ itself.

upstream hub_web {
    server unix:@SOCKET@;
    keepalive 8;
}

# Static addresses the pages make carry ?v=<content hash>: cache those a year.
map $arg_v $hub_static_cache {
    ""      "public, max-age=3600";
    default "public, max-age=31536000, immutable";
}

# An HTTP/1.0 request may have no Host; give the app the address it reached.
map $http_host $hub_host {
    ""      $server_addr;
    default $http_host;
}
"""

_NGINX_SERVER = """
server {
    # @SIDE_COMMENT@
    listen @LISTEN@ default_server;
    server_name _;
    server_tokens off;
    client_max_body_size @BODY_MB@m;
    client_body_buffer_size 256k;

    gzip on;
    gzip_comp_level 5;
    gzip_min_length 512;
    gzip_proxied any;
    gzip_vary on;
    gzip_types text/css application/javascript image/svg+xml application/json
               application/captive+json text/plain text/csv;
@CLERK@
    location ^~ /static/ {
        alias @STATIC@/;
        types { text/css css; application/javascript js; image/svg+xml svg;
                image/png png; font/woff2 woff2; text/plain txt; }
        default_type application/octet-stream;
        add_header Cache-Control $hub_static_cache;
        add_header X-Content-Type-Options nosniff;
        access_log off;
    }

    # Fonts never change under a name: a year, even without ?v=.
    location ^~ /static/fonts/ {
        alias @STATIC@/fonts/;
        types { font/woff2 woff2; text/plain txt; }
        default_type application/octet-stream;
        add_header Cache-Control "public, max-age=31536000, immutable";
        add_header X-Content-Type-Options nosniff;
        access_log off;
    }

    # Media: only the phone copies, by the names the media store makes (a UUID
    # never reused, so cached for good). Masters and loudspeaker copies stay private.
    location ~ "^/media/(@UUID@\\.web\\.(mp3|jpg))$" {
        alias @MEDIA@/$1;
        types { audio/mpeg mp3; image/jpeg jpg; }
        default_type application/octet-stream;
        add_header Cache-Control "public, max-age=31536000, immutable";
        add_header X-Content-Type-Options nosniff;
        add_header Content-Disposition inline;
        add_header Content-Security-Policy "default-src 'none'; sandbox";
        access_log off;
    }
    location /media/ {
        return 404;
    }

    # Everything else goes to the app. @HOST_COMMENT@
    location / {
        proxy_pass http://hub_web;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host @HOST@;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Hub-Side @SIDE@;
        proxy_read_timeout 120s;
    }
}
"""

_NGINX_NO_CLERK = """
    # The clerk console is not served to villagers, whatever the app thinks.
    location ^~ /clerk {
        return 404;
    }
"""


def static_dir() -> Path:
    return STATIC_DIR.resolve()


def nginx_site(
    settings,
    villager_listen: str | None = None,
    staff_listen: str | None = "80",
    static: Path | None = None,
) -> str:
    """The nginx ``http``-level config: the upstream, and one server block per side.

    *villager_listen* defaults to ``AP_ADDRESS:80``. *staff_listen* defaults
    to port 80 on every other address (nginx picks the block by the address a
    connection reached); None leaves the staff side out.
    """
    validate(settings)
    media = Path(settings.media_dir).resolve()
    values = {
        "HEADER": HEADER,
        "SOCKET": settings.web_socket,
        "STATIC": str(static or static_dir()),
        "MEDIA": str(media),
        "UUID": UUID_RE,
        "BODY_MB": str(settings.max_upload_mb + 1),
    }
    for name in ("STATIC", "MEDIA", "SOCKET"):
        if any(c in values[name] for c in " ;{}\"'$#\n"):
            raise SettingsError(f"nginx config: path {values[name]!r} has a character nginx would misread")

    def fill(text: str, extra: dict[str, str]) -> str:
        for k, v in {**values, **extra}.items():
            text = text.replace(f"@{k}@", v)
        return text

    out = fill(_NGINX_HTTP, {})
    out += fill(
        _NGINX_SERVER,
        {
            "SIDE": "villager",
            "LISTEN": villager_listen or f"{settings.ap_address}:80",
            "HOST": "$hub_host",
            "HOST_COMMENT": (
                "The Host is kept: a foreign one\n"
                "    # (a phone's connectivity check) is sent to the portal by the app."
            ),
            "SIDE_COMMENT": "Villagers' side: every Host name (the Wi-Fi's DNS sends all here).",
            "CLERK": _NGINX_NO_CLERK,
        },
    )
    if staff_listen:
        out += fill(
            _NGINX_SERVER,
            {
                "SIDE": "staff",
                "LISTEN": staff_listen,
                # Clerks type the hub's LAN address, which no setting can know in
                # advance; the app must not take it for a foreign host and send
                # them to the villagers' portal. Its redirects are relative.
                "HOST": settings.ap_address,
                "HOST_COMMENT": (
                    "Clerks use whatever LAN address the hub\n"
                    "    # got; the app gets the hub's own name so it never sends them to the portal."
                ),
                "SIDE_COMMENT": "Staff side: office LAN and staff Wi-Fi; the clerk console.",
                "CLERK": "",
            },
        )
    return out


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


def nginx_standalone(site: Path, prefix: Path, user: str | None = None) -> str:
    """A whole nginx.conf around *site*, with every path under *prefix*.

    Debian's /etc/nginx/nginx.conf plays this part on a Pi; tests and
    benchmarks use this one to run nginx without touching /etc or /var.
    """
    p = Path(prefix)
    return f"""# nginx for a test or benchmark run, around {site}
{f"user {user};" if user else ""}
worker_processes 1;
daemon off;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    include {site};
}}
"""


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
