"""The hub and the central server as real processes, with a faulty link between them."""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import time

import pytest

from hub import feedback
from hub.core.db import new_id, utcnow
from hub.sync import outbox
from hub.sync import state as sync_state
from tests.sync.procs import HUB, ROOT, sync_once


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sync_until_done(hub, tries: int = 40) -> list[dict]:
    outcomes = []
    for _ in range(tries):
        rc, out, err = sync_once(hub.env)
        assert out is not None, err[-2000:]
        outcomes.append(out)
        if (rc == 0 and outbox.counts(hub.ctx.db)["pending"] == 0
                and outbox.media_counts(hub.ctx.db)["pending"] == 0):
            return outcomes
    pytest.fail(f"sync did not finish in {tries} cycles: {outcomes[-3:]}")


@pytest.mark.slow
def test_2000_records_and_50_recordings_arrive_exactly_once_through_faults(central, proxy, make_hub,
                                                                           tmp_path):
    started = time.monotonic()
    token = central.add_hub("kampong")
    hub = make_hub(proxy.url, token)
    ctx = hub.ctx
    for i in range(50):
        mp3 = tmp_path / f"tone{i}.mp3"
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=f={300 + 20 * i}:d=0.5",
                        "-c:a", "libmp3lame", "-b:a", "40k", str(mp3)], check=True)
        recording(ctx, mp3.read_bytes(), f"voice {i}")
    ids = [feedback.submit(ctx, {"category": feedback.CATEGORY_KEYS[i % 8], "body": f"text {i}"})["id"]
           for i in range(1950)]
    setup_done = time.monotonic()
    proxy.cut_up = 0.1
    proxy.cut_down = 0.1
    proxy.stall, proxy.stall_seconds = 0.01, 3
    outcomes = sync_until_done(hub)
    # The clerk answers some after they were sent: the answers travel as revisions.
    for fid in ids[:100]:
        feedback.set_status(ctx, fid, "answered", reply="We will fix it.")
    outcomes += sync_until_done(hub)
    print(f"setup {setup_done - started:.1f} s; {len(outcomes)} cycles in"
          f" {time.monotonic() - setup_done:.1f} s, {proxy.cuts} cuts, {proxy.stalls} stalls")

    assert proxy.cuts >= 5, "the proxy must actually have cut connections"
    counts = outbox.counts(ctx.db)
    assert counts["conflict"] == counts["refused"] == 0
    sent_ids = {r["id"] for r in ctx.db.query("select id from sync_outbox where state = 'sent'")}
    exported = [r for r in central.export() if not r["kind"].startswith("published.")]
    exported_ids = [r["id"] for r in exported]
    assert len(exported_ids) == len(set(exported_ids)), "a record is stored twice"
    assert set(exported_ids) == sent_ids, "central holds exactly what the hub sent: 0 missing, 0 extra"
    hub_feedback = {r["id"] for r in ctx.db.query("select id from feedback")}
    assert {r["id"] for r in exported if r["kind"] == "feedback"} == hub_feedback
    assert len(hub_feedback) == 2000
    revisions = [r for r in exported if r["kind"] == "feedback.revision"]
    assert len(revisions) == 100 and all(r["data"]["status"] == "answered" for r in revisions)
    assert sum(o["pushed"] for o in outcomes) >= len(sent_ids)

    media = list(ctx.db.query("select * from sync_media"))
    assert len(media) == 50 and all(m["state"] == "done" for m in media)
    for m in media:
        hub_copy = ctx.media.path(m["name"])
        central_copy = central.data_dir / "central-media" / f"{m['media_id']}.bin"
        assert sha256(central_copy) == sha256(hub_copy) == m["sha256"]


def recording(ctx, content: bytes, body: str = "long recording") -> dict:
    """A feedback item, shared with the district, with *content* as its recording's web copy."""
    from hub.core.files import write_durably

    media_id = new_id()
    name = f"{media_id}.web.mp3"
    size = len(content)
    write_durably(ctx.media.path(name), content)
    row = {"id": media_id, "hub_id": ctx.hub_id, "kind": "audio", "master_name": None, "web_name": name,
           "web_type": "audio/mpeg", "loud_name": None, "duration_ms": 1_000_000, "bytes": size,
           "sha256": hashlib.sha256(content).hexdigest(), "original_format": "mp3", "created_at": utcnow()}
    feedback.submit(ctx, {"category": "roads", "body": body, "consent_share": "1"}, row)
    return row


