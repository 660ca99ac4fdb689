"""PyAudio capture from ALSA's file plugin, through voice detection, to a stored feedback item.

Each run is its own process: ALSA reads ALSA_CONFIG_PATH once, before PyAudio() exists.
"""

from __future__ import annotations

import json
import re

import pytest

from hub import feedback
from hub.core.context import open_context
from hub.core.settings import load
from hub.migrations import MIGRATIONS
from hub.voice import transcripts
from hub.voice.kiosk import START_PROMPTS
from hub.voice.prompts import PromptPlayer, digit_keys
from tests.phone_audio import speech_wav
from tests.voice.conftest import pcm_of, run_python, silence

pytestmark = pytest.mark.slow
BYTES_PER_SECOND = 32000


def speech_bounds(pcm: bytes) -> tuple[int, int]:
    """Byte offsets of the first and last sample louder than a whisper."""
    import array

    samples = array.array("h", pcm)
    loud = [i for i, s in enumerate(samples) if abs(s) > 300]
    return loud[0] * 2, (loud[-1] + 1) * 2


def stored_master(data_dir, feedback_id):
    ctx = open_context(load(env={"HUB_DATA_DIR": str(data_dir)}), MIGRATIONS)
    item = feedback.get(ctx.db, feedback_id)
    media = ctx.media.get(item["audio_id"])
    master = pcm_of(ctx.media.path(media["master_name"]))
    return ctx, item, master


def assert_trimmed_copy(master: bytes, source: bytes, speech: tuple[int, int]) -> int:
    """*master* is a contiguous piece of *source*, shorter, and holds all of the speech."""
    offset = source.find(master)
    assert offset >= 0, "the stored audio is not the captured samples"
    assert offset % 2 == 0
    assert len(master) < len(source)
    tolerance = int(0.1 * BYTES_PER_SECOND)
    assert offset <= speech[0] + tolerance, "speech was cut at the start"
    assert offset + len(master) >= speech[1] - tolerance, "speech was cut at the end"
    # Trimmed: at most the margin (0.3 s) plus a frame of silence on each side.
    assert speech[0] - offset <= 0.36 * BYTES_PER_SECOND + tolerance
    assert offset + len(master) - speech[1] <= 0.36 * BYTES_PER_SECOND + tolerance
    return offset


KIOSK = {"button_pin": "GPIO27", "button_led_pin": "GPIO22", "silence_stop_seconds": "1.5",
         "max_record_seconds": "60", "kiosk_language": "km"}


def test_kiosk_turn_records_trims_stores_and_reads_the_receipt_out(english_wav, alsa_files, tmp_path):
    speech = pcm_of(english_wav)
    captured = silence(0.6) + speech + silence(8)
    alsa = alsa_files(captured)
    data = tmp_path / "data"
    out = run_python(["-m", "tests.voice.kiosk_run", "turn"], alsa.env(data, **KIOSK))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ALSA lib" not in out.stderr and "jack" not in out.stderr.lower(), out.stderr[-1000:]
    report = json.loads(out.stdout)
    result = report["result"]
    assert result["outcome"] == "saved", report
    assert result["stopped_by"] == "silence"
    assert report["presses"] == 1 and report["stopped"]
    assert report["led_idle"] == "ready" and report["led_after"] == "ready"
    assert report["led_pin_changes"] >= 3  # off at the start, then at least one whole ready pulse

    ctx, item, master = stored_master(data, result["feedback_id"])
    assert item["source"] == "kiosk" and item["lang"] == "km" and item["receipt"] == result["receipt"]
    bounds = speech_bounds(captured)
    assert_trimmed_copy(master, captured, bounds)

    # What the villager heard: the start prompts and beep, then thanks and the receipt digit by digit.
    player = PromptPlayer(ctx)
    played = alsa.played()
    assert len(played) == 2, [len(p) for p in played]
    assert played[0] == player.sequence(START_PROMPTS)
    assert played[1] == player.sequence(["thank_you_number", *digit_keys(result["receipt"])])
    # And the recording waits in the one transcription queue.
    t = transcripts.for_feedback(ctx.db, item["id"])
    assert t["state"] == "pending" and t["lang"] == "km" and t["source"] == "kiosk"
    ctx.close()


