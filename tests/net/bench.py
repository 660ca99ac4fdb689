"""Production web figures: nginx -> gunicorn against nginx serving the same bytes, page sizes, memory.

Run by `make bench` (tests/bench.py); `python -m tests.net.bench` runs this part alone.
"""

from __future__ import annotations

import io
import shutil
import socket
import statistics
import subprocess
import tempfile
from pathlib import Path

from tests.benchtools import StaticNginx, rss_kb, wrk_rps
from tests.net.webstack import WebStack, free_port

RUNS = 3
SECONDS = 5
CONNECTIONS = 50


def _curl_size(url: str, gzip: bool) -> tuple[int, int]:
    """(header bytes, body bytes) as they cross the wire for one GET."""
    cmd = ["curl", "--noproxy", "*", "-sS", "-o", "/dev/null", "-w", "%{size_header} %{size_download}"]
    if gzip:
        cmd += ["-H", "Accept-Encoding: gzip"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def _seed(web: WebStack) -> str:
    """Demo notices and feedback, as `hub run --demo` makes them; returns a notice id."""
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS
    from hub.run import seed_demo

    ctx = open_context(web.settings, MIGRATIONS)
    try:
        seed_demo(ctx, out=io.StringIO())
        row = ctx.db.conn.execute("select id from notices order by pinned desc, created_at limit 1").fetchone()
        return row[0]
    finally:
        ctx.close()


def run() -> list[tuple[str, str]]:
    missing = [t for t in ("wrk", "nginx", "curl") if shutil.which(t) is None]
    if missing:
        return [("production web", f"skipped: {', '.join(missing)} not installed")]
    rows: list[tuple[str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-net-"))
    web = WebStack(tmp / "hub")
    try:
        notice_id = _seed(web)
        with web:
            base = web.villager_url
            home = subprocess.run(["curl", "--noproxy", "*", "-sS", f"{base}/"], capture_output=True, check=True).stdout
            static_root = tmp / "static-copy"
            static_root.mkdir()
            (static_root / "index.html").write_bytes(home)
            port = free_port()
            with StaticNginx(static_root, port):
                static_url = f"http://127.0.0.1:{port}/"
                _wait_port(port)
                hub_rps, static_rps = [], []
                # Interleaved, so a noisy moment hurts both sides alike.
                for _ in range(RUNS):
                    hub_rps.append(wrk_rps(f"{base}/", CONNECTIONS, SECONDS, runs=1))
                    static_rps.append(wrk_rps(static_url, CONNECTIONS, SECONDS, runs=1))
            h, s = statistics.median(hub_rps), statistics.median(static_rps)
            rows.append((f"home page, nginx -> gunicorn, {CONNECTIONS} connections", f"{h:,.0f} req/s"))
            rows.append(("same HTML as a static file from nginx", f"{s:,.0f} req/s"))
            rows.append(("hub / static", f"{h / s:.3f}  (median of {RUNS} wrk runs of {SECONDS} s each)"))
            for label, path in (("home", "/"), ("notice", f"/notice/{notice_id}"), ("feedback form", "/feedback")):
                gh, gb = _curl_size(base + path, gzip=True)
                rh, rb = _curl_size(base + path, gzip=False)
                rows.append((f"bytes over the wire: {label}", f"{gh + gb:,} gzip ({gb:,} body), {rh + rb:,} plain"))
            css = _curl_size(base + "/static/hub.css?v=1", gzip=True)
            rows.append(("bytes over the wire: hub.css (once, then cached a year)", f"{sum(css):,} gzip"))
            pids = web.pids()
            total = sum(rss_kb(p, include_children=False) for p in pids)
            rows.append(
                (
                    "RSS of hub-web (gunicorn master + workers)",
                    f"{total / 1024:.1f} MiB in {len(pids)} processes ({web.workers} workers, after the load)",
                )
            )
    finally:
        web.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def _wait_port(port: int) -> None:
    import time

    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)


if __name__ == "__main__":
    for label, value in run():
        print(f"  {label:<58} {value}")
