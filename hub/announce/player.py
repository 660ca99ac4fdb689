"""Sound out of the loudspeaker: PyAudio, blocking writes, to the ALSA device the settings name.

Everything the announcer plays is 48 kHz mono 16-bit PCM: the chimes in
``audio/`` are made that way, and the media pipeline's loudness-normalised
copy (EBU R128, -16 LUFS) is too, so announcements play at one loudness and
the stream never needs resampling. The volume setting scales the samples.

Blocking writes of short chunks keep the announcer's loop in charge: between
chunks it beats its heartbeat (a write that hangs stops the systemd watchdog
pings, and systemd restarts the daemon) and asks whether to stop (an urgent
announcement, or a shutdown).
"""

from __future__ import annotations

import itertools
import logging
import time
import wave
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hub.core.assets import audio_dir
from hub.core.audio import SoundDeviceError, devices, find_device, open_pyaudio
from hub.core.errors import HubError

log = logging.getLogger(__name__)

RATE = 48000
CHANNELS = 1
WIDTH = 2
#: 50 ms per write: often enough to check for an urgent announcement, few enough to cost nothing.
CHUNK_FRAMES = 2400
#: Samples decoded before the due time, so the first seconds need no file read at all.
AHEAD_SECONDS = 2.0
#: Silence between the start chime and the announcement, and before the end chime.
PAD_SECONDS = 0.3
#: Silence between two repeats of the announcement.
GAP_SECONDS = 1.0
#: A clip cut short (by an urgent announcement) fades out over this many frames (30 ms), not with a click.
FADE_FRAMES = 1440
AUDIO_DIR = audio_dir()
START_CHIME = AUDIO_DIR / "chime-start.wav"
END_CHIME = AUDIO_DIR / "chime-end.wav"


class AudioDeviceError(SoundDeviceError):
    """The ALSA device named in the settings is missing or refuses to play."""


class ClipError(HubError):
    """A sound file the player cannot play as it is (wrong format, unreadable)."""


# --- what is played ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Clip:
    """A piece of the programme: a WAV file, or a stretch of silence."""

    path: Path | None = None
    silence: float = 0.0

    @classmethod
    def wav(cls, path: str | Path) -> Clip:
        return cls(path=Path(path))

    @classmethod
    def pause(cls, seconds: float) -> Clip:
        return cls(silence=seconds)

    def check(self) -> float:
        """Raise ClipError unless the file is 48 kHz mono 16-bit; return its length in seconds."""
        if self.path is None:
            return self.silence
        try:
            with wave.open(str(self.path), "rb") as w:
                shape = (w.getframerate(), w.getnchannels(), w.getsampwidth())
                if shape != (RATE, CHANNELS, WIDTH):
                    raise ClipError(f"{self.path.name}: not 48 kHz mono 16-bit WAV")
                return w.getnframes() / RATE
        except FileNotFoundError:
            raise ClipError(f"{self.path}: no such file") from None
        except (wave.Error, EOFError) as e:
            raise ClipError(f"{self.path.name}: not a WAV file ({e})") from None

    def chunks(self, frames: int) -> Iterator[bytes]:
        if self.path is None:
            total = int(round(self.silence * RATE))
            for start in range(0, total, frames):
                yield b"\0\0" * min(frames, total - start)
            return
        with wave.open(str(self.path), "rb") as w:
            while True:
                data = w.readframes(frames)
                if not data:
                    return
                yield data


def _chime(path: Path) -> list[Clip]:
    # A missing chime must not silence the announcement itself: play without it.
    if path.is_file():
        return [Clip.wav(path)]
    log.warning("chime %s is missing; playing without it", path)
    return []


def programme(audio: Path, repeats: int = 1, start_chime: Path = START_CHIME,
              end_chime: Path = END_CHIME) -> list[Clip]:
    """Start chime, the announcement *repeats* times with gaps, end chime."""
    clips = [*_chime(start_chime), Clip.pause(PAD_SECONDS)]
    for i in range(repeats):
        if i:
            clips.append(Clip.pause(GAP_SECONDS))
        clips.append(Clip.wav(audio))
    clips += [Clip.pause(PAD_SECONDS), *_chime(end_chime)]
    return clips


def fade_out(data: bytes, frames: int = FADE_FRAMES) -> bytes:
    """The first *frames* of *data* falling linearly to silence: sample i times (frames - i) / frames."""
    samples = array("h", data[:frames * WIDTH])
    samples.extend([0] * (frames - len(samples)))
    return array("h", (s * (frames - i) // frames if s >= 0 else -((-s) * (frames - i) // frames)
                       for i, s in enumerate(samples))).tobytes()


