"""The hub's outbox, limits, back-off and daemon, in process with the real store."""

from __future__ import annotations

import threading
import time

import pytest

from hub import feedback
from hub.core.db import run_script, transaction
from hub.sync import outbox
from hub.sync import state as sync_state
from hub.sync.client import SyncError, Throttle, check_url
from hub.sync.daemon import Sync, next_delay
from hub.sync.engine import run_cycle


def records(ctx, kind=None) -> list[dict]:
    import json

    rows = [json.loads(r["body"]) for r in ctx.db.query("select body from sync_outbox order by seq")]
    return [r for r in rows if kind is None or r["kind"] == kind]


def test_a_table_that_does_not_exist_yet_is_skipped_then_picked_up(ctx, monkeypatch):
    later = outbox.Source("sync_test_later", "later")
    monkeypatch.setattr(outbox, "SOURCES", (*outbox.SOURCES, later))
    assert outbox.scan(ctx) == 0  # no such table yet: no error
    hub_id = ctx.hub_id
    with transaction(ctx.db):
        run_script(ctx.db, "create table sync_test_later (id text primary key, hub_id text, created_at text,"
                           " text text);")
        ctx.db.conn.execute("insert into sync_test_later values ('t1', ?, '2026-01-01T00:00:00+00:00', 'helo')",
                            (hub_id,))
    assert outbox.scan(ctx) == 1
    (first,) = records(ctx, "later")
    assert first["id"] == "t1" and first["data"] == {"text": "helo"} and first["hub_id"] == ctx.hub_id
    assert outbox.scan(ctx) == 0
    # A correction travels as its own record; the original's content never changes.
    with transaction(ctx.db) as conn:
        conn.execute("update sync_test_later set text = 'hello' where id = 't1'")
    assert outbox.scan(ctx) == 1
    (rev,) = records(ctx, "later.revision")
    assert rev["id"] != "t1" and rev["data"] == {"of": "t1", "text": "hello"}
    assert records(ctx, "later")[0] == first


def test_the_real_sources_scan_whatever_tables_exist_now(ctx):
    outbox.scan(ctx)  # transcripts and play_log may or may not exist yet; either way no error


def test_a_clerks_reply_travels_as_a_revision(ctx):
    fid = feedback.submit(ctx, {"category": "water", "body": "no water"})["id"]
    assert outbox.scan(ctx) == 1
    feedback.set_status(ctx, fid, "in_progress")
    assert outbox.scan(ctx) == 1
    feedback.set_status(ctx, fid, "answered", reply="Fixed on Monday")  # within the same second
    assert outbox.scan(ctx) == 1
    assert outbox.scan(ctx) == 0
    revs = records(ctx, "feedback.revision")
    assert [r["data"]["status"] for r in revs] == ["in_progress", "answered"]
    assert revs[1]["data"]["reply"] == "Fixed on Monday" and revs[1]["data"]["of"] == fid
    assert len({r["id"] for r in revs}) == 2


def test_names_phones_and_voices_leave_only_with_consent(ctx, tmp_path):
    from tests.phone_audio import tone_wav

    row = ctx.media.prepare_audio(tone_wav(tmp_path / "a.wav", seconds=0.5))
    private = feedback.submit(ctx, {"category": "land", "body": "x", "name": "Sok", "phone": "012345678"},
                              row)["id"]
    row2 = ctx.media.prepare_audio(tone_wav(tmp_path / "b.wav", seconds=0.5, freq=600))
    shared = feedback.submit(ctx, {"category": "land", "body": "y", "name": "Dara", "phone": "099",
                                   "consent_share": "1"}, row2)["id"]
    outbox.scan(ctx)
    by_id = {r["id"]: r for r in records(ctx)}
    assert not {"name", "phone", "audio_id"} & set(by_id[private]["data"])
    assert by_id[shared]["data"]["name"] == "Dara" and by_id[shared]["data"]["audio_id"] == row2["id"]
    media = list(ctx.db.query("select media_id, sha256, state from sync_media"))
    assert [m["media_id"] for m in media] == [row2["id"]] and media[0]["state"] == "pending"
    assert by_id[row2["id"]]["kind"] == "media" and by_id[row2["id"]]["data"]["sha256"] == media[0]["sha256"]


