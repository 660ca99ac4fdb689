"""Run the recorder daemon once in its own process, with MockFactory pins and ALSA from the environment.

``python -m tests.voice.kiosk_run MODE`` presses the button, waits for the
turn to end and prints what happened as JSON. ALSA_CONFIG_PATH must be set
by the caller before this process starts (PyAudio reads it once).
MODE is ``turn`` (one press), ``press-stop`` (a second press while
recording) or ``idle`` (no press).
"""

from __future__ import annotations

import json
import sys
import threading
import time

from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from hub.core import settings as settings_mod
from hub.core.context import open_context
from hub.migrations import MIGRATIONS
from hub.voice.recorder_daemon import Recorder


def main(mode: str) -> int:
    factory = MockFactory()
    Device.pin_factory = factory
    settings = settings_mod.load()
    open_context(settings, MIGRATIONS).close()  # migrated, as `hub migrate` does before the service starts
    daemon = Recorder(settings, pin_factory=factory)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    assert daemon.ready.wait(20), "recorder not ready"
    out: dict = {"enabled": daemon.enabled}
    if daemon.kiosk is not None:
        button = factory.pin(int(settings.button_pin.removeprefix("GPIO")))
        led = factory.pin(int(settings.button_led_pin.removeprefix("GPIO"))) if settings.button_led_pin else None
        out["led_idle"] = daemon.led.state
        if mode in ("turn", "press-stop"):
            button.drive_low()
            button.drive_high()
            if mode == "press-stop":
                deadline = time.monotonic() + 20
                # Press once 3 s of audio (the speech) are in.
                while daemon.kiosk.frames < 100 and time.monotonic() < deadline:
                    time.sleep(0.001)
                button.drive_low()
                button.drive_high()
            deadline = time.monotonic() + 60
            while daemon.kiosk.last is None and time.monotonic() < deadline:
                time.sleep(0.01)
        out["result"] = daemon.kiosk.last
        out["presses"] = daemon.button.presses
        out["led_after"] = daemon.led.state
        if led is not None:
            # The file device ends a turn within a fraction of a second, so what the pin showed
            # during it depends on timing; one whole period of the ready pulse (0.1 s on, 1.9 s
            # off) afterwards does not.
            time.sleep(sum(daemon.led.PATTERNS["ready"]) + 0.2)
        out["led_pin_changes"] = len(led.states) if led is not None else 0
    daemon.quit()
    thread.join(10)
    out["stopped"] = not thread.is_alive()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "turn"))
