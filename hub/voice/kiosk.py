"""One villager's turn at the kiosk: prompt, beep, record, trim, save, read the receipt out."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hub import feedback
from hub.voice import sound as snd
from hub.voice import transcripts
from hub.voice.devices import KioskLed
from hub.voice.prompts import PromptPlayer, digit_keys

log = logging.getLogger(__name__)

#: Played when a villager presses the button.
START_PROMPTS = ["welcome", "speak_after_tone", "beep"]


def free_mb(path: Path) -> float:
    return shutil.disk_usage(path).free / (1024 * 1024)


def store_recording(ctx, pcm: bytes, lang: str, category: str = "other") -> dict:
    """Save trimmed 16 kHz PCM as a kiosk feedback item (through the media pipeline)."""
    with tempfile.TemporaryDirectory(prefix="hub-kiosk-") as tmp:
        wav = snd.write_wav(Path(tmp) / "kiosk.wav", pcm)
        row = ctx.media.prepare_audio(wav)
    fields = {"category": category, "lang": lang, "body": ""}
    saved = feedback.submit(ctx, fields, row, source="kiosk")
    transcripts.enqueue_new(ctx)
    return saved


class Kiosk:
    """The kiosk's behaviour, separate from GPIO and the daemon loop so it can be driven directly.

    ``press()`` is what the button calls: it starts a turn when the kiosk is
    idle and ends the recording when one is running; presses while prompts
    play are ignored.
    """

    def __init__(self, ctx, sound, led: KioskLed | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 heartbeat: Callable[[], None] = lambda: None,
                 prompts: PromptPlayer | None = None):
        self.ctx = ctx
        self.settings = ctx.settings
        self.sound = sound
        self.led = led or KioskLed(None)
        self.clock = clock
        self.heartbeat = heartbeat
        self.prompts = prompts or PromptPlayer(ctx)
        self.state = "idle"
        self.pressed = threading.Event()
        self.stop = threading.Event()
        self.last: dict | None = None
        #: Frames read in the current recording (what a watcher can wait on).
        self.frames = 0

    # --- what the button calls ---
    def press(self) -> None:
        if self.state == "recording":
            self.stop.set()
        elif self.state == "idle":
            self.pressed.set()

    def storage_ok(self) -> bool:
        return free_mb(self.settings.data_dir) >= self.settings.min_free_mb

    def show_idle(self) -> None:
        self.led.set("ready" if self.storage_ok() else "refused")

    def play(self, keys: list[str]) -> None:
        self.sound.play(self.prompts.sequence(keys))
        self.heartbeat()

    def _frame_read(self) -> None:
        self.frames += 1
        self.heartbeat()

    # --- a turn ---
    def turn(self) -> dict:
        """Run one turn after a press; return what happened (also kept in ``last``)."""
        self.pressed.clear()
        self.stop.clear()
        self.state = "busy"
        try:
            result = self._turn()
        except Exception as e:
            log.exception("kiosk turn failed")
            result = {"outcome": "failed", "error": str(e)}
            self.led.set("refused")
            try:
                self.play(["failed"])
            except Exception:
                log.exception("could not play the failure prompt")
        finally:
            self.state = "idle"
            self.pressed.clear()
        self.show_idle()
        self.last = result
        log.info("kiosk turn: %s", result)
        return result

    def _turn(self) -> dict:
        s = self.settings
        if not self.storage_ok():
            self.led.set("refused")
            self.play(["disk_full"])
            return {"outcome": "refused", "reason": "disk_full", "free_mb": round(free_mb(s.data_dir))}
        self.led.set("busy")
        self.play(START_PROMPTS)
        stream = self.sound.open_capture()
        try:
            self.stop.clear()
            self.frames = 0
            self.state = "recording"
            self.led.set("recording")
            rec = snd.record_from(stream, max_seconds=s.max_record_seconds,
                                  silence_stop_seconds=s.silence_stop_seconds, stop=self.stop,
                                  clock=self.clock, heartbeat=self._frame_read)
        finally:
            self.state = "busy"
            stream.stop_stream()
            stream.close()
        self.led.set("busy")
        trimmed = snd.trim_silence(rec.pcm)
        if snd.speech_seconds(trimmed) < snd.MIN_SPEECH_SECONDS:
            self.play(["too_short"])
            return {"outcome": "too_short", "stopped_by": rec.stopped_by,
                    "recorded_seconds": rec.seconds}
        saved = store_recording(self.ctx, trimmed, s.kiosk_language)
        self.play(["thank_you_number", *digit_keys(saved["receipt"])])
        return {"outcome": "saved", "receipt": saved["receipt"], "feedback_id": saved["id"],
                "stopped_by": rec.stopped_by, "recorded_seconds": rec.seconds,
                "stored_seconds": len(trimmed) / (snd.RATE * snd.SAMPLE_BYTES)}
