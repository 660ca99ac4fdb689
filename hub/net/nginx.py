"""nginx in front of hub-web: the site the hub installs, and a whole nginx.conf for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

from hub.core.settings import SettingsError
from hub.net import pages
from hub.net.plan import HEADER, UUID_RE, staff_addresses, validate
from hub.web.current import STATIC_DIR, proxy_body_mb

# nginx: @NAME@ markers are filled in by nginx_site(); $names are nginx's own.
_NGINX_HTTP = """\
# @HEADER@
# nginx in front of hub-web (gunicorn on a unix socket). Two server blocks:
# the villagers' side on the access point's address, the staff side only on
# the hub's staff addresses; any other address (the uplink's) gets its
# connection closed with no answer. nginx serves /static/ and /media/ itself.

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

# --- per-address limits on the villagers' heavy paths --------------------------------------------
# Sending a message and looking up a receipt: nginx answers a flood from one address with 429
# before the app does any work. The app keeps its own hourly counts in the database as well.
_NGINX_LIMITS_HTTP = """
# Per-address limits: sending feedback (POST /feedback) and receipt pages (/receipt...).
# An empty key is not counted, so every other request passes untouched.
map "$request_method $uri" $hub_submit_addr {
    "~^POST /feedback$"  $binary_remote_addr;
    default              "";
}
map $uri $hub_receipt_addr {
    "~^/receipt"  $binary_remote_addr;
    default       "";
}
limit_req_zone $hub_submit_addr zone=hub_submit:1m rate=@SUBMIT_RATE@r/m;
limit_req_zone $hub_receipt_addr zone=hub_receipt:1m rate=@RECEIPT_RATE@r/m;
limit_conn_zone $hub_submit_addr zone=hub_uploads:1m;
"""

_NGINX_LIMITS_SERVER = """
    # Per-address limits (the zones at the top): floods get 429.
    @SUBMIT_LIMIT@
    @RECEIPT_LIMIT@
    limit_conn hub_uploads @UPLOADS_AT_ONCE@;
    limit_req_status 429;
    limit_conn_status 429;
    error_page 429 /hub-errors/429.html;
"""
#: Uploads one address may send at the same time.
UPLOADS_AT_ONCE = 2