def test_a_record_is_marked_sent_only_by_id(ctx):
    for i in range(3):
        feedback.submit(ctx, {"category": "water", "body": str(i)})
    outbox.scan(ctx)
    ids = [r["id"] for r in outbox.pending(ctx.db, 10)]
    outbox.mark(ctx.db, [ids[1], "not-in-the-outbox"], "sent")
    assert [r["id"] for r in outbox.pending(ctx.db, 10)] == [ids[0], ids[2]]
    assert outbox.counts(ctx.db) == {"pending": 2, "sent": 1, "conflict": 0, "refused": 0}


def test_the_daily_budget_is_counted_per_day(ctx):
    assert sync_state.add_usage(ctx.db, "2026-03-01", 1000) == 1000
    assert sync_state.add_usage(ctx.db, "2026-03-01", 500) == 1500
    assert sync_state.usage(ctx.db, "2026-03-01") == 1500
    assert sync_state.usage(ctx.db, "2026-03-02") == 0
    assert sync_state.add_usage(ctx.db, "2026-03-02", 10) == 10


def test_the_budget_stops_a_cycle(central, make_hub):
    token = central.add_hub("kampong")
    hub = make_hub(central.url, token, sync_daily_budget_mb=0.004, sync_batch_size=100)
    for i in range(400):
        feedback.submit(hub.ctx, {"category": "water", "body": f"a longer message number {i} " * 3})
    out = run_cycle(hub.ctx)
    assert out.online and "budget" in (out.error or "")
    assert 0 < outbox.counts(hub.ctx.db)["pending"]
    used = sync_state.usage(hub.ctx.db, hub.ctx.clock.now().date().isoformat())
    assert used <= 0.004 * 1024 * 1024
    assert "budget" in sync_state.get_state(hub.ctx.db, "last_error")


def test_the_bandwidth_cap_paces_the_bytes():
    throttle = Throttle(800)  # 100 kB/s
    started = time.monotonic()
    for _ in range(5):
        throttle.take(20_000)
    elapsed = time.monotonic() - started
    assert 0.75 <= elapsed < 2.0
    uncapped = Throttle(0)
    started = time.monotonic()
    uncapped.take(10**9)
    assert time.monotonic() - started < 0.1


@pytest.mark.parametrize("url, insecure, ok", [
    ("https://central.example.org", False, True),
    ("http://127.0.0.1:8080", False, True),
    ("http://localhost:8080", False, True),
    ("http://[::1]:8080", False, True),
    ("http://192.0.2.10", False, False),
    ("http://central.example.org", False, False),
    ("http://192.0.2.10", True, True),
])
def test_https_is_required_except_on_loopback(url, insecure, ok):
    if ok:
        assert check_url(url, insecure)
    else:
        with pytest.raises(SyncError, match="https"):
            check_url(url, insecure)


def test_an_insecure_url_is_refused_before_anything_is_sent(make_settings):
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS

    ctx = open_context(make_settings(central_url="http://192.0.2.10", central_token="t" * 20), MIGRATIONS)
    out = run_cycle(ctx)
    assert not out.online and "https" in out.message
    ctx.close()


def test_retries_back_off(make_settings):
    s = make_settings(sync_interval_seconds=300, sync_max_backoff_seconds=3600)
    assert next_delay(s, 0) == 300
    waits = [next_delay(s, n, rand=lambda: 0.5) for n in range(1, 10)]
    assert waits[:4] == [30, 60, 120, 240]
    assert waits[-1] == 3600 and waits == sorted(waits)


