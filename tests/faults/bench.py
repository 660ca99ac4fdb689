"""Fault and load figures, each printed with its goal beside it (`make bench BENCH=faults`).

- hub-web SIGKILLed 1,000 times while phones send text and voice feedback
  through nginx (tests/faults/webkill.py): acknowledged submissions lost,
  orphan media files, integrity_check.
- hub-announcer killed and restarted 200 times around due times
  (tests/announce/crashrun.py): double plays, and plays missed by design.
- 50 phones for 10 minutes through nginx while the kiosk records and the
  transcriber works (tests/faults/load.py): requests, errors by kind,
  p50/p95/max per kind.

Sizes and parts come from the environment: HUB_BENCH_KILLS (1000; every
HUB_BENCH_WHOLE_EVERY-th, 20, kills the whole server, the others a worker),
HUB_BENCH_ANNOUNCER_CYCLES (200), HUB_BENCH_PHONES (50),
HUB_BENCH_PHONE_SECONDS (600), and HUB_BENCH_FAULTS, a comma-separated
choice of ``web``, ``announcer`` and ``phones`` (default: all three).
Each part is bounded in time: the kills stop after HUB_BENCH_KILL_SECONDS
(3600) whatever their number, and the phones' run is as long as asked.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PARTS = ("web", "announcer", "phones")


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def _web(base: Path) -> list[tuple[str, str]]:
    from tests.faults import webkill

    kills = _int("HUB_BENCH_KILLS", 1000)
    fig = webkill.run(base / "web", kills=kills, max_seconds=_int("HUB_BENCH_KILL_SECONDS", 3600),
                      whole_every=_int("HUB_BENCH_WHOLE_EVERY", 20), voice_every=32)
    return webkill.rows(fig, kills)


def _announcer(base: Path) -> list[tuple[str, str]]:
    from hub.core import settings as settings_mod
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS
    from tests.announce import crashrun
    from tests.announce.conftest import AlsaFile

    cycles = _int("HUB_BENCH_ANNOUNCER_CYCLES", 200)
    tmp = base / "announcer"
    tmp.mkdir()
    settings = settings_mod.load(config=None, env={}, overrides={"data_dir": tmp / "data"})
    ctx = open_context(settings, MIGRATIONS)
    try:
        result = crashrun.run(ctx, AlsaFile(tmp / "alsa"), tmp, runs=cycles)
    finally:
        ctx.close()
    return crashrun.rows(result, cycles)


def _phones(base: Path) -> list[tuple[str, str]]:
    from tests.faults import load

    fig = load.run(base / "phones", phones=_int("HUB_BENCH_PHONES", 50),
                   seconds=_int("HUB_BENCH_PHONE_SECONDS", 600))
    return load.rows(fig)


def run() -> list[tuple[str, str]]:
    wanted = [p.strip() for p in os.environ.get("HUB_BENCH_FAULTS", ",".join(PARTS)).split(",") if p.strip()]
    unknown = set(wanted) - set(PARTS)
    if unknown:
        return [("HUB_BENCH_FAULTS", f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")]
    rows: list[tuple[str, str]] = []
    base = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    try:
        for part, title, fn in (("web", "hub-web SIGKILLed during submissions", _web),
                                ("announcer", "hub-announcer killed around due times", _announcer),
                                ("phones", "phones through nginx, kiosk and transcriber busy", _phones)):
            if part in wanted:
                rows.append((f"-- {title}", f"(load average before: {_loadavg()})"))
                rows.extend(fn(base))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return rows


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    for label, value in run():
        print(f"  {label:<62} {value}")
