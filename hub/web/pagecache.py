"""Cached villager pages: rendered once per language and per version of the notices.

The home list pages, the notice pages, the feedback form and the welcome page
are the same for every visitor who reads one language, until a notice
changes. Each is rendered once per (notices version, language, page) and then
served

- by nginx, from the file the app wrote into ``DATA_DIR/pages/live/<lang>/``
  (:mod:`hub.core.pagefiles`; nginx's ``try_files`` lines are rendered by
  :mod:`hub.net.pages`), when the hub runs behind
  nginx (``behind_proxy = true``); and
- from this process's memory otherwise (``hub run``), checked against the
  notices' version on every request.

The version is bumped by triggers inside the transaction of the write that
changes notices (migration 0009), and the writer then points nginx at an empty
folder (``hub.notices`` calls :func:`hub.core.pagefiles.refresh`). A page is
stored only if the version it was rendered from is still current, and only in
that version's folder. The home list also depends on the time, through notices
that expire, and every dated page through "today" and "yesterday": a page
is taken down when the first listed notice expires or the day ends, and the
clock's corrections are part of the version. Receipt and status pages are per person and stay dynamic, as does
anything with a query string other than ``?page=N``.

**The language** of a cached page is chosen the way the app chooses it: the
``lang`` cookie set by ``/lang/<code>`` (a plain link, no JavaScript), else
``default_language``. nginx maps the same cookie to the same folder, and both
answer with ``Vary: Cookie``. ``?lang=`` goes to the app.

**The forms on cached pages carry no secret** (the unauthenticated-form
design). A token in a page that everyone gets is the same for everyone, so it
proves nothing; a token per visitor would mean rendering per visitor, or
JavaScript, or nginx SSI, which is what the cache is there to avoid. What a
CSRF token protects against here is another site making a villager's
browser post feedback or pass the welcome page: these forms grant nothing
(no villager has a session or an account), so what is left to stop is a
forged cross-site post. The app refuses a POST to these two forms when the
browser says it came from another site: ``Sec-Fetch-Site`` other than
``same-origin``/``none`` when the browser sends it (current Chrome, Firefox,
Safari), else an ``Origin`` or ``Referer`` naming another host. Every browser
that sends a cross-site form post sends ``Origin`` (Chrome and Safari for
years, Firefox since 70), and our pages' ``Referrer-Policy: same-origin``
makes even older browsers send ``Referer`` to the hub itself. A post with
none of the three headers must carry the session's token, as before: clerk
forms are never cached and always do, and so does a feedback form the app
renders again after an error. Either proof is enough.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import Response, g, make_response, request

from hub.core import pagefiles
from hub.web.current import hub_context, lang

UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_PAGE_ARG = re.compile(r"[1-9][0-9]{0,3}")
_UUID = re.compile(UUID)

#: Villager forms that cached pages carry; checked by where the post came from, not by a token.
SAME_ORIGIN_FORMS = ("portal.feedback_submit", "captive.welcome_accept")
#: Pages kept in memory per process (about 10 KB each): the front pages and the most read notices.
MEMORY_PAGES = 200
_CACHING = "hub_page_caching"


def _home_key(kwargs) -> str | None:
    if not request.args:
        return "home"
    page = request.args.get("page", "")
    if list(request.args) == ["page"] and _PAGE_ARG.fullmatch(page):
        return f"home.p{page}"
    return None


def _notice_key(kwargs) -> str | None:
    nid = kwargs.get("notice_id", "")
    return f"notice/{nid}" if not request.args and _UUID.fullmatch(nid) else None


def _plain(name: str) -> Callable[[dict], str | None]:
    return lambda kwargs: None if request.args else name


def _midnight(ctx) -> float:
    """The next local midnight, as a time.time() stamp: "today" becomes "yesterday" then."""
    now = ctx.clock.now()
    zone = ZoneInfo(ctx.settings.timezone)
    local = now.astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), dtime(0), zone)
    return time.time() + (midnight - now).total_seconds()


def _next_expiry(ctx) -> float:
    """When the home list changes by itself: the first listed notice expires, or the day ends."""
    now = ctx.clock.now()
    row = ctx.db.conn.execute(
        "select min(expires_at) from notices where expires_at > ?", (now.isoformat(timespec="seconds"),)
    ).fetchone()
    if not row or not row[0]:
        return _midnight(ctx)
    due = datetime.fromisoformat(row[0])
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    return min(_midnight(ctx), time.time() + (due - now).total_seconds())


#: endpoint -> (cache key of this request or None, when the page stops being true or None).
PAGES: dict[str, tuple[Callable[[dict], str | None], Callable | None]] = {
    "portal.home": (_home_key, _next_expiry),
    "portal.notice": (_notice_key, _midnight),
    "portal.feedback_form": (_plain("feedback"), None),
    "captive.welcome": (_plain("welcome"), None),
}


class PageCache:
    """The pages of one process: in memory, and written for nginx when it is in front."""

    def __init__(self, settings, write_files: bool):
        self.root = pagefiles.pages_dir(settings)
        self.write_files = write_files
        self.memory: OrderedDict[tuple, tuple[bytes, float | None]] = OrderedDict()
        self.lock = threading.Lock()
        self.timers: dict[float, list] = {}
        self.renders = 0  # pages rendered for the cache, for tests and the bench

    def start(self, ctx) -> None:
        if self.write_files:
            try:
                pagefiles.publish(self.root, pagefiles.read_version(ctx.db.conn), fresh=True)
            except OSError:
                pagefiles.withdraw(self.root)  # e.g. a full disk: every page from memory

    def get(self, version: int, language: str, key: str) -> bytes | None:
        with self.lock:
            hit = self.memory.get((version, language, key))
            if hit is None:
                return None
            body, until = hit
            if until is not None and time.time() >= until:
                del self.memory[(version, language, key)]
                return None
            self.memory.move_to_end((version, language, key))
            return body

    def put(self, ctx, version: int, language: str, key: str, body: bytes, until: float | None) -> None:
        if until is not None and time.time() >= until:
            return
        with self.lock:
            self.renders += 1
            for old in [k for k in self.memory if k[0] != version]:
                del self.memory[old]
            self.memory[(version, language, key)] = (body, until)
            while len(self.memory) > MEMORY_PAGES:
                self.memory.popitem(last=False)
        if not self.write_files:
            return
        live = pagefiles.live_version(self.root)
        if live is None or live[0] < version:
            try:
                live = (version, pagefiles.publish(self.root, version))
            except OSError:
                return  # no room for a folder: this page is served from memory
        if live[0] != version:
            return  # rendered from an older version than nginx serves: keep it out of nginx's folder
        relative = f"{language}/{key}.html"
        pagefiles.write_page(live[1], relative, body)
        if until is not None:
            self._drop_at(until, live[1], relative)

    def _drop_at(self, until: float, folder, relative: str) -> None:
        with self.lock:
            waiting = self.timers.get(until)
            if waiting is not None:
                waiting.append(relative)
                return
            waiting = self.timers[until] = [relative]

        def drop():
            with self.lock:
                names = self.timers.pop(until, [])
            pagefiles.drop(folder, names)

        timer = threading.Timer(max(0.0, until - time.time()) + 0.05, drop)
        timer.daemon = True
        timer.start()


def _wrap(cache: PageCache, view, key_of, until_of):
    def cached_view(*args, **kwargs):
        key = key_of(kwargs) if request.method in ("GET", "HEAD") else None
        if key is None:
            return view(*args, **kwargs)
        ctx = hub_context()
        conn = ctx.db.conn
        language = lang()
        version = pagefiles.read_version(conn)
        body = cache.get(version, language, key)
        if body is not None:
            return _response(body)
        g.setdefault(_CACHING, True)
        resp = make_response(view(*args, **kwargs))
        g.pop(_CACHING, None)
        if resp.status_code != 200 or resp.mimetype != "text/html" or "Set-Cookie" in resp.headers:
            return resp
        until = until_of(ctx) if until_of else None
        # Stored only if no write of notices committed while it was rendered.
        if pagefiles.read_version(conn) == version:
            cache.put(ctx, version, language, key, resp.get_data(), until)
        resp.headers["Vary"] = "Cookie"
        return resp

    cached_view.__name__ = view.__name__
    cached_view.__doc__ = view.__doc__
    return cached_view


def _response(body: bytes) -> Response:
    resp = Response(body, mimetype="text/html")
    resp.headers["Vary"] = "Cookie"
    return resp


def init_app(app) -> None:
    """Cache the pages of :data:`PAGES`; call after the blueprints are registered."""
    settings = app.config["HUB_SETTINGS"]
    cache = PageCache(settings, write_files=settings.behind_proxy)
    cache.start(app.config["HUB_CONTEXT"])
    app.extensions["pagecache"] = cache
    for endpoint, (key_of, until_of) in PAGES.items():
        app.view_functions[endpoint] = _wrap(cache, app.view_functions[endpoint], key_of, until_of)

    @app.context_processor
    def _no_token_in_shared_pages():
        # Registered after security's: while a page for everyone renders, its forms carry no token.
        return {"csrf_token": lambda: ""} if g.get(_CACHING) else {}


def same_origin_form() -> bool:
    """A post to a villager form that the browser says came from the hub's own pages (see above)."""
    if request.endpoint not in SAME_ORIGIN_FORMS:
        return False
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    for header in ("Origin", "Referer"):
        value = request.headers.get(header)
        if value is not None:
            return urlsplit(value).netloc.lower() == (request.host or "").lower()
    return False  # no word from the browser at all: only the session's token will do
