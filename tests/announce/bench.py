"""Announcer figures for `make bench`: lateness to the first sample, and idle CPU use.

The real ``hub-announcer`` runs in a child process with an ALSA file-plugin
device; 100 one-off announcements are due one second apart. Lateness is
measured twice, side by side: by a watcher that notes when each new output
file gets its first bytes (independent of the daemon), and from the
``started_at`` the daemon writes in ``play_log``.

It runs twice: on a quiet machine, and busy, with ``hub-transcriber`` working
through a queue of speech and the portal (`hub web`) under wrk load at 50
connections. Each daemon runs with its unit's settings read from
systemd/*.service (tests.benchtools.apply_unit): Nice=, CPUSchedulingPolicy=,
IOSchedulingClass=, and CPUWeight=/IOWeight= in a cgroup of its own, made the
way systemd makes it (cgroup v2, or v1's cpu and blkio controllers where this
machine has only those), so what is measured is what is deployed. The rows
say which of them were applied.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

N = int(os.environ.get("HUB_BENCH_OCCURRENCES", "100"))
IDLE_SECONDS = float(os.environ.get("HUB_BENCH_IDLE_SECONDS", "20"))


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _idle_baseline(seconds: float) -> float:
    """CPU seconds of a bare Python process sleeping in 1-second steps, for comparison."""
    proc = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(1)"])
    time.sleep(0.5)
    before = _cpu_seconds(proc.pid)
    time.sleep(seconds)
    used = _cpu_seconds(proc.pid) - before
    proc.kill()
    proc.wait()
    return used


GOAL_P95_MS = 200
GOAL_MAX_MS = 500


def _load(tmp: Path, seconds: int) -> list[subprocess.Popen]:
    """The transcriber at work and the portal under wrk load, each as its unit runs it."""
    import shutil

    from tests.benchtools import apply_unit
    from tests.livehub import free_port

    procs: list[subprocess.Popen] = []
    try:
        from tests.voice.bench import _env, _queue, _speech

        data = tmp / "voice-data"
        _queue(data, _speech(tmp / "speech.wav"), 10)
        procs.append(subprocess.Popen([str(Path(sys.executable).parent / "hub-transcriber")],
                                      env=_env(data, log_level="warning"), preexec_fn=apply_unit("hub-transcriber"),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    except ModuleNotFoundError:
        pass
    if shutil.which("wrk"):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env["HUB_DATA_DIR"] = str(tmp / "web-data")
        procs.append(subprocess.Popen([str(Path(sys.executable).parent / "hub"), "web", "--bind", f"127.0.0.1:{port}"],
                                      env=env, preexec_fn=apply_unit("hub-web"), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True))
        time.sleep(4)
        procs.append(subprocess.Popen(["wrk", "-t2", "-c50", f"-d{seconds}s", f"http://127.0.0.1:{port}/?lang=km"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    return procs


def run() -> list[tuple[str, str]]:
    return _lateness(busy=False) + _lateness(busy=True)


def _lateness(busy: bool) -> list[tuple[str, str]]:
    from hub.announce import store
    from hub.announce.schedule import Recurrence
    from hub.core import settings as settings_mod
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS
    from tests.announce.conftest import AlsaFile, add_loud_media, signature

    tmp = Path(tempfile.mkdtemp(prefix="hub-bench-announce-"))
    load = _load(tmp, N + 90) if busy else []  # at work before the first occurrence is due
    alsa = AlsaFile(tmp / "alsa")
    settings = settings_mod.load(config=None, env={}, overrides={"data_dir": tmp / "data"})
    ctx = open_context(settings, MIGRATIONS)
    ctx.clock.set_trusted_time("clerk", time.time())
    media = add_loud_media(ctx, signature(500, 0.5))
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    dues = []
    for i in range(N):
        due = start + timedelta(seconds=i)
        local = due.astimezone(ZoneInfo(settings.timezone))
        text = Recurrence("once", local.date(), local.time()).to_rrule(settings.timezone)
        store.create(ctx, {"audio_id": media, "rrule": text}, now=start - timedelta(seconds=5))
        dues.append(due.timestamp())

    seen: list[float] = []
    stop = threading.Event()

    def watch():
        known: set[str] = set()
        while not stop.is_set():
            for p in alsa.files():
                if p.name not in known and p.stat().st_size > 0:
                    known.add(p.name)
                    seen.append(time.time())
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    notify = tmp / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    env = alsa.env(HUB_DATA_DIR=str(settings.data_dir), HUB_AMPLIFIER_PIN="GPIO17",
                   GPIOZERO_PIN_FACTORY="mock", HUB_AMPLIFIER_WARMUP_SECONDS="0.5",
                   HUB_QUIET_HOURS_START="00:00", HUB_QUIET_HOURS_END="00:00",
                   HUB_LOG_LEVEL="warning", NOTIFY_SOCKET=str(notify))
    from tests.benchtools import apply_unit

    proc = subprocess.Popen([str(Path(sys.executable).parent / "hub-announcer")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=apply_unit("hub-announcer"))
    try:
        sock.settimeout(30)
        sock.recv(4096)  # READY=1
        deadline = time.time() + N + 30
        while len(store.log(ctx.db, limit=N + 1)) < N and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(2)
        stop.set()
        from tests.benchtools import stop_group

        for p in load:
            os.killpg(p.pid, signal.SIGTERM)
        for p in load:
            stop_group(p)
        before = _cpu_seconds(proc.pid)
        time.sleep(IDLE_SECONDS if not busy else 0)
        idle_cpu = _cpu_seconds(proc.pid) - before
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        sock.close()
        for p in load:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    if busy:
        from tests.benchtools import unit_cgroups

        applied = ("announce, busy: units' settings applied",
                   "Nice=, CPUSchedulingPolicy=, IOSchedulingClass= on each process; " + unit_cgroups().describe(tmp))
        return _rows("busy (transcriber + portal under load)", rows_of(ctx, N), seen, dues) + [applied]
    baseline = _idle_baseline(IDLE_SECONDS)
    return _rows("quiet", rows_of(ctx, N), seen, dues) + [
        ("announce: idle announcer CPU", f"{100 * idle_cpu / IDLE_SECONDS:.3f} %"
         f" ({idle_cpu * 3600 / IDLE_SECONDS:.0f} CPU-s per hour)"),
        ("announce: idle bare python sleep loop CPU (baseline)",
         f"{100 * baseline / IDLE_SECONDS:.3f} %"),
    ]


def rows_of(ctx, n: int) -> list[dict]:
    from hub.announce import store

    return store.log(ctx.db, limit=n + 1)


def _rows(what: str, rows: list[dict], seen: list[float], dues: list[float]) -> list[tuple[str, str]]:
    from hub.announce import store

    # Signed: a negative figure would mean a playout started early.
    by_file = [(t - d) * 1000 for t, d in zip(seen, dues, strict=False)]
    by_log = [(store.parse_time(r["started_at"]).timestamp() - store.parse_time(r["due_at"])
               .timestamp()) * 1000 for r in rows if r["started_at"]]
    played = sum(r["outcome"] == "played" for r in rows)
    out = [(f"announce, {what}: occurrences played / output files / due", f"{played} / {len(seen)} / {N}")]
    for label, values in (("output file", by_file), ("play_log", by_log)):
        if not values:
            continue
        p95, worst = _p95(values), max(values)
        meets = p95 <= GOAL_P95_MS and worst <= GOAL_MAX_MS
        out.append((f"announce, {what}: lateness to first sample, {label} (p50 / p95 / max)",
                    f"{statistics.median(values):.0f} / {p95:.0f} / {worst:.0f} ms"
                    f"  (goal p95 <= {GOAL_P95_MS}, max <= {GOAL_MAX_MS}: {'meets' if meets else 'MISSES'})"))
    return out


if __name__ == "__main__":
    for label, value in run():
        print(f"{label}: {value}")
