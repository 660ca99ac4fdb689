"""Daemon ``hub-recorder``: the push-button recording kiosk.

With no ``button_pin`` set the daemon idles harmlessly (a hub without a
kiosk, or `hub run` on a laptop): it touches no GPIO and no sound device.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from hub.core.context import open_context
from hub.core.daemon import Daemon, service_main
from hub.migrations import MIGRATIONS
from hub.voice.devices import KioskLed, PinError, RecordButton
from hub.voice.kiosk import Kiosk
from hub.voice.sound import Sound

log = logging.getLogger(__name__)

#: How often to try again a button or LED pin that could not be opened.
PIN_RETRY_SECONDS = 10


class Recorder(Daemon):
    """Button, LED, microphone and prompts; one turn at a time."""

    name = "recorder"
    poll_interval = 0.05

    def __init__(self, settings, *, pin_factory=None, sound=None,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(settings)
        self.pin_factory = pin_factory
        self.clock = clock
        self.sound = sound
        self._own_sound = sound is None
        self.ctx = None
        self.button = None
        self.led = None
        self.kiosk = None
        self.enabled = bool(settings.button_pin)

    def setup(self) -> None:
        if not self.enabled:
            log.info("no button_pin set: the recording kiosk is off")
            return
        s = self.settings
        self.ctx = open_context(s, MIGRATIONS, migrate=False)
        if self.sound is None:
            self.sound = Sound(s.audio_input_device, s.kiosk_output_device)
        self.led = KioskLed(None)
        self.kiosk = Kiosk(self.ctx, self.sound, self.led, clock=self.clock, heartbeat=self.heartbeat)
        self._open_pins()
        self.every(PIN_RETRY_SECONDS, self._open_pins)
        self.every(30, self.kiosk.show_idle)

    def _open_pins(self) -> None:
        """Open the button and its LED if they are not open yet; a missing pin is reported, not fatal.

        Without GPIO (no chip, or the hub user may not use it) the daemon keeps
        running, says so to hub doctor and the console, and tries again.
        """
        s = self.settings
        if s.button_led_pin and self.led.pin is None:
            led = self.attempt("button_led", lambda: KioskLed(s.button_led_pin, pin_factory=self.pin_factory),
                               (PinError,), "kiosk LED: ")
            if led is not None:
                self.led = self.kiosk.led = led
        if self.button is None:
            self.button = self.attempt(
                "button", lambda: RecordButton(s.button_pin, self.kiosk.press, s.debounce_ms, clock=self.clock,
                                               pin_factory=self.pin_factory),
                (PinError,), "record button: ")
            if self.button is not None:
                self.kiosk.show_idle()

    def poll(self) -> None:
        if self.kiosk is not None and self.kiosk.pressed.is_set() and not self.quitting:
            self.kiosk.turn()

    def quit(self) -> None:
        super().quit()
        if self.kiosk is not None:
            self.kiosk.stop.set()  # end a running recording; it is still saved

    def teardown(self) -> None:
        for part in (self.button, self.led):
            if part is not None:
                part.close()
        if self._own_sound and self.sound is not None:
            self.sound.close()
            self.sound = None
        if self.ctx is not None:
            self.ctx.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hub-recorder`` service."""
    return service_main("hub-recorder", __doc__.splitlines()[0], Recorder, argv)


if __name__ == "__main__":
    sys.exit(main())
