"""Audio files in every format phones send, made with the real sox and ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

#: name -> (suffix, how to make it from a 16 kHz WAV)
FORMATS = ("wav", "mp3", "m4a", "ogg", "webm", "3gp")


def _run(cmd: list[str]) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {out.stderr[-400:]}")


def tone_wav(path: Path, seconds: float = 2.0, freq: int = 440, rate: int = 16000) -> Path:
    """A repeatable sine tone (sox -R) with a short fade, as a 16-bit mono WAV."""
    _run(["sox", "-R", "-n", "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer",
          str(path), "synth", str(seconds), "sine", str(freq), "fade", "0.05", str(seconds), "0.05",
          "vol", "0.5"])
    return path


def speech_wav(path: Path, text: str, voice: str = "en") -> Path:
    """Speech from espeak-ng, resampled repeatably to 16 kHz mono 16-bit."""
    raw = path.with_suffix(".espeak.wav")
    _run(["espeak-ng", "-v", voice, "-w", str(raw), text])
    _run(["sox", "-R", str(raw), "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer", str(path)])
    raw.unlink()
    return path


def encode(src_wav: Path, fmt: str, out_dir: Path) -> Path:
    """Encode *src_wav* the way a phone would send it."""
    out = out_dir / f"{src_wav.stem}-phone.{fmt}"
    ff = ["ffmpeg", "-v", "error", "-y", "-i", str(src_wav)]
    if fmt == "wav":
        _run(ff + ["-c:a", "pcm_s16le", str(out)])
    elif fmt == "mp3":
        _run(ff + ["-c:a", "libmp3lame", "-b:a", "64k", str(out)])
    elif fmt == "m4a":
        _run(ff + ["-c:a", "aac", "-b:a", "64k", str(out)])
    elif fmt == "ogg":
        _run(ff + ["-c:a", "libopus", "-b:a", "24k", str(out)])
    elif fmt == "webm":
        _run(ff + ["-c:a", "libopus", "-b:a", "24k", "-f", "webm", str(out)])
    elif fmt == "3gp":
        # Debian's ffmpeg cannot encode AMR: sox makes AMR-NB, ffmpeg wraps it as 3gp.
        amr = out_dir / f"{src_wav.stem}.amr"
        _run(["sox", "-R", str(src_wav), "-t", "amr-nb", "-r", "8000", "-c", "1", str(amr)])
        _run(["ffmpeg", "-v", "error", "-y", "-i", str(amr), "-c", "copy", str(out)])
    else:
        raise ValueError(fmt)
    return out


def streamed_webm(path: Path, seconds: float, bitrate: str = "6k") -> Path:
    """A WebM/Opus as a browser's MediaRecorder writes it: muxed to a pipe, so it has no duration.

    A sine tone from ffmpeg's lavfi source, written by ffmpeg to stdout (it cannot seek back
    to fill the duration in), and the stream saved as it came.
    """
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=300:sample_rate=16000:duration={seconds}",
           "-ac", "1", "-c:a", "libopus", "-b:a", bitrate, "-f", "webm", "pipe:1"]
    with open(path, "wb") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, text=False)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {done.stderr[-400:]!r}")
    return path
