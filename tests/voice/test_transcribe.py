"""Real Vosk with the Korean model from PyPI; the queue, the no-model path and `hub model install`."""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import zipfile

import pytest

from hub import feedback
from hub.core.errors import HubError
from hub.voice import models as engine
from hub.voice import transcripts
from hub.voice.transcriber_daemon import Transcriber
from tests.voice.conftest import ROOT, pcm_of, run_python

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def test_free_form_is_hangul_with_word_timings(ko_engine, korean_wav):
    result = ko_engine.transcribe_pcm(pcm_of(korean_wav))
    assert HANGUL.search(result.text), result.text
    assert result.words and " ".join(w["word"] for w in result.words) == result.text
    for w in result.words:
        assert 0 <= w["start"] < w["end"] <= result.audio_seconds + 0.05
        assert 0 <= w["conf"] <= 1
    starts = [w["start"] for w in result.words]
    assert starts == sorted(starts)
    assert result.confidence is not None


def test_free_form_is_stable_from_run_to_run(korean_wav, ko_model_dir, tmp_path):
    """Each run is a fresh process, as the transcriber is after a restart.

    (Inside one process Vosk's lazily built lookahead graph warms up, and the
    first few decodes of the same audio may differ; between processes they do not.)
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATA_DIR=str(tmp_path / "data"), HUB_MODEL_DIRS=f'{{ko = "{ko_model_dir}"}}')
    runs = []
    for _ in range(2):
        out = run_python(["-m", "hub.cli", "transcribe", str(korean_wav), "--lang", "ko", "--json"], env)
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        runs.append((data["text"], data["words"]))
    assert HANGUL.search(runs[0][0])
    assert runs[0] == runs[1]


def test_grammar_mode_recognises_the_grammar_words(ko_engine, korean_wav):
    grammar = ["안녕하세요", "오늘", "좋습니다", "하나", "둘", "셋"]
    result = ko_engine.transcribe_pcm(pcm_of(korean_wav), grammar=grammar)
    words = result.text.split()
    assert words and set(words) <= set(grammar), result.text
    assert "안녕하세요" in words and "오늘" in words


def test_hub_transcribe_prints_hangul(korean_wav, ko_model_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATA_DIR=str(tmp_path / "data"), HUB_MODEL_DIRS=f'{{ko = "{ko_model_dir}"}}')
    out = run_python(["-m", "hub.cli", "transcribe", str(korean_wav), "--lang", "ko"], env)
    assert out.returncode == 0, out.stderr
    assert HANGUL.search(out.stdout), out.stdout
    out = run_python(["-m", "hub.cli", "transcribe", str(korean_wav), "--lang", "ko", "--json"], env)
    data = json.loads(out.stdout)
    assert HANGUL.search(data["text"]) and data["words"] and data["lang"] == "ko"
    assert data["real_time_factor"] > 0
    out = run_python(["-m", "hub.cli", "transcribe", str(korean_wav), "--lang", "km"], env)
    assert out.returncode == 1
    assert out.stderr.strip() == ("hub: error: " + engine.no_model_message("km"))


def voice_feedback(ctx, wav, lang: str, consent: bool = False, phone: str = "") -> dict:
    row = ctx.media.prepare_audio(wav)
    return feedback.submit(ctx, {"category": "water", "lang": lang, "consent_share": consent,
                                 "phone": phone}, row, source="portal")


def test_khmer_waits_without_a_model_then_install_transcribes_it(make_settings, korean_wav,
                                                                  ko_model_dir, tmp_path):
    """The done-when path: a waiting state with nothing lost, then `hub model install` and text.

    With no Khmer model anywhere, the Korean model stands in as "a Khmer model"
    a technician installs: the hub cannot tell, and needs no code change.
    """
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS

    settings = make_settings(model_dirs={"ko": str(ko_model_dir)}, transcriber_nice=0)
    ctx = open_context(settings, MIGRATIONS)
    km = voice_feedback(ctx, korean_wav, "km")
    ko = voice_feedback(ctx, korean_wav, "ko")
    daemon = Transcriber(settings)
    daemon.setup()
    try:
        done = daemon.work_once()
        assert done is not None
        assert daemon.work_once() is None  # Khmer: nothing to do, and no error
        t_km = transcripts.for_feedback(ctx.db, km["id"])
        t_ko = transcripts.for_feedback(ctx.db, ko["id"])
        assert t_ko["state"] == "done" and HANGUL.search(t_ko["text"]) and t_ko["words"]
        assert t_km["state"] == "no_model" and t_km["error"] == "" and t_km["attempts"] == 0
        assert ctx.media.path(t_km["master_name"]).is_file()  # the recording is kept
        assert transcripts.waiting_by_language(ctx.db) == {"km": 1}

        from hub.voice import checks as health

        findings = dict((m.split(":")[0], lvl) for lvl, m in health.check(settings, ctx.db))
        assert findings["no speech model for Khmer (km)"] == "warning"

        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env["HUB_DATA_DIR"] = str(settings.data_dir)
        out = run_python(["-m", "hub.cli", "model", "install", str(ko_model_dir), "--lang", "km"], env,
                         timeout=300)
        assert out.returncode == 0, out.stderr
        assert (settings.data_dir / "models" / "km").is_symlink()

        assert daemon.work_once() == t_km["id"]
        t_km = transcripts.get(ctx.db, t_km["id"])
        assert t_km["state"] == "done" and HANGUL.search(t_km["text"])
        assert t_km["model"] == "model"  # named after what was installed
    finally:
        daemon.teardown()
        ctx.close()


def test_clerk_correction_is_kept_beside_the_machine_text(ctx, korean_wav):
    fb = voice_feedback(ctx, korean_wav, "km")
    transcripts.enqueue_new(ctx)
    t = transcripts.for_feedback(ctx.db, fb["id"])
    transcripts.correct(ctx, t["id"], "អណ្តូង\u200bខូច", "clerk1")
    t = transcripts.get(ctx.db, t["id"])
    assert t["corrected_text"] == "អណ្តូងខូច" and t["verified"] == 1 and t["verified_by"] == "clerk1"
    assert t["text"] == "" and t["best_text"] == "អណ្តូងខូច"
    with pytest.raises(KeyError):
        transcripts.correct(ctx, "no-such-id", "x", "clerk1")


def test_an_unreadable_recording_fails_and_can_be_retried(make_settings, korean_wav, ko_model_dir):
    from hub.core.context import open_context
    from hub.migrations import MIGRATIONS

    settings = make_settings(model_dirs={"ko": str(ko_model_dir)}, transcriber_nice=0)
    ctx = open_context(settings, MIGRATIONS)
    fb = voice_feedback(ctx, korean_wav, "ko")
    t = transcripts.for_feedback(ctx.db, fb["id"]) or (transcripts.enqueue_new(ctx), None)[1]
    t = transcripts.for_feedback(ctx.db, fb["id"])
    ctx.media.path(t["master_name"]).write_bytes(b"not audio at all")
    daemon = Transcriber(settings)
    daemon.setup()
    try:
        daemon.work_once()
        t = transcripts.get(ctx.db, t["id"])
        assert t["state"] == "failed" and t["error"]
        transcripts.retry(ctx, t["id"])
        assert transcripts.get(ctx.db, t["id"])["state"] == "pending"
    finally:
        daemon.teardown()
        ctx.close()


def test_a_job_that_keeps_crashing_is_given_up(ctx, korean_wav):
    fb = voice_feedback(ctx, korean_wav, "ko")
    transcripts.enqueue_new(ctx)
    for _ in range(transcripts.MAX_ATTEMPTS):
        assert transcripts.claim(ctx, {"ko"}) is not None  # each claim is an attempt that never finished
    assert transcripts.claim(ctx, {"ko"}) is None
    t = transcripts.for_feedback(ctx.db, fb["id"])
    assert t["state"] == "failed" and "gave up" in t["error"]


def test_transcriber_runs_at_low_priority(ctx):
    """Its own thread (and so Vosk's work) is niced; the web server's threads are not."""
    import threading

    settings = ctx.settings.replace(transcriber_nice=15)
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    daemon = Transcriber(settings)
    seen = {}

    def body():
        daemon.setup()
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        daemon.teardown()

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen["nice"] == max(15, before) and daemon.niceness == seen["nice"]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


# --- model install ---------------------------------------------------------------------------


def fake_model(root) -> object:
    """A directory shaped like a small Vosk model (enough for the shape check, not for Kaldi)."""
    for f in ("am/final.mdl", "graph/HCLG.fst", "conf/mfcc.conf"):
        p = root / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    return root


def test_install_from_zip_and_tar_gz_replaces_atomically(make_settings, tmp_path):
    settings = make_settings()
    model = fake_model(tmp_path / "vosk-model-small-km-0.1")
    z = tmp_path / "m.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in model.rglob("*"):
            zf.write(p, p.relative_to(tmp_path).as_posix())
    link = engine.install_model(z, "km", settings)
    assert link.is_symlink() and engine.model_problem(link) is None
    first = link.resolve()
    assert engine.installed_models(settings) == {"km": link}
    tgz = tmp_path / "m.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(model, arcname="vosk-model-small-km-0.2")
    engine.install_model(tgz, "km", settings)
    assert link.resolve() != first and not first.exists()  # the old copy is gone
    assert json.loads((link / "hub-model.json").read_text())["source"] == "m.tar.gz"
    leftovers = [p.name for p in (settings.data_dir / "models").iterdir()]
    assert sorted(n for n in leftovers if not n.startswith(".")) == ["km"]
    assert len(leftovers) == 2  # the link and the one copy it points to


def _empty_dir(d):
    (d / "empty").mkdir()
    return d / "empty"


def _text_file(d):
    (d / "x.txt").write_text("hi")
    return d / "x.txt"


def _bad_zip(d):
    (d / "bad.zip").write_bytes(b"PK not really")
    return d / "bad.zip"


@pytest.mark.parametrize("make, message", [
    (_empty_dir, "no am/final.mdl"),
    (_text_file, "give a model directory"),
    (_bad_zip, "not a readable zip"),
])
def test_install_refuses_what_is_not_a_model(make_settings, tmp_path, make, message):
    settings = make_settings()
    with pytest.raises(HubError, match=message):
        engine.install_model(make(tmp_path), "km", settings)
    assert engine.installed_models(settings) == {}
    assert not [p for p in (settings.data_dir / "models").iterdir()]  # nothing half-installed


def test_install_refuses_archive_members_outside_the_model(make_settings, tmp_path):
    settings = make_settings()
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escaped.txt", "x")
    with pytest.raises(HubError, match="outside"):
        engine.install_model(evil, "km", settings)
    assert not (tmp_path / "escaped.txt").exists()


def test_model_dirs_setting_takes_a_model_per_language(make_settings, ko_model_dir, tmp_path):
    settings = make_settings(model_dirs={"ko": str(ko_model_dir), "km": str(tmp_path / "missing")})
    assert engine.installed_models(settings) == {"ko": ko_model_dir}
    from hub.voice import checks as health

    levels = [lvl for lvl, m in health.check(settings) if "model_dirs" in m]
    assert levels == ["error"]


def test_vosk_is_never_asked_to_download():
    """Model(lang=...) downloads; the hub only ever loads a directory."""
    sources = "\n".join(p.read_text() for p in (ROOT / "hub" / "voice").glob("*.py"))
    assert "Model(lang" not in sources and "model_name=" not in sources
    assert shutil.which("ffmpeg")


IDLE_SCRIPT = """
import sys, time
from hub.core import settings as settings_mod
from hub.core.context import open_context
from hub.migrations import MIGRATIONS
from hub.voice.transcriber_daemon import Transcriber
from tests.voice.test_transcribe import voice_feedback
from pathlib import Path

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024

data, model, wav = sys.argv[1:4]
settings = settings_mod.load(env={}, overrides={"data_dir": Path(data), "model_dirs": {"ko": model},
                                                "transcriber_nice": 0, "model_idle_seconds": 60})
ctx = open_context(settings, MIGRATIONS)
voice_feedback(ctx, Path(wav), "ko")
d = Transcriber(settings)
d.setup()
before = rss()
assert d.work_once() is not None
d.last_work = time.monotonic()
early = d.release_idle_model()
loaded = rss()
late = d.release_idle_model(now=d.last_work + 61)
freed = rss()
voice_feedback(ctx, Path(wav), "ko")
t0 = time.monotonic()
again = d.work_once() is not None
print(early, late, before, loaded, freed, d.models_loaded, again)
"""


def test_the_model_is_freed_after_the_idle_time_and_loaded_again_for_work(tmp_path, korean_wav, ko_model_dir):
    """In a process of its own, so no other test's engine keeps the model alive."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    out = run_python(["-c", IDLE_SCRIPT, str(tmp_path / "data"), str(ko_model_dir), str(korean_wav)], env,
                     timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    early, late, before, loaded, freed, loads, again = out.stdout.split()[-7:]
    assert early == "False", "freed before the idle time"
    assert late == "True"
    assert int(loaded) - int(before) > 200, (before, loaded)
    assert int(loaded) - int(freed) > 0.8 * (int(loaded) - int(before)), (before, loaded, freed)
    assert loads == "2" and again == "True", "the next job loads the model again"
