"""nginx's lines for the cached villager pages: the file the app wrote, else the app.

hub/web/pagecache.py writes the pages and explains the design; these lines
must name a request's file exactly as it does (``home``, ``home.p<N>``,
``notice/<id>``, ``feedback``, ``welcome``, in a folder per language).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from hub.core import pagefiles
from hub.core.site import CSP
from hub.core.words import LANGUAGES
from hub.net.plan import UUID_RE


def own_hosts(settings) -> list[str]:
    """The host names the portal answers as itself (as hub.web.captive counts them)."""
    hosts = {"localhost", "127.0.0.1", settings.ap_address, settings.host, *settings.hostnames}
    own = urlsplit(settings.listen_url).hostname
    if own:
        hosts.add(own)
    return sorted(h.lower() for h in hosts if h and all(c.isalnum() or c in ".-_" for c in h))


def nginx_http(settings) -> str:
    """The http-level maps that turn a request into the file of its cached page."""
    hosts = "".join(f"    {h} 1;\n" for h in own_hosts(settings))
    langs = "".join(f"    {code} {code};\n" for code in LANGUAGES)
    return f"""
# --- Cached villager pages (hub/web/pagecache.py) ---
# Only for the hub's own names: any other Host is a phone's connectivity check,
# which the app answers. The language is the app's: the lang cookie, else the default.
map $host $hub_own_host {{
    default 0;
{hosts}}}
map $cookie_lang $hub_page_lang {{
    default {settings.default_language};
{langs}}}
# The page's file, as the app names it; "" (no such file) sends the request to the app.
map "$hub_own_host $request_method $uri?$args" $hub_page {{
    default "";
    "~^1 (GET|HEAD) /\\?$" home;
    "~^1 (GET|HEAD) /\\?page=(?<hub_page_n>[1-9][0-9]{{0,3}})$" home.p$hub_page_n;
    "~^1 (GET|HEAD) /notice/(?<hub_notice>{UUID_RE})\\?$" notice/$hub_notice;
    "~^1 (GET|HEAD) /feedback\\?$" feedback;
    "~^1 (GET|HEAD) /welcome\\?$" welcome;
}}
# --- end of cached villager pages ---
"""


def nginx_location(settings, app_location: str) -> str:
    """``location /``: the cached page's file if the app wrote one, else *app_location*."""
    root = pagefiles.pages_dir(settings).resolve() / pagefiles.LIVE
    return f"""
    # --- Cached villager pages (hub/web/pagecache.py): the file, else the app ---
    location / {{
        root {root};
        try_files /$hub_page_lang/$hub_page.html {app_location};
        types {{ }}
        default_type text/html;
        charset utf-8;
        add_header Cache-Control no-cache;
        add_header Vary Cookie;
        add_header X-Content-Type-Options nosniff;
        add_header Referrer-Policy same-origin;
        add_header X-Frame-Options DENY;
        add_header Content-Security-Policy "{CSP}";
    }}
    # --- end of cached villager pages ---
"""

