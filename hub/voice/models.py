"""The speech models installed per language, for the engine the ``speech_engine`` setting names.

A model for a language is found, in order, in the ``model_dirs`` setting
(``{km = "/path"}``) and under ``DATA_DIR/models/<lang>``, where
``hub model install`` puts it. Adding one needs no code change: the
transcriber looks again before every job. Which directories hold a usable
model is the engine's to say (its ``model_problem``).

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
from pathlib import Path

from hub.voice.engines import Engine, ModelError, engine_class
from hub.voice.engines.base import MODEL_META

LANGUAGE_NAMES = {"km": "Khmer", "en": "English", "ko": "Korean"}





# --- models on disk --------------------------------------------------------------------------


def model_problem(path: Path, engine: str = "vosk") -> str | None:
    """Why *path* is not a model *engine* can load, or None when it looks like one."""
    return engine_class(engine).model_problem(Path(path))


def models_dir(settings) -> Path:
    return Path(settings.data_dir) / "models"


def installed_models(settings) -> dict[str, Path]:
    """Usable model directories by language: the settings first, then DATA_DIR/models."""
    problem = engine_class(settings.speech_engine).model_problem
    found: dict[str, Path] = {}
    for lang, d in (settings.model_dirs or {}).items():
        p = Path(d)
        if problem(p) is None:
            found[lang] = p
    root = models_dir(settings)
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if entry.name.startswith(".") or entry.name in found:
                continue
            if problem(entry) is None:
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


def _model_root(unpacked: Path, problem) -> Path:
    """The model inside an unpacked archive: its top folder, or the single folder in it."""
    if problem(unpacked) is None:
        return unpacked
    subdirs = [p for p in unpacked.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(subdirs) == 1 and problem(subdirs[0]) is None:
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
    """Install a model of the ``speech_engine`` for *lang* from a directory, .zip or .tar.gz; return its path.

    The model is copied beside the others under a hidden name, checked,
    fsynced, and then made current by replacing the ``<lang>`` symlink in one
    rename: a power cut leaves the old model or the new one, never half.
    """
    source = Path(source)
    check = engine_class(settings.speech_engine).model_problem
    kind = settings.speech_engine.capitalize()
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
            problem = check(source)
            if problem:
                raise ModelError(f"not a {kind} model: {problem}")
            shutil.copytree(source, target, symlinks=False)
        else:
            unpacked = staging / "unpacked"
            unpacked.mkdir()
            _safe_extract(source, unpacked)
            found = _model_root(unpacked, check)
            problem = check(found)
            if problem:
                raise ModelError(f"not a {kind} model: {problem.replace(str(unpacked), source.name)}")
            os.rename(found, target)
            shutil.rmtree(unpacked, ignore_errors=True)
        (target / MODEL_META).write_text(json.dumps(
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


def engine_for(settings, lang: str) -> Engine:
    """The ``speech_engine`` with the model installed for *lang*; ModelError when there is none."""
    path = model_for(settings, lang)
    if path is None:
        raise ModelError(no_model_message(lang))
    return engine_class(settings.speech_engine)(path)
