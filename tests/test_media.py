"""Uploads: checked by content with the real ffprobe, converted with the real ffmpeg."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import wave

import pytest

from hub.core.context import open_context
from hub.core.files import write_durably
from hub.core.media import MediaError, probe
from hub.migrations import MIGRATIONS
from tests.conftest import ROOT, no_memory_lock
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
    assert mode(target) == "0o640"


def mode(path) -> str:
    return oct(stat.S_IMODE(os.stat(path).st_mode))


@pytest.mark.parametrize("umask", [0o077, 0o027, 0o022])
def test_media_is_readable_by_the_hubs_group_whatever_the_umask(make_settings, tmp_path, umask):
    """nginx's user is in the hub's group: files 0640, in a 0750 directory it can enter."""
    png = tmp_path / "photo.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=64x48",
                    "-frames:v", "1", str(png)], check=True)
    mp3 = encode(tone_wav(tmp_path / "tone.wav", seconds=1.0), "mp3", tmp_path)
    settings = make_settings(data_dir=tmp_path / "new" / "data")
    old = os.umask(umask)
    try:
        ctx = open_context(settings, MIGRATIONS)
        try:
            audio = ctx.media.prepare_audio(mp3)
            image = ctx.media.prepare_image(png)
        finally:
            ctx.close()
    finally:
        os.umask(old)
    assert mode(settings.data_dir) == "0o750"
    assert mode(settings.media_dir) == "0o750"
    names = [audio["master_name"], audio["web_name"], audio["loud_name"], image["web_name"]]
    assert {n: mode(settings.media_dir / n) for n in names} == dict.fromkeys(names, "0o640")
    assert sorted(p.name for p in settings.media_dir.iterdir()) == sorted(names)


def test_hub_migrate_makes_the_media_directory_the_group_can_enter(tmp_path):
    data = tmp_path / "data"
    config = tmp_path / "hub.toml"
    config.write_text(f'data_dir = "{data}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    r = subprocess.run([sys.executable, "-m", "hub.cli", "--config", str(config), "migrate"],
                       capture_output=True, text=True, env=env, umask=0o077)
    assert r.returncode == 0, r.stderr
    assert mode(data) == "0o750" and mode(data / "media") == "0o750"
    # A media directory left 0700 (by an older hub, or a strict umask) gets its mode back.
    (data / "media").chmod(0o700)
    r = subprocess.run([sys.executable, "-m", "hub.cli", "--config", str(config), "migrate"],
                       capture_output=True, text=True, env=env, umask=0o077)
    assert r.returncode == 0, r.stderr
    assert mode(data / "media") == "0o750"


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
    # Pages lost in the middle of a longer recording: ffmpeg skips them and exits 0; what it
    # decoded is shorter than the file promised.
    ogg = encode(tone_wav(tmp_path / "long.wav", seconds=6.0), "ogg", tmp_path)
    data = ogg.read_bytes()
    third = len(data) // 3
    middle = tmp_path / "middle.ogg"
    middle.write_bytes(data[:third] + bytes(b ^ 0xFF for b in data[third:third + third // 2])
                       + data[third + third // 2:])
    with pytest.raises(MediaError) as e:
        ctx.media.prepare_audio(middle)
    assert e.value.code == "unreadable"
    assert ctx.media.prepare_audio(ogg)["duration_ms"] > 5900
    assert len(list(ctx.settings.media_dir.iterdir())) == 3


def test_damaged_and_truncated_pictures_are_refused(ctx, tmp_path):
    for ext in ("jpg", "png"):
        good = tmp_path / f"photo.{ext}"
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=640x480",
                        "-frames:v", "1", str(good)], check=True)
        data = good.read_bytes()
        cut = tmp_path / f"cut.{ext}"
        cut.write_bytes(data[: len(data) // 2])
        flipped = bytearray(data)
        for i in range(300, len(flipped) - 100, 97):
            flipped[i] ^= 0x55
        damaged = tmp_path / f"damaged.{ext}"
        damaged.write_bytes(bytes(flipped))
        for f in (cut, damaged):
            with pytest.raises(MediaError) as e:
                ctx.media.prepare_image(f)
            assert e.value.code == "unreadable", f
        assert ctx.media.prepare_image(good)["web_name"].endswith(".web.jpg")
    assert len(list(ctx.settings.media_dir.iterdir())) == 2


CONVERT_EVERY_FILE = """
import json, sys, tempfile
from pathlib import Path
from hub.core.media import MediaError, convert_audio, convert_image
from hub.migrations import MIGRATIONS

out = {}
for name in sys.argv[1:]:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if name.endswith(".png"):
                out[Path(name).name] = convert_image(Path(name), Path(tmp))["original_format"]
            else:
                out[Path(name).name] = round(convert_audio(Path(name), Path(tmp))["duration"], 1)
        except MediaError as e:
            out[Path(name).name] = str(e)
print(json.dumps(out))
"""


def test_a_harmless_line_on_stderr_does_not_refuse_good_files(phone_files, tmp_path):
    """Under a memory-lock limit (as a service can be), ffmpeg prints libgcrypt's warning
    on stderr, exits 0 and writes good output: every phone format and a picture still pass."""
    prefix = no_memory_lock()
    wav = str(phone_files["wav"])
    plain = subprocess.run(["ffmpeg", "-v", "error", "-i", wav, "-f", "null", "-"],
                           capture_output=True, text=True)
    assert plain.returncode == 0 and plain.stderr == "", plain.stderr
    warned = subprocess.run([*prefix, "ffmpeg", "-v", "error", "-i", wav, "-f", "null", "-"],
                            capture_output=True, text=True)
    assert warned.returncode == 0, warned.stderr
    assert warned.stderr.strip() == "Warning: using insecure memory!", warned.stderr
    png = tmp_path / "photo.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=64x48",
                    "-frames:v", "1", str(png)], check=True)
    files = [str(phone_files[fmt]) for fmt in FORMATS] + [str(png)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    r = subprocess.run([*prefix, sys.executable, "-c", CONVERT_EVERY_FILE, *files],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    expected = {**{phone_files[fmt].name: 2.0 for fmt in FORMATS}, "photo.png": "png"}
    assert result == expected


@pytest.fixture
def counted_execs(tmp_path, monkeypatch):
    """Put stand-ins for ffmpeg and ffprobe first on PATH that log each run and exec the real program."""
    import shutil

    bin_dir = tmp_path / "counting-bin"
    bin_dir.mkdir()
    log = tmp_path / "execs.log"
    for name in ("ffmpeg", "ffprobe"):
        real = shutil.which(name)
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\necho {name} >> "{log}"\nexec "{real}" "$@"\n')
        shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def runs() -> dict[str, int]:
        names = log.read_text().split() if log.exists() else []
        log.unlink(missing_ok=True)
        return {n: names.count(n) for n in sorted(set(names))}

    return runs


@pytest.mark.parametrize("fmt", ["ogg", "3gp", "m4a"])
def test_one_voice_upload_is_one_ffprobe_and_one_ffmpeg_run(ctx, phone_files, counted_execs, fmt):
    """A voice upload decodes once: ffprobe reads the container, one ffmpeg run writes all three copies
    (it was two ffprobe and three ffmpeg runs, each decoding again)."""
    counted_execs()
    row = ctx.media.prepare_audio(phone_files[fmt], max_seconds=300)
    assert counted_execs() == {"ffmpeg": 1, "ffprobe": 1}
    assert 1.8 < row["duration_ms"] / 1000 < 2.3
    for role in ("master_name", "web_name", "loud_name"):
        assert (ctx.settings.media_dir / row[role]).stat().st_size > 0
