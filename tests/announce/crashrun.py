"""Power cuts of the announcer: SIGKILL the real hub-announcer at random points around due times.

Every occurrence has its own sound (one repeated sample value), so each
playout that reached the speaker can be found again in the ALSA output
files. The sound device is paced (faster than real time) so kills land
before, during and after playouts. Every tenth run the clock jumps past the
grace window while the announcer is down. Afterwards, every occurrence must
have been played exactly once (one complete programme in the output) or
missed (too late, or cut short by a kill: at most one start), and never
reach the speaker twice. Used by tests/announce/test_crash.py (50 runs) and
by `make bench` (200 runs).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub.announce import store
from tests.announce.conftest import expected_programme, signature
from tests.announce.test_daemon import once_at, play_now

CLIP_SECONDS = 0.15
SPEED = 6.0  # the pacer plays six times faster than real time


class Announcer:
    """The hub-announcer console script under a fake systemd notify socket."""

    def __init__(self, env: dict, tmp_path: Path):
        self.env = env
        self.exe = str(Path(sys.executable).parent / "hub-announcer")
        self.sock_path = tmp_path / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.sock_path))
        self.sock.settimeout(0.05)
        self.env["NOTIFY_SOCKET"] = str(self.sock_path)
        self.log = open(tmp_path / "announcer.log", "ab")  # noqa: SIM115 - closed in close()
        self.proc = None
        self.starts = 0

    def start(self) -> None:
        while True:  # forget messages from the previous process
            try:
                self.sock.recv(4096)
            except TimeoutError:
                break
        self.proc = subprocess.Popen([self.exe], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.sock.recv(4096) == b"READY=1":
                    return
            except TimeoutError:
                assert self.proc.poll() is None, "hub-announcer exited while starting"
        raise AssertionError("hub-announcer never said READY=1")

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        os.killpg(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout=20)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        self.sock.close()
        self.log.close()


def _final(ctx, ids: list[str]) -> bool:
    marks = ",".join("?" * len(ids))
    rows = ctx.db.conn.execute(
        f"select state from occurrences where announcement_id in ({marks})", ids).fetchall()
    return len(rows) == len(ids) and all(r[0] in store.FINAL for r in rows)


@dataclass
class CrashRun:
    runs: int
    seed: int
    kills: int = 0
    starts: int = 0
    occurrences: int = 0
    tally: dict = field(default_factory=lambda: {"played": 0, "too late": 0, "cut short": 0})
    double_plays: int = 0
    exit_code: int | None = None
    problems: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def missed(self) -> int:
        return self.tally["too late"] + self.tally["cut short"]


def run(ctx, alsa, tmp_path: Path, runs: int = 50, seed: int = 20261121) -> CrashRun:
    """*runs* kill/restart cycles around due times; what reached the speaker, checked against the store."""
    started = time.monotonic()
    rng = random.Random(seed)
    alsa.paced(speed=SPEED)
    ctx.clock.set_trusted_time("clerk", time.time())  # trusted for this boot, as a clerk would
    env = alsa.env(HUB_DATA_DIR=str(ctx.settings.data_dir), HUB_AUDIO_OUTPUT_DEVICE="speaker",
                   GPIOZERO_PIN_FACTORY="mock", HUB_AMPLIFIER_PIN="GPIO17",
                   HUB_AMPLIFIER_WARMUP_SECONDS="0.05", HUB_QUIET_HOURS_START="00:00",
                   HUB_QUIET_HOURS_END="00:00", HUB_GRACE_MINUTES="1", HUB_LOG_LEVEL="warning")
    daemon = Announcer(env, tmp_path)
    result = CrashRun(runs, seed)
    value_of: dict[str, int] = {}
    next_value = 1000
    try:
        daemon.start()
        for i in range(runs):
            now = datetime.now(UTC)
            batch = []
            for _ in range(rng.choice((1, 2, 2, 3))):
                next_value += 7
                due = now.replace(microsecond=0) + timedelta(seconds=rng.choice((1, 2)))
                batch.append(once_at(ctx, due, signature(next_value, CLIP_SECONDS), now=now))
                value_of[batch[-1]] = next_value
            if rng.random() < 0.2:
                next_value += 7
                batch.append(play_now(ctx, signature(next_value, CLIP_SECONDS)))
                value_of[batch[-1]] = next_value
            jump = i % 10 == 9
            if jump:
                # The power comes back two minutes later: beyond the 1-minute grace window.
                ctx.clock.set_trusted_time("clerk", time.time() + 120)
            time.sleep(rng.uniform(0.0, 2.0))
            daemon.kill()
            result.kills += 1
            if jump:
                time.sleep(rng.uniform(0.0, 0.5))
            daemon.start()
            deadline = time.monotonic() + 20
            while not _final(ctx, batch):
                if time.monotonic() > deadline:
                    raise AssertionError(f"run {i}: occurrences never settled: {store.states(ctx.db)}")
                time.sleep(0.05)
            if jump:
                ctx.clock.set_trusted_time("clerk", time.time())
        result.exit_code = daemon.stop()
    finally:
        result.starts = daemon.starts
        daemon.close()
    _check(ctx, alsa, value_of, result)
    result.seconds = time.monotonic() - started
    return result


def _check(ctx, alsa, value_of: dict[str, int], result: CrashRun) -> None:
    streams = alsa.streams()
    states = {r["announcement_id"]: (r["state"], r["detail"]) for r in
              ctx.db.query("select announcement_id, state, detail from occurrences")}
    logs: dict[str, list[str]] = {}
    for r in ctx.db.query("select announcement_id, outcome from play_log"):
        logs.setdefault(r["announcement_id"], []).append(r["outcome"])
    result.occurrences = len(value_of)
    problem = result.problems.append
    if set(states) != set(value_of):
        problem(f"{len(set(value_of) - set(states))} occurrences were never made")
    names = [p.name for p in alsa.files()]
    chime = expected_programme(b"")[:4800]
    for aid, value in value_of.items():
        heard = [s for s in streams if _find(s, value) >= 0]
        state, detail = states.get(aid, ("absent", ""))
        if len(heard) > 1:
            result.double_plays += 1
            where = [f"{names[i]} ({len(s)} B, {'starts with' if s.startswith(chime) else 'NOT starting with'}"
                     f" the chime, {_run(s, value)} samples of it)"
                     for i, s in enumerate(streams) if _find(s, value) >= 0]
            problem(f"occurrence {value} reached the speaker {len(heard)} times, state {state}: {'; '.join(where)}")
        if state not in ("played", "missed"):
            problem(f"occurrence {value} ended {state}: {detail}")
            continue
        if logs.get(aid) != [state]:
            problem(f"occurrence {value}: play log {logs.get(aid)} for state {state}")
        if state == "played":
            if heard != [expected_programme(signature(value, CLIP_SECONDS))]:
                problem(f"occurrence {value} is marked played but was not heard whole, once")
            result.tally["played"] += 1
        elif detail.startswith("too late"):
            if heard:
                problem(f"occurrence {value} is missed as too late but was heard")
            result.tally["too late"] += 1
        elif detail == "interrupted by a restart":
            result.tally["cut short"] += 1
        else:
            problem(f"occurrence {value} missed for another reason: {detail}")


def _find(stream: bytes, value: int) -> int:
    """Where 200 samples of *value* follow one another in *stream*, at a sample boundary; -1 if nowhere.

    Only even byte offsets count: at an odd one, a run of 1035 (0x040B) reads as a run of
    2820 (0x0B04), and the two would be taken for each other.
    """
    needle = struct.pack("<h", value) * 200
    i = stream.find(needle)
    while i >= 0 and i % 2:
        i = stream.find(needle, i + 1)
    return i


def _run(stream: bytes, value: int) -> int:
    """How many samples of *value* follow one another where the occurrence's sound is in *stream*."""
    sample = struct.pack("<h", value)
    i = _find(stream, value)
    n = 0
    while stream[i + 2 * n:i + 2 * n + 2] == sample:
        n += 1
    return n


def rows(r: CrashRun, asked: int) -> list[tuple[str, str]]:
    """The figures as `make bench` prints them, each with its goal."""
    return [
        ("kill/restart cycles of hub-announcer around due times (goal 200)",
         f"{r.kills} of {asked} ({r.starts} starts, seed {r.seed})"),
        ("occurrences due in those cycles", f"{r.occurrences}"),
        ("played twice (goal 0)", f"{r.double_plays}"),
        ("played once, whole", f"{r.tally['played']}"),
        ("missed: too late (the clock came back past the grace window)", f"{r.tally['too late']}"),
        ("missed: cut short by a kill, not replayed (at most once)", f"{r.tally['cut short']}"),
        ("missed for any other reason (goal 0)", f"{sum('another reason' in p for p in r.problems)}"),
        ("other problems (goal none)", "; ".join(p for p in r.problems if "reached the speaker" not in p)[:300]
         or "none"),
        *(("  twice", p) for p in r.problems if "reached the speaker" in p),
        ("clean stop at the end", "exit 0" if r.exit_code == 0 else f"exit {r.exit_code}"),
        ("time taken", f"{r.seconds:.0f} s"),
    ]
