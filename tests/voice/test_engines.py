"""Speech engines are chosen by name: a second engine is one file and one line in ENGINES."""

from __future__ import annotations

import json

import pytest

from hub import feedback
from hub.core.context import open_context
from hub.migrations import MIGRATIONS
from hub.voice import engines, models, transcripts
from hub.voice.engines.vosk import VoskEngine
from hub.voice.transcriber_daemon import Transcriber
from tests.voice.conftest import silence
from tests.voice.loudness_engine import MODEL_FILE, LoudnessEngine


@pytest.fixture
def loudness(monkeypatch):
    """The one line a new engine adds to the table."""
    monkeypatch.setitem(engines.ENGINES, "loudness", "tests.voice.loudness_engine:LoudnessEngine")


def loudness_model(tmp_path, word="loud"):
    d = tmp_path / "loudness-model"
    d.mkdir()
    (d / MODEL_FILE).write_text(json.dumps({"word": word}))
    return d


def test_vosk_is_the_default_engine(make_settings):
    assert make_settings().speech_engine == "vosk"
    assert engines.engine_class("vosk") is VoskEngine


def test_an_unknown_engine_is_named_in_the_error():
    with pytest.raises(engines.ModelError, match="speech_engine 'whisper' is not one of: vosk"):
        engines.engine_class("whisper")


def test_a_second_engine_finds_installs_and_transcribes(loudness, make_settings, english_wav, tmp_path):
    settings = make_settings(speech_engine="loudness", transcriber_nice=0)
    assert engines.engine_class("loudness") is LoudnessEngine
    assert models.installed_models(settings) == {}
    with pytest.raises(engines.ModelError, match="not a Loudness model"):
        models.install_model(tmp_path, "km", settings)  # a folder without its file
    link = models.install_model(loudness_model(tmp_path, "ឮ"), "km", settings)
    assert models.installed_models(settings) == {"km": link}

    ctx = open_context(settings, MIGRATIONS)
    row = ctx.media.prepare_audio(english_wav)
    item = feedback.submit(ctx, {"category": "water", "lang": "km"}, row, source="portal")
    daemon = Transcriber(settings)
    daemon.setup()
    try:
        assert daemon.work_once() is not None
    finally:
        daemon.teardown()
    t = transcripts.for_feedback(ctx.db, item["id"])
    assert t["state"] == "done" and t["engine"] == "loudness" and t["model"] == "loudness-model"
    assert "ឮ" in t["text"]
    eng = models.engine_for(settings, "km")
    assert isinstance(eng, LoudnessEngine) and eng.transcribe_pcm(silence(1)).text == ""
    ctx.close()


def test_each_engine_says_which_folders_hold_its_models(loudness, make_settings, ko_model_dir, tmp_path):
    """The same folders seen by two engines: each finds only the models it can load."""
    mine = loudness_model(tmp_path)
    dirs = {"ko": str(ko_model_dir), "km": str(mine)}
    assert models.installed_models(make_settings(model_dirs=dirs)) == {"ko": ko_model_dir}
    assert models.installed_models(make_settings(model_dirs=dirs, speech_engine="loudness")) == {"km": mine}
