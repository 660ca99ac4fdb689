"""The announcer's hardware: the amplifier relay and the status LED, through gpiozero.

Both take their pin factory from gpiozero's own mechanism
(``GPIOZERO_PIN_FACTORY``, or ``Device.pin_factory``): lgpio on a Pi,
``mock`` in tests. An empty pin setting means the part is not fitted, and
the object then does nothing, so the same code runs on a laptop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from hub.core.errors import HubError

log = logging.getLogger(__name__)


class DeviceError(HubError):
    """A GPIO pin cannot be used (wrong name, in use, no GPIO on this machine)."""


def _output(pin: str, active_high: bool, pin_factory, kind: str):
    # gpiozero picks and probes a pin library on import; the relay needs it only once it is built
    from gpiozero import DigitalOutputDevice
    from gpiozero.exc import GPIOZeroError

    try:
        return DigitalOutputDevice(pin, active_high=active_high, initial_value=False,
                                   pin_factory=pin_factory)
    except (GPIOZeroError, ValueError, OSError) as e:
        raise DeviceError(f"{kind} pin {pin}: {e}") from None


class Amplifier:
    """The relay that powers the loudspeaker amplifier, on only while something plays.

    Wiring: a relay module's IN goes to the pin named by ``amplifier_pin``
    (e.g. GPIO17, header pin 11), its VCC to 5 V (pin 2) and GND to ground
    (pin 6). The relay's COM and NO contacts switch the amplifier's mains or
    12 V supply, so the amplifier is off whenever the Pi is off or rebooting.
    Most cheap relay boards are *active low* (the relay closes when IN is
    pulled low): set ``amplifier_active_high = false`` for those.

    An amplifier hums and pops for a moment after power-up; ``warmup_seconds``
    is how long to wait after switching on before the first sound.
    """

    def __init__(self, pin: str | None, active_high: bool = True, warmup_seconds: float = 2.0,
                 pin_factory=None, sleep: Callable[[float], object] = time.sleep):
        self.pin = pin or None
        self.active_high = active_high
        self.warmup_seconds = float(warmup_seconds)
        self._sleep = sleep
        self._device = _output(pin, active_high, pin_factory, "amplifier") if pin else None
        self._on = False
        self._closed = False

    @classmethod
    def from_settings(cls, settings, **kw) -> Amplifier:
        return cls(settings.amplifier_pin, settings.amplifier_active_high,
                   settings.amplifier_warmup_seconds, **kw)

    @property
    def fitted(self) -> bool:
        return self._device is not None

    @property
    def is_on(self) -> bool:
        return self._on

    def on(self, warm_up: bool = True) -> None:
        """Switch the relay on; with *warm_up*, wait until the amplifier is ready for sound."""
        if self._closed:
            raise DeviceError("amplifier is closed")
        if self._on:
            return
        if self._device is not None:
            self._device.on()
        self._on = True
        log.debug("amplifier on")
        if warm_up and self.warmup_seconds > 0:
            self._sleep(self.warmup_seconds)

    def off(self) -> None:
        if self._device is not None and not self._closed:
            self._device.off()
        if self._on:
            log.debug("amplifier off")
        self._on = False

    def close(self) -> None:
        """Switch off and release the pin. Safe to call more than once."""
        if self._closed:
            return
        self.off()
        if self._device is not None:
            self._device.close()
        self._closed = True

    def __enter__(self) -> Amplifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        if not self.fitted:
            return "no amplifier relay (amplifier_pin is empty)"
        level = "active high" if self.active_high else "active low"
        return f"amplifier relay on {self.pin} ({level})"


class StatusLed:
    """The announcer's status LED: off when idle, lit while playing, blinking when it needs help.

    Wiring: the LED's anode (long leg) goes through a 330 Ω resistor to the
    pin named by ``status_led_pin`` (e.g. GPIO27, header pin 13); its cathode
    to ground (pin 14).

    - off: idle, all well;
    - on: playing;
    - slow blink (1 s): waiting for the clock to be set, scheduled items wait;
    - fast blink (0.2 s): the last playout failed (e.g. no audio device).
    """

    STATES = ("idle", "playing", "waiting", "fault")

    def __init__(self, pin: str | None, pin_factory=None):
        self.pin = pin or None
        self._led = None
        if pin:
            # see _output: gpiozero is imported only when a pin is set
            from gpiozero import LED
            from gpiozero.exc import GPIOZeroError

            try:
                self._led = LED(pin, pin_factory=pin_factory)
            except (GPIOZeroError, ValueError, OSError) as e:
                raise DeviceError(f"status LED pin {pin}: {e}") from None
        self.state = "idle"
        self._closed = False

    @classmethod
    def from_settings(cls, settings, **kw) -> StatusLed:
        return cls(settings.status_led_pin, **kw)

    def show(self, state: str) -> None:
        if state not in self.STATES:
            raise ValueError(state)
        if state == self.state or self._closed:
            return
        self.state = state
        if self._led is None:
            return
        if state == "idle":
            self._led.off()
        elif state == "playing":
            self._led.on()
        elif state == "waiting":
            self._led.blink(on_time=1.0, off_time=1.0)
        else:
            self._led.blink(on_time=0.2, off_time=0.2)

    def close(self) -> None:
        """Switch off and release the pin. Safe to call more than once."""
        if self._closed:
            return
        if self._led is not None:
            self._led.close()
        self._closed = True

    def __enter__(self) -> StatusLed:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
