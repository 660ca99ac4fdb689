"""Whether the hub can trust its clock, and the one place that says what time it is.

The Pi has no real-time clock: after a power cut it boots with the time
fake-hwclock saved, which may be hours or days behind. The clock counts as
trusted once, since this boot, one of these has vouched for it:

- NTP (the kernel reports the clock synchronised);
- the central server's authenticated answer (``hub.sync``);
- a clerk confirming their device's time in the console;
- a real-time clock, if one is fitted.

Until then scheduled announcements wait, and new records are flagged.
When a trusted source disagrees with the system clock and the hub may not
set the system clock, the difference is kept as an offset that
:meth:`Clock.now` applies, so every part of the hub agrees on the time.
"""

from __future__ import annotations

import ctypes
import logging
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hub.core import pagefiles
from hub.core.db import transaction, utcnow
from hub.core.errors import HubError
from hub.core.words import N_

log = logging.getLogger(__name__)

SOURCES = ("ntp", "central", "clerk", "rtc")
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
#: Differences smaller than this are not worth stepping the clock for.
STEP_THRESHOLD_SECONDS = 2.0

#: This release of the hub was made in this month; no true time is much older.
BUILT = datetime(2026, 12, 1, tzinfo=UTC)
#: The window of times any source may set: a year before the build, thirty years after it.
EARLIEST = (BUILT - timedelta(days=365)).timestamp()
LATEST = (BUILT + timedelta(days=30 * 365)).timestamp()
#: A clerk's device time: milliseconds since 1970 as ASCII digits, or a local date and time.
_MILLIS = re.compile(r"[0-9]{1,16}")
_LOCAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?")

NOT_UNDERSTOOD = N_("The time was not understood. Please enter the date and time again, in digits 0-9.")
OUT_OF_RANGE = N_("This time cannot be right: it must be between %(earliest)s and %(latest)s.")


class ClockRefused(HubError):
    """A time no clock source may set; ``message`` and ``values`` for the user's language."""

    def __init__(self, message: str, **values):
        self.message, self.values = message, values
        super().__init__(message % values)


def window_text() -> dict[str, str]:
    return {"earliest": datetime.fromtimestamp(EARLIEST, UTC).strftime("%Y-%m-%d"),
            "latest": datetime.fromtimestamp(LATEST, UTC).strftime("%Y-%m-%d")}


def sane_time(value) -> bool:
    """A real number of seconds since 1970 inside the window."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and EARLIEST <= value <= LATEST)


def check_time(value) -> float:
    """*value* as seconds since 1970, or :class:`ClockRefused` if no source may set it."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ClockRefused(NOT_UNDERSTOOD)
    if not sane_time(value):
        raise ClockRefused(OUT_OF_RANGE, **window_text())
    return float(value)


def parse_device_time(millis: str | None, local: str | None, timezone: str) -> float:
    """The time a clerk's device sent: ``device_epoch_ms`` (filled in by the page's script) or the
    typed ``local_time``. Only ASCII digits count: Python's ``int()`` would read Arabic-Indic or
    full-width digits, exponents and signs too."""
    millis, local = (millis or "").strip(), (local or "").strip()
    if millis:
        if not _MILLIS.fullmatch(millis):
            raise ClockRefused(NOT_UNDERSTOOD)
        return check_time(int(millis) / 1000)
    if not _LOCAL.fullmatch(local):
        raise ClockRefused(NOT_UNDERSTOOD)
    try:
        moment = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(timezone))
    except ValueError:
        raise ClockRefused(NOT_UNDERSTOOD) from None
    return check_time(moment.timestamp())


def step_system_clock(true_time: float) -> None:
    time.clock_settime(time.CLOCK_REALTIME, true_time)


def current_boot_id() -> str:
    try:
        return BOOT_ID_PATH.read_text().strip()
    except OSError:
        return "unknown-boot"


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>; only the leading fields are read, the
    # padding covers the rest so the kernel never writes past the buffer.
    _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_byte * 256)]


