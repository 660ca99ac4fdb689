"""The player's programme and checks that need no sound device (the device tests run in
child processes: test_play_command.py, test_daemon.py)."""

from __future__ import annotations

from array import array

import pytest

from hub.announce.player import END_CHIME, START_CHIME, Clip, ClipError, programme, scale
from tests.announce.conftest import RATE, signature, write_wav


def test_programme_is_chime_audio_repeats_chime(tmp_path):
    audio = write_wav(tmp_path / "a.wav", signature(10, 0.1))
    clips = programme(audio, repeats=3)
    assert clips[0] == Clip.wav(START_CHIME) and clips[-1] == Clip.wav(END_CHIME)
    assert [c.path for c in clips].count(audio) == 3
    assert [c.silence for c in clips if c.path is None] == [0.3, 1.0, 1.0, 0.3]


def test_a_missing_chime_does_not_silence_the_announcement(tmp_path, caplog):
    audio = write_wav(tmp_path / "a.wav", signature(10, 0.1))
    clips = programme(audio, start_chime=tmp_path / "gone.wav", end_chime=tmp_path / "gone.wav")
    assert [c.path for c in clips if c.path] == [audio]
    assert "gone.wav is missing" in caplog.text


def test_only_48k_mono_16bit_wav_is_played(tmp_path):
    assert Clip.wav(write_wav(tmp_path / "ok.wav", signature(1, 0.5))).check() == 0.5
    with pytest.raises(ClipError, match="not 48 kHz mono"):
        Clip.wav(write_wav(tmp_path / "16k.wav", signature(1, 0.5), rate=16000)).check()
    (tmp_path / "junk.wav").write_bytes(b"RIFF....not really")
    with pytest.raises(ClipError, match="not a WAV file"):
        Clip.wav(tmp_path / "junk.wav").check()
    with pytest.raises(ClipError, match="no such file"):
        Clip.wav(tmp_path / "none.wav").check()


def test_silence_and_chunks_add_up():
    chunks = list(Clip.pause(0.3).chunks(2400))
    assert b"".join(chunks) == b"\0\0" * int(0.3 * RATE)
    assert max(len(c) for c in chunks) == 4800


def test_volume_scales_toward_zero():
    data = array("h", [1000, -1000, 32767, -32768, 3]).tobytes()
    assert array("h", scale(data, 0.5)).tolist() == [500, -500, 16383, -16384, 1]
    assert scale(data, 1.0) is data
