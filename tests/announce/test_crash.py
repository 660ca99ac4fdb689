"""Power cuts: SIGKILL the real hub-announcer at random points around due times, many times.

Every occurrence has its own sound (one repeated sample value), so each
playout that reached the speaker can be found again in the ALSA output
files. The sound device is paced (faster than real time) so kills land
before, during and after playouts. After all runs, every occurrence must
be played exactly once (one complete programme in the output) or missed
(at most one start, cut short), and never reach the speaker twice.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.announce import store
from tests.announce.conftest import expected_programme, signature
from tests.announce.test_daemon import once_at, play_now

RUNS = int(os.environ.get("HUB_CRASH_RUNS", "50"))
SEED = int(os.environ.get("HUB_CRASH_SEED", "20261121"))
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


@pytest.mark.slow
def test_sigkill_at_random_points_never_plays_anything_twice(ctx, alsa, tmp_path):
    rng = random.Random(SEED)
    alsa.paced(speed=SPEED)
    ctx.clock.set_trusted_time("clerk", time.time())  # trusted for this boot, as a clerk would
    env = alsa.env(HUB_DATA_DIR=str(ctx.settings.data_dir), HUB_AUDIO_OUTPUT_DEVICE="speaker",
                   GPIOZERO_PIN_FACTORY="mock", HUB_AMPLIFIER_PIN="GPIO17",
                   HUB_AMPLIFIER_WARMUP_SECONDS="0.05", HUB_QUIET_HOURS_START="00:00",
                   HUB_QUIET_HOURS_END="00:00", HUB_GRACE_MINUTES="1", HUB_LOG_LEVEL="warning")
    daemon = Announcer(env, tmp_path)
    value_of: dict[str, int] = {}
    next_value = 1000
    kills = 0
    try:
        daemon.start()
        for run in range(RUNS):
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
            jump = run % 10 == 9
            if jump:
                # The power comes back two minutes later: beyond the 1-minute grace window.
                ctx.clock.set_trusted_time("clerk", time.time() + 120)
            time.sleep(rng.uniform(0.0, 2.0))
            daemon.kill()
            kills += 1
            if jump:
                time.sleep(rng.uniform(0.0, 0.5))
            daemon.start()
            deadline = time.monotonic() + 20
            while not _final(ctx, batch):
                assert time.monotonic() < deadline, f"run {run}: {store.states(ctx.db)}"
                time.sleep(0.05)
            if jump:
                ctx.clock.set_trusted_time("clerk", time.time())
        assert daemon.stop() == 0
    finally:
        daemon.close()

    assert kills >= 50 or RUNS < 50
    streams = alsa.streams()
    states = {r["announcement_id"]: (r["state"], r["detail"]) for r in
              ctx.db.query("select announcement_id, state, detail from occurrences")}
    logs: dict[str, list[str]] = {}
    for r in ctx.db.query("select announcement_id, outcome from play_log"):
        logs.setdefault(r["announcement_id"], []).append(r["outcome"])
    assert set(states) == set(value_of), "an occurrence was never made"
    tally = {"played": 0, "too late": 0, "cut short": 0}
    for aid, value in value_of.items():
        needle = struct.pack("<h", value) * 200
        heard = [s for s in streams if needle in s]
        state, detail = states[aid]
        assert state in ("played", "missed"), (aid, state, detail)
        assert logs[aid] == [state], (aid, logs[aid])
        assert len(heard) <= 1, f"occurrence {value} reached the speaker {len(heard)} times"
        if state == "played":
            assert heard == [expected_programme(signature(value, CLIP_SECONDS))], value
            tally["played"] += 1
        elif detail.startswith("too late"):
            assert heard == [], value
            tally["too late"] += 1
        else:
            assert detail == "interrupted by a restart", detail
            tally["cut short"] += 1
    print(f"\n{RUNS} runs, {kills} SIGKILLs, {daemon.starts} starts, seed {SEED}: {tally}")
    # The kills did land in each kind of place.
    assert tally["played"] > 0 and tally["too late"] > 0 and tally["cut short"] > 0, tally
