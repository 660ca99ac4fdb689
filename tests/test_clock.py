"""Clock trust: untrusted after boot until NTP, the central server, a clerk or an RTC vouches."""

from __future__ import annotations

import pytest

from hub.core.clock import Clock


class FakeTime:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_untrusted_until_a_source_vouches_then_offset_applies(ctx):
    boot = ["boot-1"]
    t = FakeTime(1_000_000.0)  # a Pi that booted into 1970
    clock = Clock(ctx.db, time_source=t, ntp_check=lambda: False, boot_id=lambda: boot[0])
    assert clock.trust() is None and not clock.trusted()
    correction = clock.set_trusted_time("clerk", 1_800_000_000.0)
    assert correction == pytest.approx(1_800_000_000.0 - 1_000_000.0)
    assert clock.trust() == "clerk"
    t.t += 60
    assert clock.timestamp() == pytest.approx(1_800_000_060.0)
    boot[0] = "boot-2"  # power cut: trust and correction were for the old boot
    assert clock.trust() is None and clock.offset() == 0.0


def test_ntp_counts_as_trusted_without_a_record(ctx):
    clock = Clock(ctx.db, ntp_check=lambda: True)
    assert clock.trust() == "ntp"


def test_small_differences_are_not_corrections(ctx):
    t = FakeTime(1_800_000_000.0)
    clock = Clock(ctx.db, time_source=t, ntp_check=lambda: False)
    assert clock.set_trusted_time("central", 1_800_000_001.0) == 0.0
    assert clock.trust() == "central"


def test_unknown_source_is_refused(ctx):
    with pytest.raises(ValueError):
        Clock(ctx.db).set_trusted_time("a rumour", 0)