def scale(data: bytes, volume: float) -> bytes:
    """Samples times *volume*, truncated toward zero."""
    if volume >= 1.0:
        return data
    samples = array("h", data)
    return array("h", (int(s * volume) for s in samples)).tobytes()


@dataclass
class PlayResult:
    completed: bool
    frames: int
    first_sample: float | None  # time.monotonic() just before the first write
    last_sample: float | None  # time.monotonic() once the last write drained


# --- the device -------------------------------------------------------------------------------

class Player:
    """A PyAudio output on the ALSA device *device* (e.g. ``default``, ``hw:0,0``, ``speaker``)."""

    def __init__(self, device: str = "default", volume: float = 1.0,
                 chunk_frames: int = CHUNK_FRAMES):
        self.device = device
        self.volume = volume
        self.chunk_frames = chunk_frames
        self._pa = None
        self._index: int | None = None
        self._prepared = None

    @classmethod
    def from_settings(cls, settings) -> Player:
        return cls(settings.audio_output_device, settings.volume)

    def open(self) -> Player:
        """Start PortAudio and find the device; raise AudioDeviceError if it is not there."""
        if self._index is not None:
            return self
        self._start()
        try:
            self._index = self._find()
        except BaseException:
            self.close()
            raise
        return self

    @property
    def is_open(self) -> bool:
        return self._index is not None

    def _start(self) -> None:
        if self._pa is None:
            self._pa = open_pyaudio()

    def output_devices(self) -> list[str]:
        """Names of the output devices PortAudio sees."""
        self._start()
        return [str(d["name"]) for d in devices(self._pa, "output")]

    def _find(self) -> int:
        try:
            return find_device(self._pa, self.device, "output")
        except SoundDeviceError as e:
            raise AudioDeviceError(str(e)) from None

    def prepare(self, clips: list[Clip]) -> None:
        """Check *clips*, open the stream and decode the first seconds, before the due time.

        What is slow (PortAudio's device scan, opening ALSA, reading and scaling
        the first samples) happens here, during the amplifier's warm-up; at the
        due time :meth:`play` only writes samples it already holds.
        """
        self.cancel()
        for c in clips:
            c.check()
        self.open()
        # PortAudio scans the sound cards on import; only a playing announcer needs it
        import pyaudio

        try:
            stream = self._pa.open(format=pyaudio.paInt16, channels=CHANNELS, rate=RATE,
                                   output=True, output_device_index=self._index,
                                   frames_per_buffer=self.chunk_frames)
        except OSError as e:
            self.close()  # the next play starts PortAudio afresh, in case the device came back
            raise AudioDeviceError(f"audio device {self.device!r} cannot play: {e}") from None
        rest = (scale(data, self.volume) for clip in clips for data in clip.chunks(self.chunk_frames))
        ahead = list(itertools.islice(rest, max(1, int(AHEAD_SECONDS * RATE / self.chunk_frames))))
        self._prepared = (clips, stream, ahead, rest)

    def cancel(self) -> None:
        """Close a stream :meth:`prepare` opened that will not be played."""
        prepared, self._prepared = self._prepared, None
        if prepared is not None:
            try:
                prepared[1].close()
            except OSError:
                pass

    def play(self, clips: list[Clip], should_stop: Callable[[], bool] | None = None,
             on_first_sample: Callable[[], object] | None = None) -> PlayResult:
        """Play *clips* in one stream (prepared ahead, or now); stop early when *should_stop* says so."""
        if self._prepared is None or self._prepared[0] is not clips:
            self.prepare(clips)
        _, stream, ahead, rest = self._prepared
        self._prepared = None
        frames = 0
        first = None
        completed = False
        failure: OSError | None = None
        cut = False
        try:
            for data in itertools.chain(ahead, rest):
                if should_stop is not None and should_stop():
                    # Stopped cleanly: the sound fades out over 30 ms and the stream drains.
                    cut = True
                    if first is not None:
                        stream.write(fade_out(data))
                        frames += FADE_FRAMES
                    return PlayResult(False, frames, first, time.monotonic())
                if first is None:
                    first = time.monotonic()
                    if on_first_sample is not None:
                        on_first_sample()
                stream.write(data)
                frames += len(data) // WIDTH
            completed = True
        except OSError as e:
            failure = e
        finally:
            try:
                if completed or cut:
                    stream.stop_stream()  # waits until the last sample has been played
                stream.close()
            except OSError:
                pass
        if not completed:
            self.close()
            raise AudioDeviceError(f"audio device {self.device!r} failed while playing: {failure}")
        return PlayResult(True, frames, first, time.monotonic())

    def close(self) -> None:
        """Stop PortAudio. Safe to call more than once."""
        self.cancel()
        if self._pa is not None:
            try:
                self._pa.terminate()
            finally:
                self._pa = None
                self._index = None

    def __enter__(self) -> Player:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
