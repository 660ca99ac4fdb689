"""Uploads: checked by content with the real ffprobe, converted with the real ffmpeg."""

from __future__ import annotations

import json
import subprocess
import wave

import pytest

from hub.core.media import MediaError, probe, write_durably
from tests.phone_audio import FORMATS, encode, tone_wav


@pytest.fixture(scope="module")
def phone_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("phone")
    src = tone_wav(d / "tone.wav", seconds=2.0)
    return {fmt: encode(src, fmt, d) for fmt in FORMATS}


def loudness(path) -> float:
    out = subprocess.run(["ffmpeg", "-nostats", "-i", str(path), "-af", "ebur128", "-f", "null", "-"],
                         capture_output=True, text=True).stderr
    summary = out[out.rfind("Summary:"):]
    return float(summary.split("I:")[1].split("LUFS")[0])


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_phone_format_becomes_master_web_and_loud_copies(ctx, phone_files, fmt):
    row = ctx.media.prepare_audio(phone_files[fmt])
    master = ctx.settings.media_dir / row["master_name"]
    with wave.open(str(master)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert 1.8 < w.getnframes() / 16000 < 2.3
    info = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams",
         str(ctx.settings.media_dir / row["web_name"])], capture_output=True).stdout)
    assert info["streams"][0]["codec_name"] == "mp3"
    assert row["web_type"] == "audio/mpeg"
    assert abs(loudness(ctx.settings.media_dir / row["loud_name"]) - (-16)) < 2.0


def test_garbage_and_truncated_files_are_refused_and_leave_nothing(ctx, phone_files, tmp_path):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"ID3" + bytes(range(256)) * 50)
    truncated = tmp_path / "cut.m4a"
    truncated.write_bytes(phone_files["m4a"].read_bytes()[:600])
    text = tmp_path / "page.ogg"
    text.write_text("<html><body>not audio</body></html>")
    for f in (bad, truncated, text):
        with pytest.raises(MediaError):
            ctx.media.prepare_audio(f)
    assert list(ctx.settings.media_dir.iterdir()) == []


def test_an_image_is_not_audio(ctx, tmp_path):
    png = tmp_path / "x.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=blue:s=32x32", "-frames:v", "1",
                    str(png)], check=True)
    assert probe(png).codec_type == "video"
    with pytest.raises(MediaError) as e:
        ctx.media.prepare_audio(png)
    assert e.value.code == "not_audio"
    row = ctx.media.prepare_image(png)
    assert row["web_name"].endswith(".web.jpg")


def test_durable_write_replaces_whole_and_leaves_no_temp(tmp_path):
    target = tmp_path / "x.bin"
    write_durably(target, b"old")
    write_durably(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_names_are_made_by_the_server(ctx, phone_files):
    row = ctx.media.prepare_audio(phone_files["wav"])
    assert row["web_name"] == f"{row['id']}.web.mp3"
    with pytest.raises(ValueError):
        ctx.media.path("../hub.db")


def test_amr_with_pauses_from_a_real_phone_is_accepted(ctx, tmp_path):
    """AMR phones send comfort-noise (DTX) frames in pauses; ffmpeg skips them with complaints."""
    wav = tmp_path / "pause.wav"
    subprocess.run(["sox", "-R", "-n", "-r", "8000", "-c", "1", "-b", "16", str(wav), "synth", "1", "sine", "440",
                    "vol", "0.5", ":", "synth", "2", "sine", "0", "vol", "0", ":", "synth", "1", "sine", "440",
                    "vol", "0.5"], check=True, capture_output=True)
    amr = tmp_path / "pause.amr"
    subprocess.run(["sox", "-R", str(wav), "-t", "amr-nb", "-r", "8000", "-c", "1", str(amr)], check=True)
    three_gp = tmp_path / "pause.3gp"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(amr), "-c", "copy", str(three_gp)], check=True)
    row = ctx.media.prepare_audio(three_gp)
    assert row["original_format"] == "m4a/3gp" and row["duration_ms"] >= 1800  # both tones survive


def test_decode_errors_in_other_codecs_still_refuse(ctx, phone_files, tmp_path):
    damaged = tmp_path / "damaged.ogg"
    data = bytearray(phone_files["ogg"].read_bytes())
    for i in range(200, len(data) - 200, 50):
        data[i] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(MediaError):
        ctx.media.prepare_audio(damaged)
