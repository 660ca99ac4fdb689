"""Voice detection, trimming and the recording loop's stop rules, on real espeak-ng speech."""

from __future__ import annotations

import threading

from hub.voice import sound
from tests.voice.conftest import pcm_of, silence


def frames_of(pcm: bytes):
    """A read_frame function over *pcm*, then silence for ever (like a quiet room)."""
    pos = [0]

    def read() -> bytes:
        chunk = pcm[pos[0]:pos[0] + sound.FRAME_BYTES]
        pos[0] += sound.FRAME_BYTES
        return chunk + b"\0" * (sound.FRAME_BYTES - len(chunk))

    return read


def test_vad_finds_speech_and_not_silence(english_wav):
    speech = pcm_of(english_wav)
    assert sound.speech_seconds(speech) > 1.0
    assert sound.speech_seconds(silence(3)) == 0
    assert sound.trim_silence(silence(3)) == b""


def test_trim_keeps_the_speech_and_a_margin(english_wav):
    speech = pcm_of(english_wav)
    padded = silence(2) + speech + silence(2)
    trimmed = sound.trim_silence(padded)
    start = padded.find(trimmed)
    assert start >= 0
    assert len(trimmed) < len(padded) - 2 * 32000  # most of the 4 s of silence is gone
    assert 2 * 32000 - start <= 0.36 * 32000  # at most the margin before the speech
    assert sound.speech_seconds(trimmed) >= sound.speech_seconds(speech) - 0.1


def test_recording_stops_after_the_silence_setting(english_wav):
    speech = pcm_of(english_wav)
    rec = sound.record(frames_of(silence(0.5) + speech), max_seconds=60, silence_stop_seconds=1.2)
    assert rec.stopped_by == "silence" and rec.heard_speech
    # Stopped 1.2 s after the speech ended (give or take webrtcvad's view of the tail).
    assert abs(rec.seconds - (0.5 + len(speech) / 32000 + 1.2)) < 0.5


def test_recording_stops_at_the_length_limit_in_samples():
    rec = sound.record(frames_of(silence(100)), max_seconds=2, silence_stop_seconds=None)
    assert rec.stopped_by == "limit" and rec.frames == 67  # 2.01 s: never shorter than asked


def test_recording_stops_on_the_injected_clock_when_the_device_stalls():
    t = [0.0]

    def clock() -> float:
        return t[0]

    def slow_read() -> bytes:
        t[0] += 0.5  # each 30 ms frame takes half a second to arrive
        return silence(0.03)

    rec = sound.record(slow_read, max_seconds=3, clock=clock)
    assert rec.stopped_by == "clock" and rec.frames == 6


def test_a_press_stops_the_recording(english_wav):
    stop = threading.Event()
    read = frames_of(pcm_of(english_wav) * 10)
    count = [0]

    def reader() -> bytes:
        count[0] += 1
        if count[0] == 40:
            stop.set()
        return read()

    rec = sound.record(reader, max_seconds=60, silence_stop_seconds=5, stop=stop)
    assert rec.stopped_by == "press" and rec.frames == 40


def test_read_pcm_decodes_phone_formats(english_wav, tmp_path):
    from tests.phone_audio import encode

    m4a = encode(english_wav, "m4a", tmp_path)
    pcm = sound.read_pcm(m4a)
    assert abs(len(pcm) - len(pcm_of(english_wav))) < 0.1 * 32000
    assert sound.read_pcm(english_wav) == pcm_of(english_wav)
