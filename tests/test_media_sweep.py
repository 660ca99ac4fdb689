"""The media sweep after a crash: a dead writer's files go at once, a living writer's stay.

Files are written before the row that names them is committed; a process killed in between
leaves files no row names. Each writer holds a claim (an flock) on its item until the row is
committed, so the sweep at the next start can tell a dead writer's files from a busy one's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from tests.phone_audio import tone_wav

WRITER = """
import os, signal, sys
from pathlib import Path
from hub.core.context import open_context
from hub.core.db import transaction
from hub.core.settings import load
from hub.migrations import MIGRATIONS
ctx = open_context(load(config=None, env={}, overrides={"data_dir": Path(sys.argv[1])}), MIGRATIONS)
row = ctx.media.prepare_audio(Path(sys.argv[2]))
print(row["id"], flush=True)
if sys.argv[3] == "die":
    os.kill(os.getpid(), signal.SIGKILL)  # the files are written, the row never will be
sys.stdin.readline()
with transaction(ctx.db) as conn:
    ctx.media.insert(conn, row)
print("committed", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def clip(tmp_path):
    return tone_wav(tmp_path / "clip.wav", seconds=0.5)


def writer(ctx, clip, mode: str) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(ctx.settings.data_dir), str(clip), mode],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**env, "PYTHONPATH": str(ROOT)})
    media_id = proc.stdout.readline().strip()
    assert media_id, proc.communicate()
    return proc, media_id


def files_of(ctx, media_id: str) -> list[str]:
    return sorted(p.name for p in ctx.settings.media_dir.iterdir() if media_id in p.name)


def done(proc: subprocess.Popen) -> int:
    proc.stdin.close()
    rc = proc.wait(10)
    proc.stdout.close()
    return rc


def test_files_of_a_writer_killed_before_its_commit_are_swept_at_once(ctx, clip):
    proc, media_id = writer(ctx, clip, "die")
    assert done(proc) == -9
    assert len(files_of(ctx, media_id)) == 3  # master, web, loud
    removed = ctx.media.sweep()
    assert files_of(ctx, media_id) == [], "a dead writer's files were kept"
    assert removed == 3
    assert not (ctx.media.claims.dir / media_id).exists()


def test_files_a_living_process_is_still_writing_are_kept(ctx, clip):
    proc, media_id = writer(ctx, clip, "wait")
    try:
        before = files_of(ctx, media_id)
        assert len(before) == 3
        assert ctx.media.sweep() == 0
        assert files_of(ctx, media_id) == before
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "committed"
        assert ctx.media.sweep() == 0
        assert files_of(ctx, media_id) == before
        assert ctx.media.get(media_id) is not None
    finally:
        done(proc)
    # Its claim ended with the process; the next sweep removes the claim file, the files stay.
    assert ctx.media.sweep() == 0
    assert files_of(ctx, media_id) == before
    assert not (ctx.media.claims.dir / media_id).exists()


def test_files_without_a_claim_go_only_when_old(ctx):
    media = ctx.settings.media_dir
    young = media / "0f0f0f0f-0000-4000-8000-000000000001.web.mp3"
    old = media / "0f0f0f0f-0000-4000-8000-000000000002.web.mp3"
    temp = media / ".tmp-0f0f0f0f-0000-4000-8000-000000000003.web.mp3.abc.mp3"
    for p in (young, old, temp):
        p.write_bytes(b"x")
    hour_ago = time.time() - 7200
    os.utime(old, (hour_ago, hour_ago))
    os.utime(temp, (hour_ago, hour_ago))
    assert ctx.media.sweep() == 2
    assert young.exists() and not old.exists() and not temp.exists()


def test_an_item_stored_in_this_process_leaves_no_claim_behind(ctx, clip):
    first = ctx.media.add_audio(clip)
    second = ctx.media.add_audio(clip)
    ctx.media.sweep()
    for media_id in (first, second):
        assert not (ctx.media.claims.dir / media_id).exists()
        assert len(files_of(ctx, media_id)) == 3
