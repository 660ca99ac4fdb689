"""Run announcer parts in a child process, so ALSA_CONFIG_PATH applies from the start.

    python -m tests.announce.harness MODE CONFIG.json

Modes:
- ``daemon``: an :class:`~hub.announce.daemon.Announcer` in a thread, with an
  injected clock (``offset`` seconds, ``ntp`` trusted or not), until
  ``stop_file`` appears;
- ``cli``: ``hub.cli.main(argv)``, the real command line;

both with gpiozero's MockFactory whose pins record, at each change, how many
bytes the ALSA file device has written so far. The report (JSON) says what
the relay did relative to the sound.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import threading
import time
from pathlib import Path

from gpiozero.pins.mock import MockPin


def output_bytes(pattern: str) -> int:
    return sum(os.path.getsize(p) for p in glob.glob(pattern))


class RecordingPin(MockPin):
    """A mock pin that notes the time and the bytes of sound written when it changes."""

    out_glob = ""
    changes: list = []

    def _change_state(self, value):
        changed = super()._change_state(value)
        if changed:
            RecordingPin.changes.append(
                (str(self.info.name), time.monotonic(), bool(value), output_bytes(self.out_glob)))
        return changed


class Watcher(threading.Thread):
    """Notes when the sound files grow (every millisecond), to check relay timing."""

    def __init__(self, pattern: str):
        super().__init__(daemon=True)
        self.pattern = pattern
        self.growth: list = []
        self.stop = threading.Event()

    def run(self):
        last = output_bytes(self.pattern)
        while not self.stop.is_set():
            now = output_bytes(self.pattern)
            if now != last:
                self.growth.append((time.monotonic(), now))
                last = now
            time.sleep(0.001)


def _factory(out_glob: str):
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    RecordingPin.out_glob = out_glob
    RecordingPin.changes = []
    factory = MockFactory(pin_class=RecordingPin)
    Device.pin_factory = factory
    return factory


def run_daemon(cfg: dict) -> dict:
    from hub.announce.daemon import Announcer
    from hub.core import settings as settings_mod
    from hub.core.clock import Clock

    factory = _factory(cfg["out_glob"])
    overrides = dict(cfg["settings"])
    overrides["data_dir"] = Path(overrides["data_dir"])
    settings = settings_mod.load(config=None, env={}, overrides=overrides)
    offset = float(cfg.get("offset", 0.0))
    ntp = bool(cfg.get("ntp", True))

    def clock_factory(db):
        return Clock(db, time_source=lambda: time.time() + offset, ntp_check=lambda: ntp)

    watcher = Watcher(cfg["out_glob"])
    watcher.start()
    announcer = Announcer(settings, clock_factory=clock_factory, pin_factory=factory)
    thread = threading.Thread(target=announcer.run, daemon=True)
    thread.start()
    announcer.ready.wait(30)
    Path(cfg["ready_file"]).write_text("ready")
    stop = Path(cfg["stop_file"])
    deadline = time.monotonic() + float(cfg.get("max_seconds", 60))
    while not stop.exists() and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.02)
    announcer.quit()
    thread.join(10)
    watcher.stop.set()
    watcher.join(2)
    return {"hung": thread.is_alive(), "changes": RecordingPin.changes,
            "growth": watcher.growth, "ready": announcer.ready.is_set()}


def run_cli(cfg: dict) -> dict:
    from hub.cli import main

    _factory(cfg["out_glob"])
    watcher = Watcher(cfg["out_glob"])
    watcher.start()
    rc = main(cfg["argv"])
    watcher.stop.set()
    watcher.join(2)
    return {"rc": rc, "changes": RecordingPin.changes, "growth": watcher.growth}


def main() -> int:
    mode, path = sys.argv[1], sys.argv[2]
    cfg = json.loads(Path(path).read_text())
    report = {"daemon": run_daemon, "cli": run_cli}[mode](cfg)
    Path(cfg["report"]).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