def test_the_daemon_idles_quietly_without_a_central_server(ctx):
    from hub.run import DAEMONS, build_daemons

    assert DAEMONS["sync"] == "hub.sync.daemon:Sync"
    (daemon,) = build_daemons(ctx.settings, {"sync"})
    assert isinstance(daemon, Sync)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    assert daemon.ready.wait(10)
    time.sleep(1.5)
    daemon.quit()
    thread.join(5)
    assert not thread.is_alive()
    assert sync_state.all_state(ctx.db) == {} and outbox.counts(ctx.db)["pending"] == 0


def test_the_daemon_syncs_and_stops_promptly(central, make_hub):
    token = central.add_hub("kampong")
    hub = make_hub(central.url, token)
    for i in range(30):
        feedback.submit(hub.ctx, {"category": "water", "body": str(i)})
    daemon = Sync(hub.ctx.settings)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and outbox.counts(hub.ctx.db)["sent"] < 31:
        time.sleep(0.2)
    daemon.quit()
    thread.join(10)
    assert not thread.is_alive()
    assert outbox.counts(hub.ctx.db)["sent"] == 31  # 30 feedback and one health report
    assert daemon.last.ok and daemon.failures == 0


def test_transcripts_leave_when_done_or_corrected_and_only_with_consent(ctx, tmp_path):
    from hub.voice import transcripts
    from tests.phone_audio import tone_wav

    def voice(body, consent, freq):
        row = ctx.media.prepare_audio(tone_wav(tmp_path / f"{freq}.wav", seconds=0.5, freq=freq))
        return feedback.submit(ctx, {"category": "water", "body": body, "consent_share": consent}, row)["id"]

    shared, private = voice("shared", "1", 400), voice("private", "0", 500)
    transcripts.enqueue_new(ctx)
    outbox.scan(ctx)
    assert records(ctx, "transcript") == [], "a pending transcript stays on the hub"
    by_feedback = {t["feedback_id"]: t["id"] for t in ctx.db.query("select id, feedback_id from transcripts")}
    transcripts.correct(ctx, by_feedback[shared], "អណ្តូងខូច", "clerk1")
    transcripts.correct(ctx, by_feedback[private], "ផ្ទាល់ខ្លួន", "clerk1")
    outbox.scan(ctx)
    (sent,) = records(ctx, "transcript")
    assert sent["id"] == by_feedback[shared] and sent["data"]["corrected_text"] == "អណ្តូងខូច"
    assert "verified_by" not in sent["data"] and "attempts" not in sent["data"]
    transcripts.correct(ctx, by_feedback[shared], "អណ្តូងទឹកខូច", "clerk1")
    outbox.scan(ctx)
    (rev,) = records(ctx, "transcript.revision")
    assert rev["data"]["of"] == sent["id"] and rev["data"]["corrected_text"] == "អណ្តូងទឹកខូច"
    assert all("ផ្ទាល់ខ្លួន" not in r["body"] for r in ctx.db.query("select body from sync_outbox"))


def test_proof_of_play_rows_travel_as_play_records(ctx, tmp_path):
    from datetime import UTC, datetime

    from hub.announce import store
    from tests.phone_audio import tone_wav

    row = ctx.media.prepare_audio(tone_wav(tmp_path / "a.wav", seconds=0.5))
    store.create(ctx, {"audio_id": row["id"], "title": "Vaccination day"}, media_rows=[row])
    (occurrence,) = [r["id"] for r in ctx.db.query("select id from occurrences")]
    now = datetime.now(UTC)
    store.finish(ctx.db, ctx.hub_id, occurrence, "played", now, True, started=now, ended=now)
    outbox.scan(ctx)
    (play,) = records(ctx, "play")
    assert play["data"]["title"] == "Vaccination day" and play["data"]["outcome"] == "played"
    assert outbox.scan(ctx) == 0