@pytest.mark.slow
def test_5mb_upload_interrupted_at_random_points_resumes(central, proxy, make_hub):
    size, chunk_kb = 5 * 1024 * 1024, 256
    chunk = chunk_kb * 1024
    token = central.add_hub("kampong")
    # 2 MB/s: the upload takes a few seconds, long enough to kill the process in the middle.
    hub = make_hub(proxy.url, token, sync_chunk_kb=chunk_kb, sync_bandwidth_kbps=16_000)
    # Random bytes stand in for a long MP3: the sync does not look inside.
    row = recording(hub.ctx, random.Random(5).randbytes(size))
    rng = random.Random(11)
    proxy.cut_at = sorted(rng.sample(range(200_000, size - 200_000), 3))

    # First attempt: killed at a random moment, as a power cut would.
    proc = subprocess.Popen([HUB, "sync", "once"], env=hub.env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Killed once the upload is under way (however long the process took to start), at a random moment in it.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (central_upload(central, row["id"]) or {}).get("received"):
        time.sleep(0.05)
    time.sleep(rng.uniform(0.1, 0.8))
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    upload = central_upload(central, row["id"])
    assert upload is not None and 0 < upload["received"] < size, "the killed run had sent part of it"
    assert upload["received"] % chunk == 0

    sync_until_done(hub, tries=10)
    central_copy = central.data_dir / "central-media" / f"{row['id']}.bin"
    assert sha256(central_copy) == row["sha256"]
    interruptions = proxy.cuts + 1  # the proxy's cuts, and the kill
    assert proxy.cuts >= 2
    overhead = proxy.up_bytes - size
    # Each interruption costs at most the one chunk that was in flight (plus headers).
    assert overhead <= interruptions * chunk + 64 * 1024, (overhead, interruptions)
    assert overhead < size / 2, "the upload did not start over"


def central_upload(central, media_id: str) -> dict | None:
    store = central.open_store()
    try:
        return store.upload_state(media_id)
    finally:
        store.close()


def test_interrupted_cycle_leaves_no_half_marked_records(central, proxy, make_hub):
    """A cycle cut off mid-push marks sent only what the central server confirmed."""
    token = central.add_hub("kampong")
    hub = make_hub(proxy.url, token, sync_batch_size=50)
    for i in range(300):
        feedback.submit(hub.ctx, {"category": "health", "body": f"m{i}"})
    proxy.cut_down = 1.0  # every answer is lost: the central stores, the hub never hears
    rc, out, _ = sync_once(hub.env)
    assert rc == 1 and out["pushed"] == 0
    assert outbox.counts(hub.ctx.db)["sent"] == 0
    proxy.cut_down = 0.0
    sync_until_done(hub)
    ids = [r["id"] for r in central.export() if r["kind"] == "feedback"]
    assert len(ids) == len(set(ids)) == 300


def test_the_token_never_appears_in_logs(central, proxy, make_hub):
    token = central.add_hub("kampong")
    hub = make_hub(proxy.url, token, log_level="debug")
    feedback.submit(hub.ctx, {"category": "water", "body": "x"})
    proxy.cut_up = 0.3
    outputs = []
    for _ in range(3):
        r = subprocess.run([HUB, "sync", "once"], env=hub.env, cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
        outputs.append(r.stdout + r.stderr)
    proxy.down = True
    r = subprocess.run([HUB, "sync", "once"], env=hub.env, cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    outputs.append(r.stdout + r.stderr)
    assert "not online" in r.stdout
    assert any("DEBUG" in o or "INFO" in o for o in outputs), "debug logging was on"
    for o in outputs:
        assert token not in o
    assert token not in central.log.read_text()
    for value in sync_state.all_state(hub.ctx.db).values():
        assert token not in value
