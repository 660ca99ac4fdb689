"""The recording kiosk kept busy: villager after villager presses the button, until a stop file appears.

    python -m tests.faults.kiosk_loop CONFIG.toml STOP_FILE REPORT.json [PAUSE_SECONDS]

The real hub-recorder daemon (hub.voice.recorder_daemon.Recorder) runs in a
thread with gpiozero's MockFactory for the button; sound goes through PyAudio
to the ALSA file devices named by ALSA_CONFIG_PATH (the microphone reads a
speech file, the prompts play into a file). After each turn ends, the next
press follows *PAUSE_SECONDS* later. The report counts the turns by outcome.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from hub.core import settings as settings_mod
from hub.voice.recorder_daemon import Recorder


def main(config: str, stop_file: str, report: str, pause: float = 5.0) -> int:
    factory = MockFactory()
    Device.pin_factory = factory
    settings = settings_mod.load(Path(config))
    daemon = Recorder(settings, pin_factory=factory)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    if not daemon.ready.wait(30) or daemon.kiosk is None:
        Path(report).write_text(json.dumps({"error": "recorder not ready or kiosk off"}))
        return 1
    button = factory.pin(int(settings.button_pin.removeprefix("GPIO")))
    stop = Path(stop_file)
    outcomes: dict[str, int] = {}
    seconds: list[float] = []
    while not stop.exists():
        before = daemon.kiosk.last
        t = time.monotonic()
        button.drive_low()
        button.drive_high()
        while daemon.kiosk.last is before and not stop.exists() and thread.is_alive():
            time.sleep(0.05)
        if daemon.kiosk.last is not before:
            outcome = daemon.kiosk.last.get("outcome", "?")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            seconds.append(time.monotonic() - t)
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline and not stop.exists():
            time.sleep(0.1)
    daemon.quit()
    thread.join(30)
    Path(report).write_text(json.dumps({"outcomes": outcomes, "turn_seconds": seconds,
                                        "stopped": not thread.is_alive()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], *(float(a) for a in sys.argv[4:5])))
