"""The schedule logic with fixed times: RRULEs, month and leap-year ends, quiet hours, grace."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from hub.announce import schedule
from hub.announce.schedule import QuietHours, Recurrence, ScheduleError

TZ = "Asia/Phnom_Penh"
PP = ZoneInfo(TZ)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=PP)


def all_times(text: str) -> list[datetime]:
    return [d.astimezone(PP).replace(tzinfo=None) for d in rrulestr(text)]


def test_monday_and_thursday_until_the_end_of_the_month_is_rfc5545():
    r = Recurrence("weekdays", date(2026, 11, 2), time(7, 0), (3, 0), until=date(2026, 11, 30))
    text = r.to_rrule(TZ)
    assert text == ("DTSTART;TZID=Asia/Phnom_Penh:20261102T070000\n"
                    "RRULE:FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20261130T165959Z")
    days = [d.day for d in all_times(text)]
    assert days == [2, 5, 9, 12, 16, 19, 23, 26, 30]
    assert {d.hour for d in all_times(text)} == {7}
    # No DST in Phnom Penh: 07:00 local is always 00:00 UTC.
    assert {d.astimezone(UTC).hour for d in rrulestr(text)} == {0}


def test_until_includes_the_whole_last_day():
    r = Recurrence("daily", date(2026, 11, 28), time(23, 30), until=date(2026, 11, 30))
    assert [d.day for d in all_times(r.to_rrule(TZ))] == [28, 29, 30]


def test_monthly_on_the_31st_plays_on_the_last_day_of_shorter_months():
    r = Recurrence("monthly", date(2026, 1, 31), time(8, 0), until=date(2026, 12, 31))
    got = [(d.month, d.day) for d in all_times(r.to_rrule(TZ))]
    assert got == [(1, 31), (2, 28), (3, 31), (4, 30), (5, 31), (6, 30), (7, 31), (8, 31),
                   (9, 30), (10, 31), (11, 30), (12, 31)]


def test_monthly_on_the_30th_and_29th_in_a_leap_year():
    r30 = Recurrence("monthly", date(2028, 1, 30), time(8, 0), until=date(2028, 3, 31))
    assert [(d.month, d.day) for d in all_times(r30.to_rrule(TZ))] == [(1, 30), (2, 29), (3, 30)]
    r29 = Recurrence("monthly", date(2027, 1, 29), time(8, 0), until=date(2027, 3, 31))
    assert [(d.month, d.day) for d in all_times(r29.to_rrule(TZ))] == [(1, 29), (2, 28), (3, 29)]


def test_monthly_on_an_ordinary_date_is_plain_bymonthday():
    text = Recurrence("monthly", date(2026, 11, 15), time(9, 0)).to_rrule(TZ)
    assert text.endswith("RRULE:FREQ=MONTHLY;BYMONTHDAY=15")


def test_daily_runs_over_month_year_and_leap_day_ends():
    r = Recurrence("daily", date(2027, 12, 30), time(6, 0), until=date(2028, 1, 2))
    assert [d.date() for d in all_times(r.to_rrule(TZ))] == [
        date(2027, 12, 30), date(2027, 12, 31), date(2028, 1, 1), date(2028, 1, 2)]
    leap = Recurrence("daily", date(2028, 2, 28), time(6, 0), until=date(2028, 3, 1))
    assert [d.day for d in all_times(leap.to_rrule(TZ))] == [28, 29, 1]


def test_weekly_uses_the_weekday_of_the_first_day():
    text = Recurrence("weekly", date(2026, 11, 25), time(17, 0)).to_rrule(TZ)  # a Wednesday
    assert "BYDAY=WE" in text
    first = list(rrulestr(text)[:3])
    assert [d.weekday() for d in first] == [2, 2, 2]


def test_weekday_rule_skips_days_before_the_first_chosen_weekday():
    # Starts on a Tuesday; the first Monday-or-Thursday is the Thursday after.
    text = Recurrence("weekdays", date(2026, 11, 3), time(7, 0), (0, 3)).to_rrule(TZ)
    assert [d.astimezone(PP).date() for d in rrulestr(text)[:3]] == [
        date(2026, 11, 5), date(2026, 11, 9), date(2026, 11, 12)]


def test_once_is_count_one_and_then_nothing():
    text = Recurrence("once", date(2026, 11, 30), time(7, 0), until=date(2026, 12, 31)).to_rrule(TZ)
    assert text.endswith("RRULE:FREQ=DAILY;COUNT=1")
    moment = local(2026, 11, 30, 7, 0)
    assert schedule.next_after(text, moment - timedelta(seconds=1)) == moment.astimezone(UTC)
    assert schedule.next_after(text, moment) is None


@pytest.mark.parametrize("kind,weekdays", [("once", ()), ("daily", ()), ("weekdays", (1, 4, 6)),
                                           ("weekly", ()), ("monthly", ())])
def test_parse_reads_back_what_was_written(kind, weekdays):
    r = Recurrence(kind, date(2026, 11, 30), time(7, 15), weekdays,
                   None if kind == "once" else date(2027, 2, 28))
    back = schedule.parse(r.to_rrule(TZ))
    assert (back.kind, back.start, back.at, back.until) == (kind, r.start, r.at, r.until)
    if kind == "weekdays":
        assert back.weekdays == weekdays


def test_schedules_a_clerk_cannot_mean_are_refused():
    with pytest.raises(ScheduleError) as e:
        Recurrence("weekdays", date(2026, 11, 2), time(7), ()).to_rrule(TZ)
    assert e.value.code == "no_weekdays"
    with pytest.raises(ScheduleError) as e:
        Recurrence("daily", date(2026, 11, 2), time(7), until=date(2026, 11, 1)).to_rrule(TZ)
    assert e.value.code == "ends_before_start"
    with pytest.raises(ScheduleError):
        Recurrence("hourly", date(2026, 11, 2), time(7)).to_rrule(TZ)


def test_between_is_exclusive_then_inclusive():
    text = Recurrence("daily", date(2026, 11, 1), time(7, 0)).to_rrule(TZ)
    seven = local(2026, 11, 2, 7, 0)
    assert schedule.between(text, seven, seven + timedelta(days=1)) == [
        (seven + timedelta(days=1)).astimezone(UTC)]
    assert schedule.between(text, seven - timedelta(seconds=1), seven) == [seven.astimezone(UTC)]


NIGHT = QuietHours(time(21, 0), time(6, 0), TZ)


@pytest.mark.parametrize("hh,mm,quiet", [(20, 59, False), (21, 0, True), (23, 59, True),
                                         (0, 0, True), (5, 59, True), (6, 0, False),
                                         (12, 0, False)])
def test_quiet_hours_over_midnight(hh, mm, quiet):
    assert NIGHT.contains(local(2026, 11, 30, hh, mm)) is quiet


def test_routine_items_wait_for_the_morning_and_urgent_ones_do_not():
    late = local(2026, 11, 30, 22, 30)
    assert schedule.play_after(late, False, NIGHT) == local(2026, 12, 1, 6, 0)
    early = local(2026, 12, 31, 2, 0)
    assert schedule.play_after(early, False, NIGHT) == local(2026, 12, 31, 6, 0)
    assert schedule.play_after(late, True, NIGHT) == late
    noon = local(2026, 11, 30, 12, 0)
    assert schedule.play_after(noon, False, NIGHT) == noon
    # Over the year end: a New Year's Eve item at 23:00 waits for 06:00 on 1 January.
    assert schedule.play_after(local(2026, 12, 31, 23, 0), False, NIGHT) == local(2027, 1, 1, 6)


def test_quiet_hours_within_a_day_and_none_at_all():
    siesta = QuietHours(time(12, 0), time(14, 0), TZ)
    assert siesta.contains(local(2026, 11, 30, 13, 0))
    assert not siesta.contains(local(2026, 11, 30, 14, 0))
    assert schedule.play_after(local(2026, 11, 30, 12, 30), False, siesta) == local(2026, 11, 30, 14)
    never = QuietHours(time(0, 0), time(0, 0), TZ)
    assert not never.contains(local(2026, 11, 30, 3, 0))


def test_quiet_hours_come_from_the_settings(make_settings):
    q = QuietHours.from_settings(make_settings(quiet_hours_start="22:15", quiet_hours_end="05:30"))
    assert q == QuietHours(time(22, 15), time(5, 30), TZ)


def test_grace_window():
    start = local(2026, 11, 30, 7, 0)
    assert not schedule.too_late(start, start + timedelta(minutes=9, seconds=59), 10)
    assert not schedule.too_late(start, start + timedelta(minutes=10), 10)
    assert schedule.too_late(start, start + timedelta(minutes=10, seconds=1), 10)
    assert not schedule.too_late(start, start - timedelta(hours=1), 10)  # early is never late
    assert schedule.too_late(start, start + timedelta(seconds=1), 0)


def test_week_view_merges_what_happened_with_what_will_come():
    text = Recurrence("weekdays", date(2026, 11, 2), time(7, 0), (0, 3),
                      until=date(2026, 11, 30)).to_rrule(TZ)
    night = Recurrence("daily", date(2026, 11, 2), time(22, 0),
                       until=date(2026, 11, 30)).to_rrule(TZ)
    made_until = local(2026, 11, 24, 12, 0).astimezone(UTC)
    ann = [{"id": "a", "title": "meeting", "rrule": text, "urgent": 0, "active": 1,
            "repeats": 2, "scheduled_until": made_until.isoformat()},
           {"id": "b", "title": "night", "rrule": night, "urgent": 0, "active": 1,
            "repeats": 1, "scheduled_until": made_until.isoformat()}]
    monday = local(2026, 11, 23, 7, 0).astimezone(UTC).isoformat()
    occ = [{"announcement_id": "a", "due_at": monday, "play_after": monday, "state": "missed",
            "detail": "too late: 30 min after its time"}]
    now = made_until
    days = schedule.week(ann, occ, date(2026, 11, 23), NIGHT, now)
    assert [d for d, _ in days] == [date(2026, 11, 23) + timedelta(days=i) for i in range(7)]
    mon = [(s.announcement["id"], s.state) for s in days[0][1]]
    assert mon == [("a", "missed")]  # the row, not the rule, for a time already made
    thu = [(s.announcement["id"], s.state, s.starts.astimezone(PP).time()) for s in days[3][1]]
    assert ("a", "due", time(7, 0)) in thu
    # The 22:00 item is shown at 06:00 the next morning, marked as moved.
    wed = [(s.announcement["id"], s.starts.astimezone(PP).time(), s.deferred) for s in days[2][1]]
    assert ("b", time(6, 0), True) in wed
    assert all(s.announcement["id"] != "a" for s in days[1][1])  # no Tuesday
