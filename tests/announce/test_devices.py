"""The relay and the LED on gpiozero's MockFactory."""

from __future__ import annotations

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from hub.announce.devices import Amplifier, DeviceError, StatusLed


@pytest.fixture
def factory():
    f = MockFactory()
    old = Device.pin_factory
    Device.pin_factory = f
    yield f
    f.reset()
    Device.pin_factory = old


def test_relay_switches_and_warms_up(factory):
    slept = []
    with Amplifier("GPIO17", warmup_seconds=2.0, sleep=slept.append) as amp:
        pin = factory.pin(17)
        assert pin.state is False  # off from the start
        amp.on()
        assert pin.state is True and slept == [2.0]
        amp.on()  # already on: no second warm-up
        assert slept == [2.0]
        amp.off()
        assert pin.state is False
    assert [s.state for s in pin.states] == [False, True, False]


def test_active_low_relay_is_driven_low_to_switch_on(factory):
    with Amplifier("GPIO22", active_high=False, warmup_seconds=0) as amp:
        pin = factory.pin(22)
        assert pin.state is True  # high = relay open
        amp.on()
        assert pin.state is False
        amp.off()
        assert pin.state is True
    assert amp.describe().endswith("(active low)")


def test_close_is_idempotent_and_switches_off(factory):
    amp = Amplifier("GPIO17", warmup_seconds=0)
    amp.on()
    amp.close()
    amp.close()
    assert factory.pin(17).states[-1].state is False
    with pytest.raises(DeviceError):
        amp.on()
    # The pin is free again for the next owner.
    Amplifier("GPIO17", warmup_seconds=0).close()


def test_pin_factory_comes_from_gpiozero(factory, monkeypatch):
    # No factory passed: gpiozero's own (here the fixture's MockFactory) is used.
    with Amplifier("GPIO5", warmup_seconds=0) as amp:
        amp.on()
        assert factory.pin(5).state is True


def test_no_pin_means_no_relay(factory):
    with Amplifier("", warmup_seconds=5, sleep=lambda s: None) as amp:
        assert not amp.fitted
        amp.on()
        assert amp.is_on
        amp.off()
    assert "no amplifier relay" in amp.describe()


def test_a_pin_in_use_is_a_one_line_error(factory):
    with Amplifier("GPIO17", warmup_seconds=0):
        with pytest.raises(DeviceError) as e:
            StatusLed("GPIO17")
    assert "\n" not in str(e.value) and "GPIO17" in str(e.value)
    with pytest.raises(DeviceError):
        Amplifier("GPIO999", warmup_seconds=0)


def test_status_led_states(factory):
    with StatusLed("GPIO27") as led:
        pin = factory.pin(27)
        led.show("playing")
        assert pin.state is True
        led.show("idle")
        assert pin.state is False
        led.show("waiting")
        assert led.state == "waiting"
        with pytest.raises(ValueError):
            led.show("disco")
    led.close()
    with StatusLed("") as none:
        none.show("fault")
        assert none.state == "fault"
