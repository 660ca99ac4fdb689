"""Sound in and out through PyAudio, voice detection and silence trimming.

Everything here works on 16-bit little-endian mono PCM at 16 kHz, the rate
webrtcvad and the speech models want. Frames are 30 ms (480 samples).
"""

from __future__ import annotations

import logging
import math
import subprocess
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hub.core.audio import SoundDeviceError, find_device, open_pyaudio

log = logging.getLogger(__name__)

RATE = 16000
SAMPLE_BYTES = 2
FRAME_MS = 30
FRAME_SAMPLES = RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * SAMPLE_BYTES
#: How aggressive webrtcvad is in filtering out non-speech (0-3).
VAD_MODE = 2
#: Speech shorter than this, after trimming, counts as "we did not hear you".
MIN_SPEECH_SECONDS = 0.4
#: Silence kept before and after the speech when trimming.
TRIM_MARGIN_SECONDS = 0.3


class SoundError(SoundDeviceError):
    """The microphone or speaker cannot be used."""


# --- devices ---------------------------------------------------------------------------------


class Sound:
    """PyAudio opened quietly, with the kiosk's capture and playback devices found by name.

    A device name is an ALSA name from the settings: ``default``, a PCM name
    such as ``plughw:1,0``, or part of the card's name as PyAudio lists it.
    """

    def __init__(self, input_device: str = "default", output_device: str = "default"):
        # PortAudio scans the sound cards on import; only the kiosk opens them
        import pyaudio

        self._pyaudio_mod = pyaudio
        self.pa = open_pyaudio()
        self.input_device = input_device
        self.output_device = output_device
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Sound:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.pa.terminate()

    def devices(self) -> list[dict]:
        return [self.pa.get_device_info_by_index(i) for i in range(self.pa.get_device_count())]

    def _index(self, name: str, direction: str) -> int:
        try:
            return find_device(self.pa, name, direction)
        except SoundDeviceError as e:
            raise SoundError(str(e)) from None

    def open_capture(self, frames_per_buffer: int = FRAME_SAMPLES):
        """A blocking 16 kHz mono 16-bit input stream from the kiosk microphone."""
        try:
            index = self._index(self.input_device, "input")
            return self.pa.open(format=self._pyaudio_mod.paInt16, channels=1, rate=RATE,
                                input=True, input_device_index=index,
                                frames_per_buffer=frames_per_buffer)
        except OSError as e:
            raise SoundError(f"cannot open the microphone {self.input_device!r}: {e}") from None

    def play(self, pcm: bytes, rate: int = RATE) -> None:
        """Play mono 16-bit PCM and return when it has been written out."""
        if not pcm:
            return
        with self._lock:
            try:
                index = self._index(self.output_device, "output")
                stream = self.pa.open(format=self._pyaudio_mod.paInt16, channels=1, rate=rate,
                                      output=True, output_device_index=index)
            except OSError as e:
                raise SoundError(f"cannot open the speaker {self.output_device!r}: {e}") from None
            try:
                stream.write(pcm)
            finally:
                stream.stop_stream()
                stream.close()


# --- voice detection -------------------------------------------------------------------------


def new_vad():
    # a C extension only the kiosk's recorder needs
    import webrtcvad

    return webrtcvad.Vad(VAD_MODE)


def voiced_frames(pcm: bytes, vad=None) -> list[bool]:
    """Whether each whole 30 ms frame of *pcm* holds speech."""
    vad = vad or new_vad()
    n = len(pcm) // FRAME_BYTES
    return [vad.is_speech(pcm[i * FRAME_BYTES:(i + 1) * FRAME_BYTES], RATE) for i in range(n)]


def smooth(flags: list[bool], window: int = 5, need: int = 3) -> list[bool]:
    """A frame is speech when most of the frames around it are: lone clicks are not speech."""
    out = []
    half = window // 2
    for i in range(len(flags)):
        lo, hi = max(0, i - half), min(len(flags), i + half + 1)
        out.append(sum(flags[lo:hi]) >= min(need, hi - lo))
    return out


