"""What a technician needs to know about spoken input: `hub doctor` calls :func:`check`.

Each finding is ``(level, message)``, level one of ``ok``, ``warning`` or
``error``. A missing Khmer model is a warning, stated plainly: the hub
works, and Khmer recordings wait for a model or for a clerk.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hub.voice import prompts
from hub.voice.engine import LANGUAGE_NAMES, installed_models, model_problem


class Message(str):
    """A finding in English that also keeps its catalogue template, so `hub doctor` can say it in Khmer."""

    def __new__(cls, template: str, **values):
        self = super().__new__(cls, template % values if values else template)
        self.template = template
        self.values = values
        return self


def N_(message: str) -> str:
    return message


def check(settings, db=None) -> list[tuple[str, str]]:
    """Speech models per language, waiting recordings, prompts, kiosk storage and wiring."""
    out: list[tuple[str, str]] = []
    models = installed_models(settings)
    for lang, d in (settings.model_dirs or {}).items():
        problem = model_problem(Path(d))
        if problem:
            out.append(("error", Message(N_("speech model for %(lang)s in model_dirs is not usable: %(problem)s"),
                                         lang=lang, problem=problem)))
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
            out.append(("ok", Message(N_("speech model for %(name)s (%(lang)s): %(dir)s"), name=name, lang=lang,
                                      dir=str(models[lang]))))
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
            out.append(("warning", Message(text, name=name, lang=lang, n=n)))
    shipped = prompts.manifest().get("prompts", {})
    missing = [k for k in prompts.PROMPTS if k not in shipped]
    if missing:
        out.append(("error", Message(N_("default prompts missing from audio/prompts: %(missing)s"),
                                     missing=", ".join(missing))))
    if db is not None:
        try:
            replaced = set(prompts.replacements(db))
        except Exception:
            replaced = set()
        left = [k for k in prompts.PROMPTS if k not in replaced]
        if left:
            out.append(("warning", Message(N_("%(left)s of %(all)s kiosk prompts are still synthetic English"
                                              " placeholders; record Khmer ones in the console"),
                                           left=len(left), all=len(prompts.PROMPTS))))
        else:
            out.append(("ok", Message(N_("every kiosk prompt has a clerk's recording"))))
    if settings.button_pin:
        try:
            free = shutil.disk_usage(settings.data_dir).free / (1024 * 1024)
        except OSError:
            free = 0
        if free < settings.min_free_mb:
            out.append(("error", Message(N_("only %(free)s MB free in %(dir)s: the kiosk refuses to record"
                                            " below min_free_mb = %(floor)s"),
                                         free=int(free), dir=str(settings.data_dir), floor=settings.min_free_mb)))
        else:
            out.append(("ok", Message(N_("kiosk button on %(pin)s, %(free)s MB free"), pin=settings.button_pin,
                                      free=int(free))))
    else:
        out.append(("ok", Message(N_("no kiosk button configured (button_pin is empty): the recorder idles"))))
    return out