def _limit_values(settings) -> dict[str, str]:
    per_hour = settings.feedback_per_hour
    per_minute = settings.receipt_lookups_per_minute
    return {
        "SUBMIT_RATE": str(max(1, -(-per_hour // 60))),
        "RECEIPT_RATE": str(max(1, per_minute)),
        "SUBMIT_LIMIT": (f"limit_req zone=hub_submit burst={per_hour} nodelay;" if per_hour
                         else "# feedback_per_hour = 0: no limit on sending"),
        "RECEIPT_LIMIT": (f"limit_req zone=hub_receipt burst={per_minute} nodelay;" if per_minute
                          else "# receipt_lookups_per_minute = 0: no limit on receipt pages"),
        "UPLOADS_AT_ONCE": str(UPLOADS_AT_ONCE),
    }
# --- end of the per-address limits ----------------------------------------------------------------

_NGINX_SERVER = """
server {
    # @SIDE_COMMENT@
@LISTEN@
    server_name _;
    server_tokens off;
    client_max_body_size @BODY_MB@m;
    client_body_buffer_size 256k;
@LIMITS@
    gzip on;
    gzip_comp_level 5;
    gzip_min_length 512;
    gzip_proxied any;
    gzip_vary on;
    gzip_types text/css application/javascript image/svg+xml application/json
               application/captive+json text/plain text/csv;
@CLERK@
    # nginx's own errors get the hub's Khmer pages (English beside), which the app renders
    # into the data folder when it starts (hub.web.errors).
    error_page 403 /hub-errors/403.html;
    error_page 404 /hub-errors/404.html;
    error_page 413 /hub-errors/413.html;
    error_page 502 /hub-errors/502.html;
    error_page 504 /hub-errors/504.html;
    location ^~ /hub-errors/ {
        internal;
        alias @ERRORS@/;
        types { text/html html; }
        charset utf-8;
        add_header Cache-Control no-store always;
    }

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

@PAGES@
    # Everything else goes to the app. @HOST_COMMENT@
    location @hub_web {
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


# With this block nginx binds only *:80 and picks a block by the address a connection
# reached, so it starts before the Wi-Fi or the LAN has its address, and an address
# that is neither side's (the uplink's, whatever its DHCP gave it) is answered by no one.
_NGINX_NOBODY = """
server {
    # Neither side: the uplink's address, or one the hub was never told of.
    listen 80 default_server;
    server_name _;
    server_tokens off;
    return 444;
}
"""


def static_dir() -> Path:
    return STATIC_DIR.resolve()


def _listens(addresses: list[str]) -> str:
    return "".join(f"    listen {a};\n" for a in addresses)


def nginx_site(
    settings,
    villager_listen: str | None = None,
    staff_listen: str | list[str] | None = None,
    static: Path | None = None,
    staff: bool = True,
) -> str:
    """The nginx ``http``-level config: the upstream, and one server block per side.

    *villager_listen* defaults to ``AP_ADDRESS:80``. *staff_listen* defaults to
    port 80 on the staff addresses only (``staff_address``, the staff Wi-Fi's,
    and loopback for the hub itself), beside a block that closes every other
    connection to port 80; given (tests), it replaces both. *staff* false
    leaves the staff side out.
    """
    validate(settings)
    media = Path(settings.media_dir).resolve()
    values = {
        "HEADER": HEADER,
        "SOCKET": settings.web_socket,
        "STATIC": str(static or static_dir()),
        "MEDIA": str(media),
        "ERRORS": str((Path(settings.data_dir) / "errors").resolve()),
        "UUID": UUID_RE,
        "BODY_MB": str(proxy_body_mb(settings)),
    }
    for name in ("STATIC", "MEDIA", "SOCKET", "ERRORS"):
        if any(c in values[name] for c in " ;{}\"'$#\n"):
            raise SettingsError(f"nginx config: path {values[name]!r} has a character nginx would misread")

    def fill(text: str, extra: dict[str, str]) -> str:
        for k, v in {**values, **extra}.items():
            text = text.replace(f"@{k}@", v)
        return text

    rendered = staff_listen is None
    if rendered:
        staff_listen = [f"{a}:80" for a in (*staff_addresses(settings), "127.0.0.1")]
    elif isinstance(staff_listen, str):
        staff_listen = [staff_listen]
    out = fill(_NGINX_HTTP, {}) + pages.nginx_http(settings)
    values["PAGES"] = pages.nginx_location(settings, "@hub_web")
    limits = _limit_values(settings)
    out += fill(_NGINX_LIMITS_HTTP, limits)
    values["LIMITS"] = fill(_NGINX_LIMITS_SERVER, limits)
    if rendered:
        out += _NGINX_NOBODY
    out += fill(
        _NGINX_SERVER,
        {
            "SIDE": "villager",
            "LISTEN": _listens([villager_listen or f"{settings.ap_address}:80"]),
            "HOST": "$hub_host",
            "HOST_COMMENT": (
                "The Host is kept: a foreign one\n"
                "    # (a phone's connectivity check) is sent to the portal by the app."
            ),
            "SIDE_COMMENT": "Villagers' side: every Host name (the Wi-Fi's DNS sends all here).",
            "CLERK": _NGINX_NO_CLERK,
        },
    )
    if staff:
        out += fill(
            _NGINX_SERVER,
            {
                "SIDE": "staff",
                "LISTEN": _listens(staff_listen),
                # Clerks type the hub's LAN address, which no setting can know in
                # advance; the app must not take it for a foreign host and send
                # them to the villagers' portal. Its redirects are relative.
                "HOST": settings.ap_address,
                "HOST_COMMENT": (
                    "Clerks use whatever LAN address the hub\n"
                    "    # got; the app gets the hub's own name so it never sends them to the portal."
                ),
                "SIDE_COMMENT": "Staff side: the hub's office LAN and staff Wi-Fi addresses; the clerk console.",
                "CLERK": "",
            },
        )
    return out


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