def test_a_second_press_ends_the_recording(english_wav, alsa_files, tmp_path):
    captured = silence(0.3) + pcm_of(english_wav) + silence(200)
    alsa = alsa_files(captured)
    # The file device delivers audio far faster than real time: give the press room.
    env = alsa.env(tmp_path / "data", **{**KIOSK, "silence_stop_seconds": "140",
                                         "max_record_seconds": "150", "debounce_ms": "0"})
    out = run_python(["-m", "tests.voice.kiosk_run", "press-stop"], env)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["presses"] == 2
    assert report["result"]["outcome"] == "saved", report
    assert report["result"]["stopped_by"] == "press"
    assert report["result"]["recorded_seconds"] < 150


def test_full_storage_refuses_and_says_why(english_wav, alsa_files, tmp_path):
    alsa = alsa_files(silence(0.3) + pcm_of(english_wav) + silence(5))
    data = tmp_path / "data"
    out = run_python(["-m", "tests.voice.kiosk_run", "turn"],
                     alsa.env(data, **KIOSK, min_free_mb=str(10**9)))
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["result"]["outcome"] == "refused" and report["result"]["reason"] == "disk_full"
    assert report["led_idle"] == "refused" and report["led_after"] == "refused"
    ctx = open_context(load(env={"HUB_DATA_DIR": str(data)}), MIGRATIONS)
    assert ctx.db.execute("select count(*) from feedback").fetchone()[0] == 0
    assert alsa.played() == [PromptPlayer(ctx).sequence(["disk_full"])]
    ctx.close()


def test_silence_only_is_too_short_and_nothing_is_stored(alsa_files, tmp_path):
    alsa = alsa_files(silence(10))
    data = tmp_path / "data"
    out = run_python(["-m", "tests.voice.kiosk_run", "turn"], alsa.env(data, **KIOSK))
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["result"]["outcome"] == "too_short"
    ctx = open_context(load(env={"HUB_DATA_DIR": str(data)}), MIGRATIONS)
    assert ctx.db.execute("select count(*) from feedback").fetchone()[0] == 0
    assert alsa.played()[-1] == PromptPlayer(ctx).sequence(["too_short"])
    ctx.close()


def test_hub_record_stores_the_input_samples_trimmed(alsa_files, tmp_path, speech_dir):
    short = speech_wav(speech_dir / "short.wav", "the well is broken", voice="en")
    captured = silence(0.5) + pcm_of(short) + silence(10)
    bounds = speech_bounds(captured)
    assert bounds[1] < 3 * BYTES_PER_SECOND
    alsa = alsa_files(captured)
    data = tmp_path / "data"
    out = run_python(["-m", "hub.cli", "record", "--seconds", "3"], alsa.env(data))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ALSA lib" not in out.stderr, out.stderr
    m = re.search(r"feedback (\S+) receipt (\d{8}): recorded 3\.00 s", out.stdout)
    assert m, out.stdout
    ctx, item, master = stored_master(data, m.group(1))
    assert item["source"] == "kiosk" and item["receipt"] == m.group(2)
    offset = assert_trimmed_copy(master, captured, bounds)
    assert offset > 0 and offset + len(master) <= 3 * BYTES_PER_SECOND
    ctx.close()


def test_hub_record_refuses_silence_with_one_line(alsa_files, tmp_path):
    alsa = alsa_files(silence(10))
    out = run_python(["-m", "hub.cli", "record", "--seconds", "2"], alsa.env(tmp_path / "data"))
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith("hub: error: heard no speech")


def test_alsa_and_jack_start_up_noise_is_silenced(alsa_files, tmp_path):
    alsa = alsa_files(silence(1))
    env = alsa.env(tmp_path / "data")
    make = "import pyaudio; p = pyaudio.PyAudio(); print(p.get_device_count()); p.terminate()"
    loud = run_python(["-c", make], env)
    quiet = run_python(["-c", "from hub.core.audio import quiet_audio_libraries;"
                              " quiet_audio_libraries(); " + make], env)
    assert loud.returncode == quiet.returncode == 0
    assert loud.stderr.strip(), "PortAudio was silent anyway: this test proves nothing here"
    assert quiet.stderr == "" and quiet.stdout == loud.stdout