def kernel_ntp_synchronised() -> bool:
    """True when the kernel says an NTP daemon has disciplined the clock."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library already loaded into Python
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return False
    TIME_ERROR = 5
    return state not in (-1, TIME_ERROR)


class Clock:
    """The hub's time and whether to trust it. Everything that schedules asks here."""

    def __init__(
        self,
        db,
        time_source: Callable[[], float] = time.time,
        ntp_check: Callable[[], bool] = kernel_ntp_synchronised,
        boot_id: Callable[[], str] = current_boot_id,
        set_system_clock: bool = False,
        set_time: Callable[[float], None] | None = None,
    ):
        self.db = db
        self._time = time_source
        self._ntp_check = ntp_check
        self._boot_id = boot_id
        self._set_system_clock = set_system_clock
        self._set_time = set_time
        self._reported: set = set()

    def _row(self) -> dict | None:
        rows = list(self.db.query("select * from clock_trust where id = 1"))
        if rows and rows[0]["boot_id"] == self._boot_id():
            if self._bad_offset(rows[0]["offset_seconds"]):
                return None
            return rows[0]
        return None

    def _bad_offset(self, offset) -> bool:
        """A stored correction that would take the time out of the window is ignored, and reported."""
        try:
            bad = not sane_time(self._time() + float(offset))
        except (TypeError, ValueError, OverflowError):
            bad = True
        if bad and repr(offset) not in self._reported:
            self._reported.add(repr(offset))
            log.warning("ignoring a stored clock correction out of range (%r s); the clock is untrusted", offset)
        return bad

    def problem(self) -> str | None:
        """What is wrong with the stored correction or the system clock, for `hub doctor`; None if nothing."""
        rows = list(self.db.query("select offset_seconds from clock_trust where id = 1"))
        if rows and self._bad_offset(rows[0]["offset_seconds"]):
            return f"a stored correction of {rows[0]['offset_seconds']!r} s is out of range and ignored"
        if not sane_time(self._time()):
            return "the system clock is outside the years this hub can be in"
        return None

    def offset(self) -> float:
        row = self._row()
        return float(row["offset_seconds"]) if row else 0.0

    def timestamp(self) -> float:
        """Seconds since the epoch, corrected by a trusted source if one spoke."""
        return self._time() + self.offset()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def trust(self) -> str | None:
        """The source that vouches for the clock since this boot, or None."""
        row = self._row()
        if row:
            return row["source"]
        if self._ntp_check() and sane_time(self._time()):
            return "ntp"
        return None

    def trusted(self) -> bool:
        return self.trust() is not None

    def set_trusted_time(self, source: str, true_time: float) -> float:
        """Record that *source* says the time is *true_time*; return the correction made.

        A time outside the window is refused with :class:`ClockRefused` before
        anything is stored or the system clock is touched.
        """
        if source not in SOURCES:
            raise ValueError(f"unknown clock source {source!r}")
        true_time = check_time(true_time)
        offset = true_time - self._time()
        if abs(offset) < STEP_THRESHOLD_SECONDS:
            offset = 0.0
        elif self._set_system_clock:
            try:
                (self._set_time or step_system_clock)(true_time)
                offset = 0.0
            except (PermissionError, OSError) as e:
                log.warning("cannot set the system clock (%s); keeping an offset", e)
        with transaction(self.db) as conn:
            conn.execute(
                "insert into clock_trust (id, source, boot_id, set_at, offset_seconds)"
                " values (1, ?, ?, ?, ?) on conflict (id) do update set"
                " source = excluded.source, boot_id = excluded.boot_id,"
                " set_at = excluded.set_at, offset_seconds = excluded.offset_seconds",
                (source, self._boot_id(), utcnow(), offset),
            )
        pagefiles.refresh_beside(self.db.conn)  # the cached pages' "today" follows the clock
        log.info("clock trusted from %s (correction %+.1f s)", source, offset)
        return offset
