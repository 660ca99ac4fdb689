"""The occurrence store with fixed times: making occurrences, the queue order, durable states."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.announce import schedule, store
from hub.announce.schedule import QuietHours, Recurrence
from tests.announce.conftest import add_loud_media, signature

TZ = "Asia/Phnom_Penh"
PP = ZoneInfo(TZ)
DAYTIME = QuietHours(time(0, 0), time(0, 0), TZ)  # no quiet hours
NIGHT = QuietHours(time(21, 0), time(6, 0), TZ)
T0 = datetime(2026, 11, 30, 6, 0, tzinfo=PP)  # a Monday


def make(ctx, kind="daily", at=time(7, 0), start=date(2026, 11, 30), urgent=False, **kw):
    text = Recurrence(kind, start, at, kw.pop("weekdays", ()), kw.pop("until", None)).to_rrule(TZ)
    media = add_loud_media(ctx, signature(1000, 0.05))
    return store.create(ctx, {"audio_id": media, "rrule": text, "urgent": urgent, **kw}, now=T0)


def test_migration_made_the_tables(ctx):
    names = set(ctx.db.table_names())
    assert {"announcements", "occurrences", "play_log"} <= names
    cols = {r[1] for r in ctx.db.conn.execute("pragma table_info(play_log)")}
    assert {"id", "hub_id", "created_at", "outcome", "started_at", "duration_ms"} <= cols


def test_occurrences_are_made_once_up_to_a_moment(ctx):
    aid = make(ctx)
    a = store.get(ctx.db, aid)
    assert a["next_at"] == store.iso(datetime(2026, 11, 30, 7, tzinfo=PP))
    assert store.schedule_due(ctx.db, ctx.hub_id, T0 + timedelta(minutes=59), DAYTIME) == []
    made = store.schedule_due(ctx.db, ctx.hub_id, T0 + timedelta(days=2, hours=1), DAYTIME)
    assert len(made) == 3  # 30 Nov, 1 Dec, 2 Dec at 07:00
    again = store.schedule_due(ctx.db, ctx.hub_id, T0 + timedelta(days=2, hours=1), DAYTIME)
    assert again == []
    dues = [r["due_at"] for r in ctx.db.query("select due_at from occurrences order by due_at")]
    assert dues == [store.iso(datetime(2026, 11, d, 7, tzinfo=PP)) for d in (30,)] + [
        store.iso(datetime(2026, 12, d, 7, tzinfo=PP)) for d in (1, 2)]
    assert store.get(ctx.db, aid)["next_at"] == store.iso(datetime(2026, 12, 3, 7, tzinfo=PP))


def test_nothing_before_the_announcement_was_made(ctx):
    # Created at 06:00 with a rule that started days ago at 05:00: no back-filled "missed".
    make(ctx, start=date(2026, 11, 20), at=time(5, 0))
    made = store.schedule_due(ctx.db, ctx.hub_id, T0 + timedelta(hours=1), DAYTIME)
    assert made == []


def test_quiet_hours_move_routine_items_to_the_morning(ctx):
    make(ctx, at=time(22, 0))
    make(ctx, at=time(22, 0), urgent=True)
    store.schedule_due(ctx.db, ctx.hub_id, T0 + timedelta(hours=17), NIGHT)
    rows = {r["urgent"]: r for r in ctx.db.query("select * from occurrences")}
    assert rows[0]["play_after"] == store.iso(datetime(2026, 12, 1, 6, tzinfo=PP))
    assert rows[1]["play_after"] == rows[1]["due_at"]


def test_queue_order_urgent_then_play_now_then_earliest(ctx):
    routine = make(ctx, at=time(7, 0))
    make(ctx, at=time(7, 1))
    urgent = make(ctx, at=time(7, 2), urgent=True)
    store.schedule_due(ctx.db, ctx.hub_id, T0 + timedelta(hours=2), DAYTIME)
    now = T0 + timedelta(hours=2)
    media = add_loud_media(ctx, signature(2000, 0.05))
    quick = store.create(ctx, {"audio_id": media, "rrule": None}, now=now)
    order = []
    while (o := store.next_ready(ctx.db, now, True)) is not None:
        order.append(o["announcement_id"])
        assert store.mark_playing(ctx.db, o["id"], now)
        store.finish(ctx.db, ctx.hub_id, o["id"], "played", now, True, started=now, ended=now)
    assert order[0] == urgent and order[1] == quick and order[2] == routine
    assert len(order) == 4


def test_while_the_clock_is_untrusted_only_play_now_qualifies(ctx):
    make(ctx, at=time(7, 0))
    store.schedule_due(ctx.db, ctx.hub_id, T0 + timedelta(hours=2), DAYTIME)
    now = T0 + timedelta(hours=2)
    assert store.next_ready(ctx.db, now, scheduled_ok=False) is None
    media = add_loud_media(ctx, signature(2000, 0.05))
    quick = store.create(ctx, {"audio_id": media, "rrule": None}, now=now)
    assert store.next_ready(ctx.db, now, scheduled_ok=False)["announcement_id"] == quick


def test_playing_is_taken_once_and_a_restart_marks_it_missed(ctx):
    make(ctx)
    (oid,) = store.schedule_due(ctx.db, ctx.hub_id, T0 + timedelta(hours=1), DAYTIME)
    now = T0 + timedelta(hours=1)
    assert store.mark_playing(ctx.db, oid, now) is True
    assert store.mark_playing(ctx.db, oid, now) is False  # never twice
    assert store.next_ready(ctx.db, now, True) is None
    assert store.recover(ctx.db, ctx.hub_id, now, True) == 1
    assert store.states(ctx.db) == {"missed": 1}
    (row,) = store.log(ctx.db)
    assert row["outcome"] == "missed" and row["detail"] == "interrupted by a restart"
    assert store.recover(ctx.db, ctx.hub_id, now, True) == 0


def test_finish_writes_proof_of_play_with_duration(ctx):
    make(ctx, repeats=2, title="ប្រជុំ")
    (oid,) = store.schedule_due(ctx.db, ctx.hub_id, T0 + timedelta(hours=1), DAYTIME)
    start = datetime(2026, 11, 30, 7, 0, 0, 250000, tzinfo=PP)
    store.mark_playing(ctx.db, oid, start)
    store.finish(ctx.db, ctx.hub_id, oid, "played", start + timedelta(seconds=12), True,
                 started=start, ended=start + timedelta(seconds=12.5))
    (row,) = store.log(ctx.db)
    assert (row["outcome"], row["duration_ms"], row["repeats"], row["title"]) == (
        "played", 12500, 2, "ប្រជុំ")
    assert row["started_at"] == "2026-11-30T00:00:00.250+00:00"
    assert row["hub_id"] == ctx.hub_id and len(row["id"]) == 36
    csv_text = store.export_csv(ctx.db)
    header, line = csv_text.splitlines()
    assert header.split(",")[:3] == ["id", "created_at", "title"]
    assert "ប្រជុំ" in line and ",played," in line


def test_stop_cancels_what_was_waiting(ctx):
    aid = make(ctx, at=time(22, 0))
    store.schedule_due(ctx.db, ctx.hub_id, T0 + timedelta(hours=17), NIGHT)
    store.stop(ctx, aid, now=T0 + timedelta(hours=17))
    assert store.states(ctx.db) == {"cancelled": 1}
    assert store.get(ctx.db, aid)["active"] == 0
    assert store.schedule_due(ctx.db, ctx.hub_id, T0 + timedelta(days=3), NIGHT) == []
    with pytest.raises(KeyError):
        store.stop(ctx, "nope")


def test_a_once_in_the_past_is_refused(ctx):
    with pytest.raises(schedule.ScheduleError) as e:
        make(ctx, kind="once", at=time(5, 0))
    assert e.value.code == "in_the_past"


def test_repeats_are_bounded(ctx):
    media = add_loud_media(ctx, signature(1000, 0.05))
    with pytest.raises(ValueError):
        store.create(ctx, {"audio_id": media, "rrule": None, "repeats": 6}, now=T0)


def test_times_are_one_text_form_that_sorts_like_time():
    a = datetime(2026, 11, 30, 0, 0, 0, tzinfo=UTC)
    b = a + timedelta(milliseconds=1)
    assert store.iso(a) == "2026-11-30T00:00:00.000+00:00" and store.iso(a) < store.iso(b)


def test_an_announcement_of_a_notice_plays_its_audio_and_takes_its_title(ctx):
    from hub import notices

    media = add_loud_media(ctx, signature(1000, 0.05))
    nid = notices.create(ctx, {"title_en": "Vaccination day", "audio_id": media})
    aid = store.create(ctx, {"notice_id": nid, "rrule": None}, now=T0)
    row = store.get(ctx.db, aid)
    assert (row["audio_id"], row["notice_id"], row["title"]) == (media, nid, "Vaccination day")
    titled = store.get(ctx.db, store.create(ctx, {"notice_id": nid, "title": "Own title"}, now=T0))
    assert titled["title"] == "Own title"


def test_an_announcement_needs_audio_of_its_own_or_of_a_notice(ctx):
    from hub import notices

    silent = notices.create(ctx, {"title_en": "No audio"})
    for fields in ({}, {"notice_id": silent}, {"notice_id": "no-such-notice"}):
        with pytest.raises(schedule.ScheduleError) as e:
            store.create(ctx, {"rrule": None, **fields}, now=T0)
        assert e.value.code == "no_audio"
    assert store.listing(ctx.db) == []


def test_a_schedule_that_has_passed_is_refused_before_anything_is_stored(ctx):
    past = Recurrence("once", date(2026, 11, 1), time(7, 0)).to_rrule(TZ)
    with pytest.raises(schedule.ScheduleError) as e:
        store.refuse_past(past, T0)
    assert e.value.code == "in_the_past"
    store.refuse_past(None, T0)  # play now
