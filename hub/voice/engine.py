"""Speech recognition engines, and the speech models installed per language.

A model for a language is found, in order, in the ``model_dirs`` setting
(``{km = "/path"}``) and under ``DATA_DIR/models/<lang>``, where
``hub model install`` puts it. Adding one needs no code change: the
transcriber looks again before every job.

Models are only ever loaded from a directory; nothing here downloads.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hub.core.errors import HubError

LANGUAGE_NAMES = {"km": "Khmer", "en": "English", "ko": "Korean"}
#: Audio fed to the recogniser per call: 0.25 s, so a long job still beats often.
CHUNK_BYTES = 8000


class ModelError(HubError):
    """A speech model is missing or not usable."""


@dataclass
class Result:
    """What an engine heard: the text, and each word with start/end seconds and confidence."""

    text: str
    words: list[dict] = field(default_factory=list)
    audio_seconds: float = 0.0

    @property
    def confidence(self) -> float | None:
        if not self.words:
            return None
        return round(sum(w.get("conf", 0.0) for w in self.words) / len(self.words), 3)


class Engine(Protocol):
    """What the transcriber needs from a speech recogniser."""

    name: str
    model_name: str

    def transcribe_pcm(self, pcm: bytes, grammar: list[str] | None = None,
                       progress: Callable[[], bool] | None = None) -> Result:
        """Recognise 16 kHz mono 16-bit PCM. *progress* is called between chunks;
        returning False abandons the job (the daemon is stopping)."""
        ...


class Abandoned(Exception):
    """A transcription stopped because the daemon is quitting; the job stays pending."""


# --- models on disk --------------------------------------------------------------------------


def model_problem(path: Path) -> str | None:
    """Why *path* is not a Vosk model directory, or None when it looks like one."""
    path = Path(path)
    if not path.is_dir():
        return f"{path} is not a directory"

    def has(*names: str) -> bool:
        return any((path / n).is_file() for n in names)

    if not has("am/final.mdl", "final.mdl"):
        return f"{path} has no am/final.mdl (the acoustic model)"
    if not has("graph/HCLG.fst", "HCLG.fst", "graph/HCLr.fst", "HCLr.fst"):
        return f"{path} has no graph/HCLG.fst or graph/HCLr.fst (the decoding graph)"
    if not has("conf/mfcc.conf", "mfcc.conf"):
        return f"{path} has no conf/mfcc.conf (the feature configuration)"
    return None


def models_dir(settings) -> Path:
    return Path(settings.data_dir) / "models"


def installed_models(settings) -> dict[str, Path]:
    """Usable model directories by language: the settings first, then DATA_DIR/models."""
    found: dict[str, Path] = {}
    for lang, d in (settings.model_dirs or {}).items():
        p = Path(d)
        if model_problem(p) is None:
            found[lang] = p
    root = models_dir(settings)
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if entry.name.startswith(".") or entry.name in found:
                continue
            if model_problem(entry) is None:
                found[entry.name] = entry
    return found


def model_for(settings, lang: str) -> Path | None:
    return installed_models(settings).get(lang)


def no_model_message(lang: str) -> str:
    name = LANGUAGE_NAMES.get(lang, lang)
    return (f"no speech model for {name} ({lang}) is installed; its recordings wait."
            f" Install one with `hub model install DIR_OR_ARCHIVE --lang {lang}`")


def _safe_extract(archive: Path, dest: Path) -> None:
    """Unpack a .zip or .tar.gz, refusing members that would land outside *dest*."""
    dest = dest.resolve()

    def check(name: str) -> None:
        target = (dest / name).resolve()
        if target != dest and dest not in target.parents:
            raise ModelError(f"{archive.name}: member {name!r} would be written outside the model")

    name = archive.name.lower()
    if name.endswith(".zip"):
        try:
            with zipfile.ZipFile(archive) as z:
                for n in z.namelist():
                    check(n)
                z.extractall(dest)
        except zipfile.BadZipFile as e:
            raise ModelError(f"{archive.name}: not a readable zip file ({e})") from None
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        try:
            with tarfile.open(archive) as t:
                members = t.getmembers()
                for m in members:
                    check(m.name)
                    if m.issym() or m.islnk():
                        check(os.path.join(os.path.dirname(m.name), m.linkname))
                t.extractall(dest, members=members, filter="data")
        except tarfile.TarError as e:
            raise ModelError(f"{archive.name}: not a readable tar archive ({e})") from None
    else:
        raise ModelError(f"{archive.name}: give a model directory, a .zip or a .tar.gz")


def _model_root(unpacked: Path) -> Path:
    """The model inside an unpacked archive: its top folder, or the single folder in it."""
    if model_problem(unpacked) is None:
        return unpacked
    subdirs = [p for p in unpacked.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(subdirs) == 1 and model_problem(subdirs[0]) is None:
        return subdirs[0]
    return unpacked


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def install_model(source: Path, lang: str, settings) -> Path:
    """Install a Vosk model for *lang* from a directory, .zip or .tar.gz; return its path.

    The model is copied beside the others under a hidden name, checked,
    fsynced, and then made current by replacing the ``<lang>`` symlink in one
    rename: a power cut leaves the old model or the new one, never half.
    """
    source = Path(source)
    if not lang or not lang.replace("-", "").replace("_", "").isalnum():
        raise ModelError(f"{lang!r} is not a language code like km")
    if not source.exists():
        raise ModelError(f"{source}: not found")
    root = models_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    link = root / lang
    if link.exists() and not link.is_symlink():
        raise ModelError(f"{link} exists and is not managed by `hub model install`; move it away first")
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    staging = Path(tempfile.mkdtemp(prefix=f".{lang}-{stamp}-", dir=root))
    try:
        target = staging / "model"
        if source.is_dir():
            problem = model_problem(source)
            if problem:
                raise ModelError(f"not a Vosk model: {problem}")
            shutil.copytree(source, target, symlinks=False)
        else:
            unpacked = staging / "unpacked"
            unpacked.mkdir()
            _safe_extract(source, unpacked)
            found = _model_root(unpacked)
            problem = model_problem(found)
            if problem:
                raise ModelError(f"not a Vosk model: {problem.replace(str(unpacked), source.name)}")
            os.rename(found, target)
            shutil.rmtree(unpacked, ignore_errors=True)
        (target / "hub-model.json").write_text(json.dumps(
            {"lang": lang, "source": source.name, "installed_at": stamp}), encoding="utf-8")
        _fsync_tree(target)
        old = link.resolve() if link.is_symlink() else None
        tmp_link = root / f".{lang}.link-{stamp}"
        if tmp_link.is_symlink():
            tmp_link.unlink()
        os.symlink(os.path.relpath(target, root), tmp_link)
        os.replace(tmp_link, link)
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None and old.parent != staging and root.resolve() in old.parents:
        shutil.rmtree(old.parent if old.name == "model" else old, ignore_errors=True)
    return link


def model_label(path: Path) -> str:
    """A short name for a model: the archive or folder it was installed from, else its folder."""
    meta = Path(path) / "hub-model.json"
    try:
        return json.loads(meta.read_text(encoding="utf-8"))["source"]
    except (OSError, ValueError, KeyError):
        real = Path(path).resolve()
        return f"{real.parent.name}/{real.name}" if real.name == "model" else real.name


# --- Vosk ------------------------------------------------------------------------------------

_MODELS: dict[str, object] = {}


def load_vosk_model(path: Path):
    """Load a Vosk model from *path* (never by language name: that would download)."""
    import vosk

    vosk.SetLogLevel(-1)
    key = str(Path(path).resolve())
    model = _MODELS.get(key)
    if model is None:
        problem = model_problem(Path(path))
        if problem:
            raise ModelError(problem)
        _MODELS.clear()  # one model in memory at a time: a Pi has little RAM
        try:
            model = vosk.Model(key)
        except Exception as e:  # vosk raises a bare Exception when Kaldi refuses the files
            raise ModelError(f"cannot load the speech model in {path}: {e}") from None
        _MODELS[key] = model
    return model


class VoskEngine:
    """Vosk's KaldiRecognizer, with words, timings and confidence."""

    name = "vosk"

    def __init__(self, model_dir: Path, rate: int = 16000):
        self.model_dir = Path(model_dir)
        self.model_name = model_label(self.model_dir)
        self.rate = rate
        self.model = load_vosk_model(self.model_dir)

    def recognizer(self, grammar: list[str] | None = None):
        import vosk

        if grammar:
            rec = vosk.KaldiRecognizer(self.model, self.rate, json.dumps(grammar, ensure_ascii=False))
        else:
            rec = vosk.KaldiRecognizer(self.model, self.rate)
        rec.SetWords(True)
        return rec

    def transcribe_pcm(self, pcm: bytes, grammar: list[str] | None = None,
                       progress: Callable[[], bool] | None = None) -> Result:
        rec = self.recognizer(grammar)
        segments: list[dict] = []
        for i in range(0, len(pcm), CHUNK_BYTES):
            if rec.AcceptWaveform(pcm[i:i + CHUNK_BYTES]):
                segments.append(json.loads(rec.Result()))
            if progress is not None and not progress():
                raise Abandoned()
        segments.append(json.loads(rec.FinalResult()))
        words = []
        for seg in segments:
            for w in seg.get("result", []):
                words.append({"word": w["word"], "start": round(w["start"], 3),
                              "end": round(w["end"], 3), "conf": round(w.get("conf", 0.0), 3)})
        text = " ".join(s.get("text", "") for s in segments if s.get("text")).strip()
        return Result(text=text, words=words, audio_seconds=len(pcm) / (2 * self.rate))


def engine_for(settings, lang: str) -> VoskEngine:
    path = model_for(settings, lang)
    if path is None:
        raise ModelError(no_model_message(lang))
    return VoskEngine(path)
