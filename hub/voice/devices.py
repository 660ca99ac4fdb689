"""The kiosk's push button and its LED, as gpiozero devices.

Both take their pin factory from gpiozero's own mechanism
(``GPIOZERO_PIN_FACTORY``, or ``Device.pin_factory``); tests use MockFactory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from hub.core.errors import HubError


class Debouncer:
    """Accepts an event only if the last accepted one is at least *debounce_ms* ago.

    gpiozero's own ``bounce_time`` relies on the pin driver; mechanical
    buttons on long wires bounce for several milliseconds, and MockFactory
    never bounces, so the kiosk does its own debouncing, on an injectable clock.
    """

    def __init__(self, debounce_ms: int, clock: Callable[[], float] = time.monotonic):
        self.window = max(0, debounce_ms) / 1000
        self.clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def accept(self) -> bool:
        with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last < self.window:
                return False
            self._last = now
            return True


class PinError(HubError):
    """A GPIO pin cannot be used (no GPIO on this machine, no permission, in use, bad name)."""


def _pin(make: Callable, pin: str, what: str):
    # gpiozero is imported only once a pin is set (see RecordButton)
    from gpiozero.exc import GPIOZeroError

    try:
        return make()
    except (GPIOZeroError, ValueError, OSError) as e:
        raise PinError(f"{what} pin {pin}: {e}") from None


class RecordButton:
    """The big push button a villager presses to start and stop a recording.

    Wiring: one leg of a normally-open push button to the GPIO pin named by
    the ``button_pin`` setting (e.g. GPIO27, physical pin 13), the other leg
    to ground (e.g. physical pin 14). The Pi's internal pull-up holds the pin
    high; a press pulls it low (active low). No resistor is needed. Keep the
    wires short or twisted; presses closer together than ``debounce_ms`` are
    counted once.
    """

    def __init__(self, pin: str, on_press: Callable[[], None], debounce_ms: int = 50,
                 clock: Callable[[], float] = time.monotonic, pin_factory=None):
        # gpiozero picks and probes a pin library on import; only a wired kiosk needs it
        from gpiozero import Button

        self.debouncer = Debouncer(debounce_ms, clock)
        self.on_press = on_press
        self.presses = 0
        self._button = None
        self._button = _pin(lambda: Button(pin, pull_up=True, bounce_time=None, pin_factory=pin_factory),
                            pin, "button")
        self._button.when_pressed = self._pressed

    def _pressed(self) -> None:
        if self.debouncer.accept():
            self.presses += 1
            self.on_press()

    @property
    def is_pressed(self) -> bool:
        return bool(self._button and self._button.is_pressed)

    def close(self) -> None:
        button, self._button = getattr(self, "_button", None), None
        if button is not None:
            button.when_pressed = None
            button.close()

    def __enter__(self) -> RecordButton:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class KioskLed:
    """The LED beside the record button, which tells the villager what the kiosk is doing.

    Wiring: GPIO pin named by ``button_led_pin`` (e.g. GPIO22, physical pin
    15) through a 330 Ω resistor to the LED's anode (long leg); its cathode
    to ground (active high). Or use a button with a built-in LED the same way.

    States: off (no kiosk), ready (slow pulse every 2 s), recording (steady
    on), busy (quick blink while prompts play and the message is saved),
    refused (rapid flashing, e.g. storage full).
    """

    PATTERNS = {
        "off": None,
        "ready": (0.1, 1.9),
        "recording": "on",
        "busy": (0.25, 0.25),
        "refused": (0.08, 0.08),
    }

    def __init__(self, pin: str | None, pin_factory=None):
        self.state = "off"
        self.pin = pin or None
        self._led = None
        if pin:
            # see RecordButton: gpiozero is imported only when a pin is set
            from gpiozero import LED

            self._led = _pin(lambda: LED(pin, active_high=True, initial_value=False, pin_factory=pin_factory),
                             pin, "LED")

    def set(self, state: str) -> None:
        if state not in self.PATTERNS:
            raise ValueError(state)
        self.state = state
        led = self._led
        if led is None:
            return
        pattern = self.PATTERNS[state]
        if pattern is None:
            led.off()
        elif pattern == "on":
            led.on()
        else:
            led.blink(on_time=pattern[0], off_time=pattern[1], background=True)

    @property
    def is_lit(self) -> bool:
        return bool(self._led is not None and self._led.is_lit)

    def close(self) -> None:
        led, self._led = self._led, None
        if led is not None:
            led.close()

    def __enter__(self) -> KioskLed:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
