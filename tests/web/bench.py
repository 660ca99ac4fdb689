"""Portal figures: page weight, requests per second against nginx on the same bytes, memory."""

from __future__ import annotations

import gzip
import tempfile
import urllib.request
from pathlib import Path

from tests.benchtools import StaticNginx, rss_kb, wrk_rps
from tests.livehub import LiveHub, free_port


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def run() -> list[tuple[str, str]]:
    from hub.core.context import open_context
    from hub.core.settings import load
    from hub.migrations import MIGRATIONS
    from hub.run import seed_demo

    rows = []
    base = Path(tempfile.mkdtemp(prefix="bench-web-"))
    settings = load(env={"HUB_DATA_DIR": str(base / "data")})
    ctx = open_context(settings, MIGRATIONS)
    with open("/dev/null", "w") as devnull:
        seed_demo(ctx, devnull)
    notice_id = ctx.db.execute("select id from notices where audio_id is not null").fetchone()[0]
    hub = LiveHub(base / "data", gunicorn=True).start()
    try:
        for name, path in (("home", "/"), ("notice", f"/notice/{notice_id}"), ("feedback", "/feedback")):
            body = _get(hub.url + path)
            rows.append((f"page bytes: {name}", f"{len(body)} B raw, {len(gzip.compress(body))} B gzip"
                         f" (limit 30720)"))
        css = _get(hub.url + "/static/hub.css")
        rows.append(("page bytes: shared CSS (cached a year)", f"{len(css)} B raw, {len(gzip.compress(css))} B gzip"))
        home = _get(hub.url + "/")
        static_root = base / "static"
        static_root.mkdir()
        (static_root / "index.html").write_bytes(home)
        hub_rps = wrk_rps(hub.url + "/")
        with StaticNginx(static_root, free_port()) as ng:
            nginx_rps = wrk_rps(f"http://127.0.0.1:{ng.port}/")
        rows.append(("home req/s, 50 conns: gunicorn (2 gthread workers)", f"{hub_rps:.0f}"))
        rows.append(("home req/s, 50 conns: nginx, static copy", f"{nginx_rps:.0f}"))
        rows.append(("home req/s ratio hub/nginx", f"{hub_rps / nginx_rps:.3f}"))
        rows.append(("web process RSS (arbiter + workers)", f"{rss_kb(hub.proc.pid) / 1024:.1f} MiB"))
    finally:
        hub.stop()
        ctx.close()
    return rows