def speech_span(pcm: bytes, vad=None, margin: float = TRIM_MARGIN_SECONDS) -> tuple[int, int] | None:
    """Byte offsets (start, end) of the speech in *pcm* with a margin; None if none."""
    flags = smooth(voiced_frames(pcm, vad))
    if not any(flags):
        return None
    first = flags.index(True)
    last = len(flags) - 1 - flags[::-1].index(True)
    pad = int(margin * 1000 / FRAME_MS)
    start = max(0, first - pad) * FRAME_BYTES
    end = min(len(pcm), (last + 1 + pad) * FRAME_BYTES)
    return start, end


def trim_silence(pcm: bytes, vad=None, margin: float = TRIM_MARGIN_SECONDS) -> bytes:
    """*pcm* without the silence before and after the speech (empty if no speech)."""
    span = speech_span(pcm, vad, margin)
    return pcm[span[0]:span[1]] if span else b""


def speech_seconds(pcm: bytes, vad=None) -> float:
    return sum(smooth(voiced_frames(pcm, vad))) * FRAME_MS / 1000


# --- recording -------------------------------------------------------------------------------


@dataclass
class Recording:
    """What came from the microphone and why it stopped."""

    pcm: bytes = b""
    stopped_by: str = ""  # "press", "silence", "limit", "clock", "quit"
    heard_speech: bool = False
    frames: int = 0
    voiced: list[bool] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (RATE * SAMPLE_BYTES)


def record(
    read_frame: Callable[[], bytes],
    *,
    max_seconds: float,
    silence_stop_seconds: float | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    heartbeat: Callable[[], None] = lambda: None,
    vad=None,
) -> Recording:
    """Read 30 ms frames until a press, enough silence, or the length limit.

    The length limit is counted twice: in samples received, and on *clock*,
    whichever ends first. Real microphones agree with the clock; a stalled
    device is ended by the clock, and a device faster than real time (ALSA's
    file plugin) by the sample count, so tests inject the clock.
    """
    vad = vad or new_vad()
    rec = Recording()
    chunks: list[bytes] = []
    max_frames = math.ceil(max_seconds * 1000 / FRAME_MS - 1e-9)
    silence_frames = int((silence_stop_seconds or 0) * 1000 / FRAME_MS)
    trailing_silence = 0
    started = clock()
    while True:
        if stop is not None and stop.is_set():
            rec.stopped_by = "press"
            break
        if rec.frames >= max_frames:
            rec.stopped_by = "limit"
            break
        if clock() - started >= max_seconds:
            rec.stopped_by = "clock"
            break
        frame = read_frame()
        if len(frame) < FRAME_BYTES:
            frame = frame + b"\0" * (FRAME_BYTES - len(frame))
        chunks.append(frame)
        rec.frames += 1
        voiced = vad.is_speech(frame[:FRAME_BYTES], RATE)
        rec.voiced.append(voiced)
        if voiced:
            rec.heard_speech = True
            trailing_silence = 0
        else:
            trailing_silence += 1
        heartbeat()
        if silence_frames and trailing_silence >= silence_frames:
            rec.stopped_by = "silence"
            break
    rec.pcm = b"".join(chunks)
    return rec


def record_from(stream, **kw) -> Recording:
    """:func:`record` from a PyAudio input stream (overflows are not errors: a lost frame is not a lost message)."""
    return record(lambda: stream.read(FRAME_SAMPLES, exception_on_overflow=False), **kw)


# --- files -----------------------------------------------------------------------------------


def write_wav(path: Path, pcm: bytes, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(SAMPLE_BYTES)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def read_pcm(path: Path) -> bytes:
    """Any audio file as 16 kHz mono 16-bit PCM (WAVs of that shape are read directly)."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, SAMPLE_BYTES):
                return w.readframes(w.getnframes())
    except (wave.Error, EOFError):
        pass
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(RATE),
         "-f", "s16le", "-"], capture_output=True, timeout=120, check=False)
    if out.returncode != 0:
        raise SoundError(f"cannot read {path.name}: {out.stderr.decode(errors='replace').strip()[:200]}")
    return out.stdout


def silence(seconds: float) -> bytes:
    return b"\0" * (int(RATE * seconds) * SAMPLE_BYTES)
