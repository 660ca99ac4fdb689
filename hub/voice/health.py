"""What a technician needs to know about spoken input: `hub doctor` calls :func:`check`.

Each finding is ``(level, message)``, level one of ``ok``, ``warning`` or
``error``. A missing Khmer model is a warning, stated plainly: the hub
works, and Khmer recordings wait for a model or for a clerk.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hub.voice.engine import LANGUAGE_NAMES, installed_models, model_problem


def check(settings, db=None) -> list[tuple[str, str]]:
    """Speech models per language, waiting recordings, prompts, kiosk storage and wiring."""
    from hub.voice import prompts

    out: list[tuple[str, str]] = []
    models = installed_models(settings)
    for lang, d in (settings.model_dirs or {}).items():
        problem = model_problem(Path(d))
        if problem:
            out.append(("error", f"speech model for {lang} in model_dirs is not usable: {problem}"))
    wanted = {settings.kiosk_language, "km"}
    waiting: dict[str, int] = {}
    if db is not None:
        from hub.voice import transcripts

        try:
            waiting = transcripts.waiting_by_language(db)
        except Exception:  # an unmigrated database: `hub doctor` reports that elsewhere
            waiting = {}
        wanted |= set(waiting)
    for lang in sorted(wanted):
        name = LANGUAGE_NAMES.get(lang, lang)
        if lang in models:
            out.append(("ok", f"speech model for {name} ({lang}): {models[lang]}"))
        else:
            n = waiting.get(lang, 0)
            out.append(("warning",
                        f"no speech model for {name} ({lang}): {name} recordings are kept and wait"
                        f" ({n} waiting) until a model is installed with"
                        f" `hub model install DIR_OR_ARCHIVE --lang {lang}`, or a clerk types them."
                        + (" No public Vosk model for Khmer exists yet; see README,"
                           " 'Spoken input and transcription'." if lang == "km" else "")))
    shipped = prompts.manifest().get("prompts", {})
    missing = [k for k in prompts.PROMPTS if k not in shipped]
    if missing:
        out.append(("error", f"default prompts missing from audio/prompts: {', '.join(missing)}"))
    if db is not None:
        try:
            replaced = set(prompts.replacements(db))
        except Exception:
            replaced = set()
        left = [k for k in prompts.PROMPTS if k not in replaced]
        if left:
            out.append(("warning", f"{len(left)} of {len(prompts.PROMPTS)} kiosk prompts are still"
                                   " synthetic English placeholders; record Khmer ones in the console"))
        else:
            out.append(("ok", "every kiosk prompt has a clerk's recording"))
    if settings.button_pin:
        try:
            free = shutil.disk_usage(settings.data_dir).free / (1024 * 1024)
        except OSError:
            free = 0
        if free < settings.min_free_mb:
            out.append(("error", f"only {free:.0f} MB free in {settings.data_dir}: the kiosk refuses"
                                 f" to record below min_free_mb = {settings.min_free_mb}"))
        else:
            out.append(("ok", f"kiosk button on {settings.button_pin}, {free:.0f} MB free"))
    else:
        out.append(("ok", "no kiosk button configured (button_pin is empty): the recorder idles"))
    return out