def _scan_steps(ctx) -> int:
    """SQLite virtual-machine steps (in thousands) one scan takes: what it reads, whatever the clock says."""
    steps = [0]

    def count():
        steps[0] += 1
        return 0

    ctx.db.conn.set_progress_handler(count, 1000)
    try:
        outbox.scan(ctx)
    finally:
        ctx.db.conn.set_progress_handler(None, 0)
    return steps[0]


def _many_feedback(ctx, n: int) -> None:
    import uuid

    hub_id = ctx.hub_id
    with transaction(ctx.db) as conn:  # as a script or a restore would write them: the triggers log them all the same
        conn.executemany(
            "insert into feedback (id, hub_id, receipt, source, category, body, status, created_at, updated_at)"
            " values (?, ?, ?, 'portal', 'water', ?, 'new', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')",
            [(str(uuid.uuid4()), hub_id, f"{i:06d}", f"Message {i}") for i in range(n)])


def test_a_scan_with_nothing_new_costs_the_same_for_10_rows_as_for_3000(make_settings, tmp_path):
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS

    steps = {}
    for n in (10, 3000):
        ctx = open_context(make_settings(data_dir=tmp_path / f"grow{n}"), MIGRATIONS)
        _many_feedback(ctx, n)
        assert outbox.scan(ctx) == n
        assert ctx.db.conn.execute("select count(*) from sync_changes").fetchone()[0] == 0
        steps[n] = _scan_steps(ctx)
        # ... and a change among many is found and sent.
        one = ctx.db.conn.execute("select id from feedback limit 1").fetchone()[0]
        feedback.set_status(ctx, one, "closed")
        assert outbox.scan(ctx) == 1
        ctx.close()
    assert steps[3000] <= steps[10] + 2, steps


def test_a_transcript_leaves_once_its_sender_agrees_later(ctx, tmp_path):
    from hub.voice import transcripts
    from tests.phone_audio import tone_wav

    row = ctx.media.prepare_audio(tone_wav(tmp_path / "a.wav", seconds=0.5))
    fid = feedback.submit(ctx, {"category": "water", "body": "later", "consent_share": "0"}, row)["id"]
    transcripts.enqueue_new(ctx)
    (tid,) = [t["id"] for t in ctx.db.query("select id from transcripts")]
    transcripts.correct(ctx, tid, "អណ្តូងខូច", "clerk1")
    outbox.scan(ctx)
    assert records(ctx, "transcript") == []
    with transaction(ctx.db) as conn:
        conn.execute("update feedback set consent_share = 1 where id = ?", (fid,))
    outbox.scan(ctx)
    (sent,) = records(ctx, "transcript")
    assert sent["id"] == tid and sent["data"]["corrected_text"] == "អណ្តូងខូច"
    assert outbox.unscanned(ctx.db) == 0


def test_rows_written_before_the_change_log_are_looked_at_once_and_only_unsent_ones_travel(make_settings, tmp_path):
    from hub.core.context import open_context
    from hub.core.db import migrate
    from hub.migrations import MIGRATIONS

    before = [m for m in MIGRATIONS if m[0] != "0013_sync_changes"]
    ctx = open_context(make_settings(data_dir=tmp_path / "old"), before)
    _many_feedback(ctx, 3)
    sent, waiting = [r["id"] for r in ctx.db.query("select * from feedback order by receipt")][:2]
    row = next(ctx.db.query("select * from feedback where id = ?", [sent]))
    with transaction(ctx.db) as conn:  # what the scan before 0013 recorded of a row it had sent
        conn.execute("insert into sync_seen (source, source_id, marker, fingerprint) values ('feedback', ?, ?, ?)",
                     (sent, row["updated_at"], outbox.fingerprint(feedback.outgoing(row))))
    assert migrate(ctx.db, MIGRATIONS) == ["0013_sync_changes"]
    assert outbox.unscanned(ctx.db) == 2
    assert outbox.scan(ctx) == 2
    assert sent not in {r["id"] for r in records(ctx)} and waiting in {r["id"] for r in records(ctx)}
    assert outbox.scan(ctx) == 0
    ctx.close()
