"""Portal figures for `make bench`: the cached villager pages side by side with nginx serving the same bytes.

One stack as a Pi runs it (tests.net.webstack: nginx's workers as www-data,
`hub web` as an unprivileged user, one worker as the unit starts it), plus a
`hub web` on a TCP port for gunicorn alone. For the home page, a notice and
the feedback form, each at 50 connections (wrk, interleaved, median of
HUB_BENCH_RUNS runs of HUB_BENCH_SECONDS):

- gunicorn alone, page rendered per request (``?lang=km`` bypasses the cache);
- gunicorn alone, the page cache in memory (``hub run``'s path);
- nginx -> hub, rendered per request;
- nginx -> hub as deployed: the file the hub wrote, by try_files (a Pi's path);
- nginx serving a static copy of the same bytes.

Then the home page again with ``hub-transcriber`` working through a queue at
its unit's Nice and CPU policy. The memory of every daemon after the load is
in tests/web/bench_memory.py; how cost grows, in tests/web/bench_growth.py.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from tests.benchtools import StaticNginx, wrk
from tests.net.webstack import UNIT_UMASK, WebStack, clean_env, free_port, hub_cmd, stop, wait_for

RUNS = int(os.environ.get("HUB_BENCH_RUNS", "3"))
SECONDS = int(os.environ.get("HUB_BENCH_SECONDS", "3"))
CONNECTIONS = 50
GOAL = 0.5
#: The last stack this module ran, for tests/web/bench_memory.py.
LAST: dict = {}


def _seed(web: WebStack) -> str:
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS
    from hub.run import seed_demo

    ctx = open_context(web.settings, MIGRATIONS)
    try:
        seed_demo(ctx, out=io.StringIO())
        return ctx.db.conn.execute("select id from notices where audio_id is not null").fetchone()[0]
    finally:
        ctx.close()


def _tcp_web(web: WebStack, port: int) -> subprocess.Popen:
    """`hub web` on a TCP port, same data and user as the stack, without nginx in front."""
    env = {**clean_env(), "XDG_RUNTIME_DIR": str(web.sockdir), "HUB_BEHIND_PROXY": "false"}
    args = ["web", "--bind", f"127.0.0.1:{port}"]
    if web.deployed:
        from tests.conftest import as_user

        cmd = [*as_user(*web.hub_ids), *web.python.hub("--config", str(web.config), *args)]
        proc = subprocess.Popen(cmd, env={**env, "HOME": "/nonexistent"}, umask=UNIT_UMASK,
                                cwd=web.settings.data_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        proc = subprocess.Popen(hub_cmd(web.config, *args), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    import socket

    def up() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True

    wait_for(up, 30, "gunicorn on TCP", proc)
    return proc


def _get(url: str) -> bytes:
    return subprocess.run(["curl", "--noproxy", "*", "-sS", "--fail", url], capture_output=True, check=True).stdout


def _median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r for r, _ in runs), statistics.median(p for _, p in runs)


def measure(urls: dict[str, str]) -> dict[str, tuple[float, float]]:
    """req/s and p95 of each URL, the runs interleaved so a noisy moment hurts all alike."""
    got: dict[str, list] = {k: [] for k in urls}
    for _ in range(RUNS):
        for k, url in urls.items():
            got[k].append(wrk(url, CONNECTIONS, SECONDS))
    return {k: _median(v) for k, v in got.items()}


def _busy_transcriber(tmp: Path) -> subprocess.Popen | None:
    """hub-transcriber working through a queue of Korean speech, at its unit's priority."""
    try:
        from tests.voice.bench import _env, _queue, _speech
    except ModuleNotFoundError:
        return None
    from tests.benchtools import apply_unit

    data = tmp / "voice-data"
    wav = _speech(tmp / "speech.wav")
    _queue(data, wav, 10)
    exe = Path(os.sys.executable).parent / "hub-transcriber"
    return subprocess.Popen([str(exe)], env=_env(data, log_level="warning"), preexec_fn=apply_unit("hub-transcriber"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def run() -> list[tuple[str, str]]:
    missing = [t for t in ("wrk", "nginx", "curl") if shutil.which(t) is None]
    if missing:
        return [("portal", f"skipped: {', '.join(missing)} not installed")]
    rows: list[tuple[str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-web-"))
    web = WebStack(tmp / "hub", workers=1)
    alone = transcriber = None
    try:
        notice_id = _seed(web)
        web.start()
        port = free_port()
        alone = _tcp_web(web, port)
        gun = f"http://127.0.0.1:{port}"
        pages = {"home": "/", "notice": f"/notice/{notice_id}", "feedback form": "/feedback"}
        static_root = tmp / "static"
        static_root.mkdir()
        sport = free_port()
        with StaticNginx(static_root, sport):
            for name, path in pages.items():
                sep = "&" if "?" in path else "?"
                real = web.villager_url + path
                _get(real)  # the first visitor makes the file
                body = _get(real)
                (static_root / "index.html").write_bytes(body)
                same = body == _get(gun + path) == _get(f"http://127.0.0.1:{sport}/")
                urls = {
                    "gunicorn alone, rendered per request": f"{gun}{path}{sep}lang=km",
                    "gunicorn alone, cached in memory": gun + path,
                    "nginx -> hub, rendered per request": f"{real}{sep}lang=km",
                    "nginx -> hub as deployed (cached file, try_files)": real,
                    "nginx, static copy of the same bytes": f"http://127.0.0.1:{sport}/",
                }
                got = measure(urls)
                static = got["nginx, static copy of the same bytes"][0]
                for label, (rps, p95) in got.items():
                    rows.append((f"{name}: {label}", f"{rps:8,.0f} req/s  p95 {p95:6.1f} ms"
                                 f"  ({rps / static:.3f}x static)"))
                ratio = got["nginx -> hub as deployed (cached file, try_files)"][0] / static
                rows.append((f"{name}: deployed path / nginx static (goal >= {GOAL}x)",
                             f"{ratio:.3f}x  {'meets' if ratio >= GOAL else 'MISSES'} the goal;"
                             f" same bytes on every path: {'yes' if same else 'NO'}; {len(body):,} B"))
            transcriber = _busy_transcriber(tmp)
            if transcriber is not None:
                import time

                time.sleep(8)  # the model loads, the first job starts
                got = measure({
                    "gunicorn alone, cached in memory": gun + "/",
                    "nginx -> hub as deployed": web.villager_url + "/",
                    "nginx, static copy": f"http://127.0.0.1:{sport}/",
                })
                static = got["nginx, static copy"][0]
                for label, (rps, p95) in got.items():
                    rows.append((f"home, transcriber busy (Nice 19, SCHED_IDLE): {label}",
                                 f"{rps:8,.0f} req/s  p95 {p95:6.1f} ms  ({rps / static:.3f}x static)"))
                from tests.benchtools import tree_memory_kb

                LAST["transcriber busy"] = tree_memory_kb(transcriber.pid)
        from tests.benchtools import children, memory_kb, tree_memory_kb

        LAST["hub-web"] = tree_memory_kb(web.gunicorn.pid)
        LAST["hub-web split"] = (memory_kb(web.gunicorn.pid), [memory_kb(c) for c in children(web.gunicorn.pid)])
        LAST["nginx"] = tree_memory_kb(web.nginx.pid)
        LAST["settings"] = web.settings
    finally:
        if transcriber is not None:
            from tests.benchtools import stop_group

            stop_group(transcriber)
        stop(alone)
        web.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    for label, value in run():
        print(f"  {label:<72} {value}")
