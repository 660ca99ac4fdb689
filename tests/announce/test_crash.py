"""Power cuts: SIGKILL the real hub-announcer at random points around due times, many times.

The runs themselves are in tests/announce/crashrun.py (`make bench` runs 200 of them): after
all runs, every occurrence must be played exactly once or missed, and never reach the speaker
twice.
"""

from __future__ import annotations

import os

import pytest

from tests.announce import crashrun

RUNS = int(os.environ.get("HUB_CRASH_RUNS", "50"))
SEED = int(os.environ.get("HUB_CRASH_SEED", "20261121"))


@pytest.mark.slow
def test_sigkill_at_random_points_never_plays_anything_twice(ctx, alsa, tmp_path):
    r = crashrun.run(ctx, alsa, tmp_path, runs=RUNS, seed=SEED)
    print(f"\n{RUNS} runs, {r.kills} SIGKILLs, {r.starts} starts, seed {SEED}: {r.tally},"
          f" {r.double_plays} played twice, in {r.seconds:.0f} s")
    assert r.kills == RUNS
    assert r.exit_code == 0
    assert r.double_plays == 0, r.problems
    assert not r.problems, r.problems
    # The kills did land in each kind of place.
    assert r.tally["played"] > 0 and r.tally["too late"] > 0 and r.tally["cut short"] > 0, r.tally
