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
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from hub.core import pagefiles
from hub.core.db import transaction, utcnow

log = logging.getLogger(__name__)

SOURCES = ("ntp", "central", "clerk", "rtc")
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
#: Differences smaller than this are not worth stepping the clock for.
STEP_THRESHOLD_SECONDS = 2.0


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
    ):
        self.db = db
        self._time = time_source
        self._ntp_check = ntp_check
        self._boot_id = boot_id
        self._set_system_clock = set_system_clock

    def _row(self) -> dict | None:
        rows = list(self.db.query("select * from clock_trust where id = 1"))
        if rows and rows[0]["boot_id"] == self._boot_id():
            return rows[0]
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
        if self._ntp_check():
            return "ntp"
        return None

    def trusted(self) -> bool:
        return self.trust() is not None

    def set_trusted_time(self, source: str, true_time: float) -> float:
        """Record that *source* says the time is *true_time*; return the correction made."""
        if source not in SOURCES:
            raise ValueError(f"unknown clock source {source!r}")
        offset = true_time - self._time()
        if abs(offset) < STEP_THRESHOLD_SECONDS:
            offset = 0.0
        elif self._set_system_clock:
            try:
                time.clock_settime(time.CLOCK_REALTIME, true_time)
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
