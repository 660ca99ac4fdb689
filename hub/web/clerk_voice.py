"""Clerk console: recordings and their transcripts, corrections, and the spoken prompts (kiosk and portal)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from flask import Blueprint, abort, g, redirect, render_template, request, send_file, url_for

from hub.core.media import MediaError
from hub.voice import models, transcripts
from hub.voice import prompts as prompts_mod
from hub.web.console import done
from hub.web.current import hub_context, hub_settings
from hub.web.i18n import N_, _, in_language
from hub.web.security import login_required
from hub.web.uploads import media_message

bp = Blueprint("clerk_voice", __name__, url_prefix="/clerk/voice")

#: Where a prompt is heard, in the console's words.
HEARD_ON_WORDS = {"kiosk": N_("Kiosk"), "portal": N_("Portal pages")}
LANGUAGE_WORDS = {"km": N_("Khmer"), "en": N_("English"), "ko": N_("Korean")}
STATE_WORDS = {
    "pending": N_("Waiting for the transcriber"),
    "no_model": N_("Waiting: no speech model for its language"),
    "done": N_("Transcribed"),
    "failed": N_("Transcription failed"),
    "verified": N_("Checked by a clerk"),
}


def _missing_models(db) -> list[dict]:
    """Languages the hub hears but cannot transcribe, with how many recordings wait."""
    settings = hub_settings()
    installed = models.installed_models(settings)
    waiting = transcripts.waiting_by_language(db)
    langs = sorted(({settings.kiosk_language} | set(waiting)) - set(installed))
    return [{"lang": lang, "waiting": waiting.get(lang, 0)} for lang in langs]


@bp.app_context_processor
def _voice_words():
    return {"language_word": lambda code: _(LANGUAGE_WORDS.get(code, code)),
            "transcript_state_word": lambda s: _(STATE_WORDS.get(s, s))}


@bp.route("/")
@login_required
def recordings():
    db = hub_context().db
    transcripts.enqueue_new(hub_context())  # a phone upload shows here at once, as waiting
    state = request.args.get("state") or None
    items = transcripts.listing(db, state)
    return render_template("clerk/voice_recordings.html", items=items, state=state,
                           counts=transcripts.counts(db), missing=_missing_models(db),
                           states=(*transcripts.STATES, "verified"))


@bp.route("/<transcript_id>", methods=["GET", "POST"])
@login_required
def transcript(transcript_id: str):
    ctx = hub_context()
    row = transcripts.get(ctx.db, transcript_id)
    if row is None:
        abort(404)
    error = None
    if request.method == "POST":
        try:
            transcripts.correct(ctx, transcript_id, request.form.get("text", ""), g.user["username"])
            done(_("Transcript saved as checked."))
            return redirect(url_for("clerk_voice.transcript", transcript_id=transcript_id), code=303)
        except transcripts.TranscriptError as e:
            error = (_("That text is too long.") if e.code == "too_long" else
                     _("That text has characters the hub cannot keep (control characters). Please type it again."))
    return render_template("clerk/voice_transcript.html", item=row, error=error,
                           missing=_missing_models(ctx.db) if row["state"] == "no_model" else [])


@bp.route("/<transcript_id>/retry", methods=["POST"])
@login_required
def retry(transcript_id: str):
    transcripts.retry(hub_context(), transcript_id)
    done(_("The transcriber will try this recording again."))
    return redirect(url_for("clerk_voice.transcript", transcript_id=transcript_id), code=303)


def _prompt_items() -> list[dict]:
    """The prompts with the Khmer words a clerk says, whatever the console's language."""
    items = prompts_mod.listing(hub_context().db)
    for p in items:
        p["khmer"] = in_language(p["text"], "km")
    return items


def _prompts_page(items: list[dict], **values) -> str:
    return render_template("clerk/voice_prompts.html", items=items, heard_on_words=HEARD_ON_WORDS,
                           placeholders=[p for p in items if p["placeholder"]],
                           recorded=[p for p in items if not p["placeholder"]], **values)


@bp.route("/prompts", methods=["GET"])
@login_required
def prompts():
    return _prompts_page(_prompt_items(), error=request.args.get("error"), saved=request.args.get("saved"))


@bp.route("/prompts/<key>", methods=["POST"])
@login_required
def replace_prompt(key: str):
    if key not in prompts_mod.PROMPTS:
        abort(404)
    ctx = hub_context()
    if request.form.get("reset"):
        prompts_mod.reset(ctx, key)
        done(_("The kiosk and the portal use the placeholder again."))
        return redirect(url_for("clerk_voice.prompts", saved=key) + f"#p-{key}", code=303)
    field = request.files.get("audio")
    if field is None or not (field.filename or field.content_length):
        return _prompts_error(key, _("Choose or record a sound first."))
    with tempfile.TemporaryDirectory(prefix="hub-prompt-") as tmp:
        path = Path(tmp) / "upload"
        field.save(path)
        if path.stat().st_size == 0:
            return _prompts_error(key, _("Choose or record a sound first."))
        try:
            prompts_mod.replace(ctx, key, path, g.user["username"])
        except MediaError as e:
            if e.code == "too_long":
                return _prompts_error(key, _("A prompt must be shorter than 30 seconds."))
            return _prompts_error(key, media_message(e))
    done(_("Saved. The kiosk and the portal say it with your recording now."))
    return redirect(url_for("clerk_voice.prompts", saved=key) + f"#p-{key}", code=303)


def _prompts_error(key: str, message: str):
    return _prompts_page(_prompt_items(), error=message, error_key=key, saved=None), 400


@bp.route("/prompts/<key>/default.wav")
@login_required
def default_prompt(key: str):
    if key not in prompts_mod.PROMPTS:
        abort(404)
    entry = prompts_mod.manifest().get("prompts", {}).get(key, {})
    path = prompts_mod.prompts_dir() / entry.get("file", f"{key}.wav")
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="audio/wav", conditional=True)
