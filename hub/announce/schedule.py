"""When announcements play: RFC 5545 recurrence rules, quiet hours and the grace window.

Everything here is pure: times come in as arguments (from :class:`hub.core.clock.Clock`
in the daemon, from a fixed clock in tests), so nothing reads the system time.

A clerk's choice becomes two RFC 5545 lines, stored as they are::

    DTSTART;TZID=Asia/Phnom_Penh:20261102T070000
    RRULE:FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20261130T165959Z

"Once" is ``FREQ=DAILY;COUNT=1``. "Monthly on the 31st" plays on the last day
of shorter months (``BYMONTHDAY=28,29,30,31;BYSETPOS=-1``), because a clerk
who picks the 31st means "at the end of the month", not "skip February".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

KINDS = ("once", "daily", "weekdays", "weekly", "monthly")
#: RFC 5545 day codes, Monday first (Python's weekday() order).
DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class ScheduleError(ValueError):
    """A schedule a clerk cannot have meant; ``code`` says why, for a message in their language."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass
class Recurrence:
    """What a clerk chose in the form: how often, from when, at what time, until when."""

    kind: str
    start: date
    at: time
    weekdays: tuple[int, ...] = ()
    until: date | None = None
    extra: dict = field(default_factory=dict)

    def to_rrule(self, tz: str) -> str:
        """The RFC 5545 DTSTART and RRULE lines for this choice."""
        if self.kind not in KINDS:
            raise ScheduleError("bad_kind")
        if self.until is not None and self.until < self.start:
            raise ScheduleError("ends_before_start")
        parts: list[str]
        if self.kind == "once":
            parts = ["FREQ=DAILY", "COUNT=1"]
        elif self.kind == "daily":
            parts = ["FREQ=DAILY"]
        elif self.kind == "weekdays":
            if not self.weekdays:
                raise ScheduleError("no_weekdays")
            days = ",".join(DAY_CODES[d] for d in sorted(set(self.weekdays)))
            parts = ["FREQ=WEEKLY", f"BYDAY={days}"]
        elif self.kind == "weekly":
            parts = ["FREQ=WEEKLY", f"BYDAY={DAY_CODES[self.start.weekday()]}"]
        else:
            day = self.start.day
            if day <= 28:
                parts = ["FREQ=MONTHLY", f"BYMONTHDAY={day}"]
            else:
                days = ",".join(str(d) for d in range(28, day + 1))
                parts = ["FREQ=MONTHLY", f"BYMONTHDAY={days}", "BYSETPOS=-1"]
        if self.until is not None and self.kind != "once":
            # RFC 5545: with a TZID start, UNTIL must be UTC. The last second of
            # the end date, local time, so "until the 30th" includes the 30th.
            end_local = datetime.combine(self.until, time(23, 59, 59), ZoneInfo(tz))
            parts.append("UNTIL=" + end_local.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
        start = datetime.combine(self.start, self.at).strftime("%Y%m%dT%H%M%S")
        return f"DTSTART;TZID={tz}:{start}\nRRULE:{';'.join(parts)}"


def parse(text: str) -> Recurrence:
    """Read back the lines :meth:`Recurrence.to_rrule` wrote, for the console's words."""
    start_line, _, rule_line = text.partition("\n")
    stamp = start_line.rsplit(":", 1)[1]
    local = datetime.strptime(stamp, "%Y%m%dT%H%M%S")
    props = dict(p.split("=", 1) for p in rule_line.removeprefix("RRULE:").split(";"))
    until = None
    if "UNTIL" in props:
        tzname = "UTC"
        if "TZID=" in start_line:
            tzname = start_line.split("TZID=", 1)[1].split(":", 1)[0]
        u = datetime.strptime(props["UNTIL"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        until = u.astimezone(ZoneInfo(tzname)).date()
    freq = props.get("FREQ")
    if props.get("COUNT") == "1":
        kind = "once"
    elif freq == "DAILY":
        kind = "daily"
    elif freq == "MONTHLY":
        kind = "monthly"
    else:
        days = props.get("BYDAY", "").split(",")
        kind = "weekly" if days == [DAY_CODES[local.weekday()]] else "weekdays"
    codes = props.get("BYDAY", "").split(",")
    weekdays = tuple(DAY_CODES.index(d) for d in codes if d in DAY_CODES)
    return Recurrence(kind, local.date(), local.time(), weekdays, until)


def rule(text: str) -> rrule:
    """The dateutil rule for stored RRULE text (aware datetimes in the schedule's zone)."""
    return rrulestr(text)


def between(text: str, after: datetime, until: datetime) -> list[datetime]:
    """Nominal play times t with after < t <= until, as UTC datetimes."""
    return [d.astimezone(UTC) for d in rule(text).between(after, until, inc=True) if d > after]


def next_after(text: str, moment: datetime) -> datetime | None:
    """The first nominal play time strictly after *moment*, in UTC, or None when the rule ends."""
    nxt = rule(text).after(moment, inc=False)
    return nxt.astimezone(UTC) if nxt else None


def _clock_time(text: str) -> time:
    hh, mm = text.split(":")
    return time(int(hh), int(mm))


@dataclass(frozen=True)
class QuietHours:
    """The night, when routine announcements wait. Start and end are local times of day."""

    start: time
    end: time
    tz: str

    @classmethod
    def from_settings(cls, settings) -> QuietHours:
        return cls(_clock_time(settings.quiet_hours_start), _clock_time(settings.quiet_hours_end),
                   settings.timezone)

    def contains(self, moment: datetime) -> bool:
        t = moment.astimezone(ZoneInfo(self.tz)).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def end_after(self, moment: datetime) -> datetime:
        """When the quiet period that contains *moment* ends (UTC)."""
        zone = ZoneInfo(self.tz)
        local = moment.astimezone(zone)
        end = datetime.combine(local.date(), self.end, zone)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(UTC)


def play_after(due: datetime, urgent: bool, quiet: QuietHours) -> datetime:
    """When an occurrence nominally due at *due* may start: routine ones wait out the night."""
    if urgent or not quiet.contains(due):
        return due
    return quiet.end_after(due)


def too_late(start: datetime, now: datetime, grace_minutes: float) -> bool:
    """True when an occurrence that could start at *start* is past its grace window at *now*."""
    return (now - start) > timedelta(minutes=grace_minutes)


def week_start(day: date) -> date:
    """The Monday of *day*'s week."""
    return day - timedelta(days=day.weekday())


@dataclass
class Slot:
    """One entry in the week view."""

    announcement: dict
    due: datetime
    starts: datetime
    state: str
    deferred: bool = False
    detail: str = ""


def week(announcements: list[dict], occurrences: list[dict], first_day: date, quiet: QuietHours,
         now: datetime) -> list[tuple[date, list[Slot]]]:
    """Seven days from *first_day*: what played, was missed, or will play, in start order.

    Materialised occurrences (the store's rows) show what happened; each
    active announcement's rule fills in what is still to come after the
    point up to which its occurrences were made (``scheduled_until``).
    """
    zone = ZoneInfo(quiet.tz)
    lo = datetime.combine(first_day, time(0), zone).astimezone(UTC)
    hi = lo + timedelta(days=7)
    by_id = {a["id"]: a for a in announcements}
    slots: list[Slot] = []
    for o in occurrences:
        a = by_id.get(o["announcement_id"])
        if a is None:
            continue
        due = datetime.fromisoformat(o["due_at"])
        starts = datetime.fromisoformat(o["play_after"])
        if lo <= starts < hi:
            slots.append(Slot(a, due, starts, o["state"], starts != due, o.get("detail") or ""))
    for a in announcements:
        if not a.get("active") or not a.get("rrule"):
            continue
        made = datetime.fromisoformat(a["scheduled_until"])
        # Rules are searched a day wider than the week: quiet hours can push a
        # late-evening item into the next morning.
        for due in between(a["rrule"], max(made, lo - timedelta(days=1)), hi):
            starts = play_after(due, bool(a["urgent"]), quiet)
            if lo <= starts < hi:
                state = "due" if starts >= now else "waiting"
                slots.append(Slot(a, due, starts, state, starts != due))
    slots.sort(key=lambda s: (s.starts, s.announcement.get("title") or ""))
    days = []
    for i in range(7):
        d = first_day + timedelta(days=i)
        days.append((d, [s for s in slots if s.starts.astimezone(zone).date() == d]))
    return days
