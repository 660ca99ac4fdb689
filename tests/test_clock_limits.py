"""No clock source may set a time outside the window, and a bad stored correction never breaks Clock.now()."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from hub import accounts
from hub.core import clock as clockmod
from hub.core.clock import Clock, ClockRefused
from hub.core.db import transaction
from tests.conftest import count_rows, csrf_from

NOW = 1_800_000_000.0  # 2027-01-15, inside the window

#: What the clock form's device_epoch_ms field must refuse: each is read by Python's int() or float().
BAD_MILLIS = [
    "253402300800000",  # year 10000
    "1e20", "1E15", "-1800000000000", "+1800000000000", "1800000000000.5",
    "١٨٠٠٠٠٠٠٠٠٠٠٠",  # Arabic-Indic digits
    "１８００００００００００００",  # full-width digits
    "១៨០០០០០០០០០០០",  # Khmer digits
    "1_800_000_000_000", " 18000 00000000", "0", "86400000", "99999999999999999999", "nan", "inf",
]
BAD_LOCAL = ["10000-01-01T00:00", "1970-01-01T00:00", "２０２７-01-15T07:00", "2027-01-15T07:00+05:00",
             "2027-02-30T07:00", "2027-01-15", "now", ""]


@pytest.fixture
def steps():
    return []


@pytest.fixture
def pi_clock(ctx, steps):
    """A clock allowed to step the system clock, whose steps are recorded instead of made."""
    return Clock(ctx.db, time_source=lambda: NOW, ntp_check=lambda: False, set_system_clock=True,
                 set_time=steps.append)


@pytest.mark.parametrize("value", [10_000 * 365.25 * 86400, 1e20, -1.0, 0, float("nan"), float("inf"), True,
                                   "1800000000", 253402300800.0])
@pytest.mark.parametrize("source", ["clerk", "central"])
def test_every_source_refuses_times_outside_the_window(pi_clock, steps, ctx, value, source):
    with pytest.raises(ClockRefused):
        pi_clock.set_trusted_time(source, value)
    assert steps == []  # never reached the system clock
    assert count_rows(ctx.db, "clock_trust") == 0
    assert not pi_clock.trusted()


def test_a_sane_time_still_steps_the_system_clock(pi_clock, steps):
    pi_clock.set_trusted_time("central", NOW + 3600)
    assert steps == [NOW + 3600]
    assert pi_clock.trust() == "central"


@pytest.mark.parametrize("millis", BAD_MILLIS)
def test_device_millis_must_be_ascii_digits_in_the_window(millis):
    with pytest.raises(ClockRefused):
        clockmod.parse_device_time(millis, "", "Asia/Phnom_Penh")


@pytest.mark.parametrize("local", BAD_LOCAL)
def test_typed_local_time_must_be_ascii_digits_in_the_window(local):
    with pytest.raises(ClockRefused):
        clockmod.parse_device_time("", local, "Asia/Phnom_Penh")


def test_good_device_times_are_read():
    assert clockmod.parse_device_time("1800000000000", "", "Asia/Phnom_Penh") == 1_800_000_000
    expected = datetime(2027, 1, 15, 0, 0, tzinfo=UTC).timestamp()  # 07:00 in Phnom Penh
    assert clockmod.parse_device_time("", "2027-01-15T07:00", "Asia/Phnom_Penh") == expected


@pytest.mark.parametrize("offset", [1e300, -1e300, 8e12, -1.8e9, float("inf")])
def test_a_stored_offset_out_of_range_never_breaks_now(ctx, offset):
    c = Clock(ctx.db, time_source=lambda: NOW, ntp_check=lambda: False)
    with transaction(ctx.db) as conn:
        conn.execute("insert into clock_trust (id, source, boot_id, set_at, offset_seconds)"
                     " values (1, 'clerk', ?, '2027-01-01T00:00:00+00:00', ?)", (clockmod.current_boot_id(), offset))
    assert c.now().timestamp() == NOW  # ignored ...
    assert not c.trusted()  # ... not trusted ...
    assert "out of range" in c.problem()  # ... and reported


def clerk_client(make_settings, monkeypatch):
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS
    from hub.web import create_app

    s = make_settings(set_system_clock=True)
    c = open_context(s, MIGRATIONS)
    steps: list[float] = []
    monkeypatch.setattr(clockmod, "step_system_clock", steps.append)  # recorded, never made
    app = create_app(s, context=c)
    client = app.test_client()
    accounts.add_user(c.db, "clerk1", "correct horse", "clerk")
    token = csrf_from(client, "/clerk/login")
    client.post("/clerk/login", data={"username": "clerk1", "password": "correct horse", "csrf_token": token})
    return client, c, steps


@pytest.mark.parametrize("millis", BAD_MILLIS)
def test_the_clock_form_refuses_with_a_message_and_every_page_still_works(make_settings, monkeypatch, millis):
    client, c, steps = clerk_client(make_settings, monkeypatch)
    try:
        token = csrf_from(client, "/clerk/")
        r = client.post("/clerk/clock?lang=en", data={"csrf_token": token, "device_epoch_ms": millis,
                                                       "local_time": "10000-01-01T00:00"})
        assert r.status_code == 400, r.status_code
        assert "digits 0-9" in r.get_data(as_text=True) or "cannot be right" in r.get_data(as_text=True)
        km = client.post("/clerk/clock?lang=km", data={"csrf_token": token, "device_epoch_ms": millis})
        assert km.status_code == 400 and "ម៉ោង" in km.get_data(as_text=True)
        assert steps == [] and count_rows(c.db, "clock_trust") == 0
        for path in ("/clerk/", "/", "/feedback", "/clerk/announcements/"):
            assert client.get(path).status_code == 200, path
    finally:
        c.close()


def test_the_clock_form_still_takes_a_good_time(make_settings, monkeypatch):
    client, c, steps = clerk_client(make_settings, monkeypatch)
    try:
        token = csrf_from(client, "/clerk/")
        good = int((time.time() + 86400) * 1000)
        r = client.post("/clerk/clock", data={"csrf_token": token, "device_epoch_ms": str(good)})
        assert r.status_code == 303
        assert len(steps) == 1 and abs(steps[0] - good / 1000) < 1
    finally:
        c.close()
