"""What a technician needs to know about spoken input: the doctor's speech check.

:func:`findings` lists one :class:`~hub.core.checks.Finding` per speech model,
waiting language, prompt set and kiosk button; :func:`check_speech` makes them the
doctor's one "speech" line. A missing Khmer model is a warning, stated plainly:
the hub works, and Khmer recordings wait for a model or for a clerk.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hub.core.checks import FAIL, OK, WARN, Checkup, Finding
from hub.core.words import N_
from hub.voice import prompts, transcripts
from hub.voice.models import LANGUAGE_NAMES, installed_models, model_problem

#: A finding's status as `hub model list` prints it.
LEVELS = {OK: "ok", WARN: "warning", FAIL: "error"}


def check_speech(checkup: Checkup) -> Finding:
    """The speech findings as one: failed if any failed, else warned if any warned."""
    found = findings(checkup.settings, checkup.db)
    errors = [f for f in found if f.status == FAIL]
    warnings = [f for f in found if f.status == WARN]
    fine = [f for f in found if f.status == OK]
    if errors:
        return Finding("speech", FAIL, N_("%(text)s"), {"text": errors + warnings, "ok": fine},
                       N_("Each problem above says what to do; `hub model install DIR --lang"
                          " LANG` installs a speech model."))
    if warnings:
        return Finding("speech", WARN, N_("%(text)s"), {"text": warnings, "ok": fine},
                       N_("No public Khmer model exists yet; clerks can transcribe by hand."))
    return Finding("speech", OK, N_("%(text)s"), {"text": fine, "ok": fine})


def check(settings, db=None) -> list[tuple[str, str]]:
    """Each finding as (level, English text), level one of ``ok``, ``warning`` or ``error``."""
    return [(LEVELS[f.status], f.text()) for f in findings(settings, db)]


def findings(settings, db=None) -> list[Finding]:
    """Speech models per language, waiting recordings, prompts, kiosk storage and wiring."""
    out: list[Finding] = []
    found_models = installed_models(settings)
    for lang, d in (settings.model_dirs or {}).items():
        problem = model_problem(Path(d), settings.speech_engine)
        if problem:
            out.append(Finding("speech", FAIL, N_("speech model for %(lang)s in model_dirs is not usable: %(problem)s"),
                               {"lang": lang, "problem": problem}))
    wanted = {settings.kiosk_language, "km"}
    waiting: dict[str, int] = {}
    if db is not None:
        try:
            waiting = transcripts.waiting_by_language(db)
        except Exception:  # an unmigrated database: `hub doctor` reports that elsewhere
            waiting = {}
        wanted |= set(waiting)
    for lang in sorted(wanted):
        name = LANGUAGE_NAMES.get(lang, lang)
        if lang in found_models:
            out.append(Finding("speech", OK, N_("speech model for %(name)s (%(lang)s): %(dir)s"),
                               {"name": name, "lang": lang, "dir": str(found_models[lang])}))
        else:
            n = waiting.get(lang, 0)
            if lang == "km":
                text = N_("no speech model for Khmer (km): Khmer recordings are kept and wait (%(n)s waiting)"
                          " until a model is installed with `hub model install DIR_OR_ARCHIVE --lang km`,"
                          " or a clerk types them. No public Vosk model for Khmer exists yet; see README,"
                          " 'Spoken input and transcription'.")
            else:
                text = N_("no speech model for %(name)s (%(lang)s): %(name)s recordings are kept and wait"
                          " (%(n)s waiting) until a model is installed with"
                          " `hub model install DIR_OR_ARCHIVE --lang %(lang)s`, or a clerk types them.")
            out.append(Finding("speech", WARN, text, {"name": name, "lang": lang, "n": n}))
    shipped = prompts.manifest().get("prompts", {})
    missing = [k for k in prompts.PROMPTS if k not in shipped]
    if missing:
        out.append(Finding("speech", FAIL, N_("default prompts missing from audio/prompts: %(missing)s"),
                           {"missing": ", ".join(missing)}))
    if db is not None:
        try:
            replaced = set(prompts.replacements(db))
        except Exception:
            replaced = set()
        left = [k for k in prompts.PROMPTS if k not in replaced]
        if left:
            out.append(Finding("speech", WARN, N_("%(left)s of %(all)s spoken prompts (kiosk and portal) are still"
                                                  " synthetic English placeholders; record Khmer ones in the"
                                                  " console (Spoken prompts)"),
                               {"left": len(left), "all": len(prompts.PROMPTS)}))
        else:
            out.append(Finding("speech", OK, N_("every spoken prompt (kiosk and portal) has a clerk's recording")))
    if settings.button_pin:
        try:
            free = shutil.disk_usage(settings.data_dir).free / (1024 * 1024)
        except OSError:
            free = 0
        if free < settings.min_free_mb:
            out.append(Finding("speech", FAIL, N_("only %(free)s MB free in %(dir)s: the kiosk refuses to record"
                                                  " below min_free_mb = %(floor)s"),
                               {"free": int(free), "dir": str(settings.data_dir), "floor": settings.min_free_mb}))
        else:
            out.append(Finding("speech", OK, N_("kiosk button on %(pin)s, %(free)s MB free"),
                               {"pin": settings.button_pin, "free": int(free)}))
    else:
        out.append(Finding("speech", OK, N_("no kiosk button configured (button_pin is empty): the recorder idles")))
    return out
