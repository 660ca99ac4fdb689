"""`hub announce play X`: phone formats through ffmpeg, PyAudio into an ALSA file device, relay.

Each run is a child process with ALSA_CONFIG_PATH set from its start, so the
ALSA file-plugin device is the only sound device it sees.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hub.core.media import convert_audio
from tests.announce.conftest import RATE, expected_programme, frames
from tests.conftest import ROOT
from tests.phone_audio import encode, speech_wav, tone_wav

HUB = Path(sys.executable).parent / "hub"


@pytest.fixture(scope="module")
def phone_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("phone")
    speech = speech_wav(d / "speech.wav", "commune meeting on Monday", voice="en")
    # A quiet hum under the speech, as a real room has: sox's AMR encoder turns pure digital
    # silence into DTX frames, which the media pipeline's ffmpeg refuses (see the report).
    seconds = subprocess.run(["soxi", "-D", str(speech)], capture_output=True, text=True).stdout
    bed = tone_wav(d / "bed.wav", seconds=float(seconds), freq=300)
    src = d / "voice.wav"
    subprocess.run(["sox", "-R", "-m", "-v", "1", str(speech), "-v", "0.1", str(bed), str(src)],
                   check=True)
    return {fmt: encode(src, fmt, d) for fmt in ("wav", "mp3", "m4a", "ogg", "3gp")}


def cli_env(alsa, **extra):
    settings = {"GPIOZERO_PIN_FACTORY": "mock", "HUB_AMPLIFIER_PIN": "GPIO17",
                "HUB_AMPLIFIER_WARMUP_SECONDS": "0.05", "HUB_DATA_DIR": str(alsa.dir / "data")}
    return alsa.env(**{**settings, **extra})


@pytest.mark.parametrize("fmt", ["m4a", "3gp", "ogg", "mp3", "wav"])
def test_play_writes_chimes_and_the_decoded_file(fmt, phone_files, alsa, tmp_path):
    """The console script itself, as a technician runs it (opus is the ogg file, AMR the 3gp)."""
    src = phone_files[fmt]
    r = subprocess.run([str(HUB), "announce", "play", str(src)], env=cli_env(alsa),
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "amplifier on" in r.stdout and r.stdout.strip().splitlines()[-2] == "amplifier off"
    # PortAudio/ALSA/JACK start-up noise is silenced in the application.
    assert r.stderr == "", r.stderr
    (stream,) = alsa.streams()
    decoded = frames(convert_audio(src, _fresh(tmp_path / "expect"))["loud"])
    assert stream == expected_programme(decoded)
    assert len(decoded) > RATE  # real sound: more than half a second of it


def _fresh(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def test_relay_is_on_before_the_first_sample_and_off_after_the_last(phone_files, alsa, tmp_path):
    """Through hub.cli.main in the harness, whose mock pins note the bytes written at each switch."""
    cfg = tmp_path / "cfg.json"
    report = tmp_path / "report.json"
    cfg.write_text(json.dumps({"argv": ["announce", "play", "--repeats", "2",
                                        str(phone_files["m4a"])],
                               "out_glob": alsa.out_glob, "report": str(report)}))
    env = cli_env(alsa, HUB_AMPLIFIER_WARMUP_SECONDS="0.3")
    r = subprocess.run([sys.executable, "-m", "tests.announce.harness", "cli", str(cfg)],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rep = json.loads(report.read_text())
    assert rep["rc"] == 0
    relay = [c for c in rep["changes"] if c[0] == "GPIO17"]
    assert [c[2] for c in relay] == [True, False]
    (on, off) = relay
    total = sum(len(s) for s in alsa.streams())
    assert on[3] == 0, "sound was written before the relay closed"
    assert off[3] == total, "the relay opened before the last sample was written"
    first_growth = rep["growth"][0][0]
    assert first_growth - on[1] >= 0.3, "no warm-up between relay on and the first sound"
    decoded = frames(convert_audio(phone_files["m4a"], _fresh(tmp_path / "x"))["loud"])
    assert alsa.streams() == [expected_programme(decoded, repeats=2)]


def test_volume_scales_the_samples(phone_files, alsa, tmp_path):
    r = subprocess.run([str(HUB), "announce", "play", str(phone_files["wav"])],
                       env=cli_env(alsa, HUB_VOLUME="0.5"), capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    decoded = frames(convert_audio(phone_files["wav"], _fresh(tmp_path / "x"))["loud"])
    assert alsa.streams() == [expected_programme(decoded, volume=0.5)]


def test_missing_device_is_one_line_and_nonzero(phone_files, alsa, tmp_path):
    r = subprocess.run([str(HUB), "announce", "play", str(phone_files["wav"])],
                       env=cli_env(alsa, HUB_AUDIO_OUTPUT_DEVICE="hw:7,0"),
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "sound device 'hw:7,0' not found" in r.stderr
    assert "Traceback" not in r.stderr
    assert alsa.streams() == []
    assert "amplifier on" not in r.stdout  # the relay never clicked for nothing


@pytest.mark.parametrize("content", [b"this is a text file, not sound\n" * 50, b""])
def test_bad_file_is_one_line_and_nonzero(content, alsa, tmp_path):
    bad = tmp_path / "notice.m4a"
    bad.write_bytes(content)
    r = subprocess.run([str(HUB), "announce", "play", str(bad)], env=cli_env(alsa),
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 1, r.stdout
    assert r.stderr.startswith("hub: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "not a sound file" in r.stderr
    assert alsa.streams() == []


def test_missing_file_is_one_line_and_nonzero(alsa, tmp_path):
    r = subprocess.run([str(HUB), "announce", "play", str(tmp_path / "nope.mp3")],
                       env=cli_env(alsa), capture_output=True, text=True, cwd=tmp_path,
                       timeout=60)
    assert r.returncode == 1 and r.stderr.strip().endswith("nope.mp3: no such file")


def test_devices_lists_the_alsa_devices(alsa, tmp_path):
    r = subprocess.run([str(HUB), "announce", "devices"],
                       env=cli_env(alsa, HUB_AUDIO_OUTPUT_DEVICE="speaker"),
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "* speaker" in r.stdout.splitlines() and "  default" in r.stdout.splitlines()


def test_tone_survives_the_whole_path_bit_for_bit(alsa, tmp_path):
    """A 48 kHz WAV needs no resampling: the loudness-normalised copy is what reaches the file."""
    src = tone_wav(tmp_path / "tone.wav", seconds=1.0, freq=660, rate=48000)
    r = subprocess.run([str(HUB), "announce", "play", str(src)], env=cli_env(alsa),
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    (stream,) = alsa.streams()
    decoded = frames(convert_audio(src, _fresh(tmp_path / "x"))["loud"])
    assert stream == expected_programme(decoded)
    start = len(frames(ROOT / "audio" / "chime-start.wav")) + int(0.3 * RATE) * 2
    assert stream[start:start + len(decoded)] == decoded
