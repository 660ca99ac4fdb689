"""The record button and LED through gpiozero's MockFactory; software debounce; an idle recorder."""

from __future__ import annotations

import threading
import time

import pytest

from hub.voice.devices import Debouncer, KioskLed, RecordButton
from hub.voice.recorder_daemon import Recorder


class StepClock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_debouncer_merges_presses_inside_the_window():
    clock = StepClock()
    d = Debouncer(50, clock)
    assert d.accept()
    clock.t += 0.010
    assert not d.accept()  # contact bounce 10 ms later
    clock.t += 0.030
    assert not d.accept()  # still within 50 ms of the accepted press
    clock.t += 0.011
    assert d.accept()  # 51 ms after the first: a new press
    clock.t += 0.049
    assert not d.accept()
    clock.t += 0.001
    assert d.accept()


def test_zero_debounce_accepts_everything():
    clock = StepClock()
    d = Debouncer(0, clock)
    assert all(d.accept() for _ in range(5))


def test_button_presses_through_mock_pins_are_debounced(mock_pins):
    clock = StepClock()
    presses = []
    with RecordButton("GPIO27", lambda: presses.append(clock.t), debounce_ms=50, clock=clock) as button:
        pin = mock_pins.pin(27)
        # A bouncy press: the contact closes, opens and closes again within 5 ms.
        for dt in (0.0, 0.002, 0.003):
            clock.t += dt
            pin.drive_low()
            pin.drive_high()
        assert presses == [100.0]
        clock.t += 0.2
        pin.drive_low()
        pin.drive_high()
        assert len(presses) == 2 and button.presses == 2
        pin.drive_low()
        assert button.is_pressed
        pin.drive_high()
        assert not button.is_pressed
    assert len(presses) == 2  # the third edge fell inside the window


def test_button_is_active_low_with_pull_up(mock_pins):
    presses = []
    with RecordButton("GPIO5", lambda: presses.append(1), debounce_ms=0):
        pin = mock_pins.pin(5)
        assert pin.state == 1  # pulled up while nobody presses
        pin.drive_high()
        assert presses == []
        pin.drive_low()
        assert presses == [1]


def test_close_is_idempotent_and_frees_the_pins(mock_pins):
    button = RecordButton("GPIO27", lambda: None)
    led = KioskLed("GPIO22")
    for _ in range(2):
        button.close()
        led.close()
    # Closed devices release their pins: the same pins can be claimed again.
    with RecordButton("GPIO27", lambda: None), KioskLed("GPIO22") as again:
        again.set("recording")
        assert again.is_lit


def test_led_states(mock_pins):
    with KioskLed("GPIO22") as led:
        pin = mock_pins.pin(22)
        led.set("recording")
        assert led.is_lit and pin.state == 1
        led.set("off")
        assert not led.is_lit
        led.set("refused")
        time.sleep(0.4)
        assert len(pin.states) >= 5  # rapid flashing
        led.set("off")
        with pytest.raises(ValueError):
            led.set("disco")
    with KioskLed(None) as none:  # no LED wired: states are kept, nothing is driven
        none.set("busy")
        assert none.state == "busy" and not none.is_lit


def test_recorder_idles_without_a_button(make_settings, mock_pins):
    settings = make_settings(button_pin="")
    daemon = Recorder(settings)
    t = threading.Thread(target=daemon.run)
    t.start()
    assert daemon.ready.wait(5)
    time.sleep(0.2)
    assert daemon.enabled is False
    assert daemon.kiosk is None and daemon.sound is None and daemon.button is None
    assert mock_pins.pins == {}  # no GPIO touched
    daemon.quit()
    t.join(5)
    assert not t.is_alive()


def test_hub_run_starts_and_stops_both_voice_daemons(make_settings, ctx):
    from hub.core.daemon import run_together
    from hub.run import DAEMONS, build_daemons

    assert DAEMONS["recorder"] == "hub.voice.recorder_daemon:Recorder"
    assert DAEMONS["transcriber"] == "hub.voice.transcriber_daemon:Transcriber"
    daemons = build_daemons(ctx.settings, {"recorder", "transcriber"})
    assert sorted(d.name for d in daemons) == ["recorder", "transcriber"]
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    hung = run_together(daemons, stop, join_timeout=10)
    assert hung == []
    assert all(d.ready.is_set() for d in daemons)
