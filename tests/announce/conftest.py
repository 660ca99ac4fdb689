"""Fixtures for the announcer: an ALSA file-plugin device, sound made to measure, child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import wave
from array import array
from pathlib import Path

import pytest

from hub.announce.player import CHUNK_FRAMES, FADE_FRAMES, fade_out
from tests.conftest import ROOT

RATE = 48000
CHIME_START = ROOT / "audio" / "chime-start.wav"
CHIME_END = ROOT / "audio" / "chime-end.wav"


class AlsaFile:
    """An ALSA config whose devices ``default`` and ``speaker`` play into numbered raw files."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.out = self.dir / "OUT.raw"
        self.conf = self.dir / "asound.conf"
        dev = (f'type file; slave.pcm {{ type null }}; file "{self.out}"; format "raw";'
               " truncate false")
        self.conf.write_text(f"pcm.!default {{ {dev} }}\npcm.speaker {{ {dev} }}\n")
        self.out_glob = str(self.out) + "*"

    def paced(self, speed: float = 1.0) -> AlsaFile:
        """Make the devices real-time: a pacer reads the sound at 48 kHz into OUT.raw.<ns>
        (*speed* times faster than real time, for tests that need many playouts)."""
        pacer = Path(__file__).with_name("pacer.py")
        dev = (f'type file; slave.pcm {{ type null }};'
               f' file "|{sys.executable} {pacer} {self.out} {speed}"; format "raw"')
        self.conf.write_text(f"pcm.!default {{ {dev} }}\npcm.speaker {{ {dev} }}\n")
        return self

    def files(self) -> list[Path]:
        """One file per stream opened, in order (OUT.raw, OUT.raw.0001, ...)."""
        found = [p for p in self.dir.glob("OUT.raw*")]
        return sorted(found, key=lambda p: (p.name != "OUT.raw", len(p.name), p.name))

    def streams(self) -> list[bytes]:
        return [p.read_bytes() for p in self.files()]

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HUB_", "GPIOZERO_", "NOTIFY_", "WATCHDOG_"))}
        env.update(ALSA_CONFIG_PATH=str(self.conf), PYTHONPATH=str(ROOT), **extra)
        return env


@pytest.fixture
def alsa(tmp_path) -> AlsaFile:
    return AlsaFile(tmp_path / "alsa")


def frames(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def silence(seconds: float) -> bytes:
    return b"\0\0" * int(round(seconds * RATE))


def expected_programme(audio: bytes, repeats: int = 1, volume: float = 1.0) -> bytes:
    """What the speaker must receive, built here from the spec, not from the player's code:
    start chime, 0.3 s, the audio (repeats, 1 s apart), 0.3 s, end chime."""
    body = (silence(1.0)).join([audio] * repeats)
    out = frames(CHIME_START) + silence(0.3) + body + silence(0.3) + frames(CHIME_END)
    if volume < 1.0:
        out = array("h", (int(s * volume) for s in array("h", out))).tobytes()
    return out


def write_wav(path: Path, data: bytes, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data)
    return path


def signature(value: int, seconds: float = 0.2) -> bytes:
    """A block of one repeated sample value: easy to find again in the output."""
    return array("h", [value] * int(seconds * RATE)).tobytes()


def add_loud_media(ctx, data: bytes) -> str:
    """A media row whose loudspeaker copy is exactly *data* (skips ffmpeg, for speed)."""
    from hub.core.db import new_id, transaction, utcnow

    media_id = new_id()
    name = f"{media_id}.loud.wav"
    write_wav(ctx.settings.media_dir / name, data)
    web = f"{media_id}.web.mp3"
    (ctx.settings.media_dir / web).write_bytes(b"")
    row = {"id": media_id, "hub_id": ctx.hub_id, "kind": "audio", "master_name": None,
           "web_name": web, "web_type": "audio/mpeg", "loud_name": name,
           "duration_ms": len(data) // 2 * 1000 // RATE, "bytes": 0, "sha256": "-",
           "original_format": "wav", "created_at": utcnow()}
    with transaction(ctx.db) as conn:
        ctx.media.insert(conn, row)
    return media_id


class DaemonRun:
    """The announcer in a child process (tests/announce/harness.py, mode ``daemon``)."""

    def __init__(self, tmp_path: Path, alsa: AlsaFile, settings: dict, ntp: bool = True,
                 offset: float = 0.0, name: str = "daemon"):
        self.dir = tmp_path / name
        self.dir.mkdir(exist_ok=True)
        self.ready_file = self.dir / "ready"
        self.stop_file = self.dir / "stop"
        self.report_file = self.dir / "report.json"
        cfg = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()},
               "ntp": ntp, "offset": offset, "out_glob": alsa.out_glob,
               "ready_file": str(self.ready_file), "stop_file": str(self.stop_file),
               "report": str(self.report_file), "max_seconds": 120}
        (self.dir / "cfg.json").write_text(json.dumps(cfg))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.announce.harness", "daemon", str(self.dir / "cfg.json")],
            env=alsa.env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self.ready_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(self.proc.stdout.read().decode()[-3000:])
            time.sleep(0.02)

    def stop(self) -> dict:
        self.stop_file.write_text("stop")
        out, _ = self.proc.communicate(timeout=30)
        self.output = out.decode()
        assert self.proc.returncode == 0, self.output[-3000:]
        report = json.loads(self.report_file.read_text())
        assert not report["hung"], "the announcer thread did not stop"
        return report


def assert_cut_cleanly(cut: bytes, whole: bytes) -> None:
    """*cut* is *whole* up to a chunk boundary, then the next 30 ms fading to silence (no click)."""
    k = len(cut) - FADE_FRAMES * 2
    assert k > 0 and k % (CHUNK_FRAMES * 2) == 0, (len(cut), k)
    assert whole.startswith(cut[:k])
    assert cut[k:] == fade_out(whole[k:k + CHUNK_FRAMES * 2])
    last = int.from_bytes(cut[-2:], "little", signed=True)
    assert abs(last) <= 32768 // FADE_FRAMES + 1  # ends one step from silence


def wait_for(predicate, timeout: float = 15.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
