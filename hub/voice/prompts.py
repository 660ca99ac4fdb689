"""The spoken prompts of the kiosk and the portal: defaults in ``audio/prompts/``, clerks' replacements in the store.

No Khmer text-to-speech exists (none is packaged for Debian or PyPI, and
espeak-ng and Piper have no Khmer voice), so the defaults shipped are synthetic
placeholders (English from espeak-ng, and a tone), listed as such in
``audio/prompts/manifest.json`` and in the console. A clerk records or
uploads a Khmer replacement for each; it goes through the media pipeline
and is kept in the data directory, so it survives upgrades. The only code
that writes the ``voice_prompts`` table.

``python -m hub.voice.prompts`` rebuilds the placeholders.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from hub.core.assets import audio_dir
from hub.core.db import transaction, utcnow
from hub.core.words import N_
from hub.voice.sound import read_pcm, silence


def prompts_dir() -> Path:
    """``audio/prompts`` in a checkout, or where an installed hub keeps its shipped audio."""
    return audio_dir() / "prompts"

MANIFEST = "manifest.json"
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

#: key -> the words a clerk should say when recording it (shown in the console).
PROMPTS: dict[str, str] = {
    "welcome": N_("Hello. This is the commune office. You can leave a message for the commune."),
    "speak_after_tone": N_("Please speak after the tone. Press the button again when you have finished."),
    "beep": N_("(a short tone, no words)"),
    "thank_you_number": N_("Thank you, your message is saved. Your number is"),
    "digit_0": N_("zero"),
    "digit_1": N_("one"),
    "digit_2": N_("two"),
    "digit_3": N_("three"),
    "digit_4": N_("four"),
    "digit_5": N_("five"),
    "digit_6": N_("six"),
    "digit_7": N_("seven"),
    "digit_8": N_("eight"),
    "digit_9": N_("nine"),
    "too_short": N_("Sorry, we did not hear you. Please press the button and speak again."),
    "disk_full": N_("Sorry, the hub cannot record now: its storage is full. Please tell the commune clerk."),
    "failed": N_("Sorry, your message could not be saved. Please tell the commune clerk."),
    # Played on the villagers' portal (welcome page, receipt and status pages).
    "portal_welcome": N_("Welcome to the commune hub. Here you can read and listen to the notices of the commune,"
                         " and send your message to the commune office. It is free and needs no internet."),
    "portal_help": N_("To send a message, press the big microphone button and speak. Choose what it is about,"
                      " then press Send. Keep your receipt number to hear the answer."),
    "your_number_is": N_("Your receipt number is"),
    "status_new": N_("Your message was received. There is no answer yet."),
    "status_in_progress": N_("The commune office is looking at your message."),
    "status_answered": N_("The commune has answered your message. The answer is on this page."),
    "status_closed": N_("Your message is closed."),
}
#: Prompts the portal's pages play (hub.web.voice); the others only the kiosk does.
PORTAL = frozenset({"portal_welcome", "portal_help", "your_number_is", "thank_you_number",
                    "status_new", "status_in_progress", "status_answered", "status_closed",
                    *(f"digit_{d}" for d in range(10))})
KIOSK = frozenset(k for k in PROMPTS if not k.startswith(("portal_", "your_number_is", "status_")))


def heard_on(key: str) -> list[str]:
    """Where villagers hear *key*: "kiosk", "portal" or both."""
    return [where for where, keys in (("kiosk", KIOSK), ("portal", PORTAL)) if key in keys]


#: The longest replacement accepted, in seconds.
MAX_PROMPT_SECONDS = 30


def make_placeholders(out_dir: Path | None = None) -> dict:
    """Make synthetic placeholder prompts with espeak-ng and sox, and their manifest."""
    out_dir = out_dir or prompts_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = {}
    for key, text in PROMPTS.items():
        wav = out_dir / f"{key}.wav"
        if key == "beep":
            made_with = "sox: 880 Hz sine, 0.35 s"
            subprocess.run(["sox", "-R", "-n", "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer",
                            str(wav), "synth", "0.35", "sine", "880", "fade", "0.02", "0.35", "0.05",
                            "vol", "0.5"], check=True, capture_output=True)
        else:
            made_with = "espeak-ng -v en (placeholder: no Khmer voice exists)"
            raw = out_dir / f".{key}.espeak.wav"
            subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(raw), text],
                           check=True, capture_output=True)
            subprocess.run(["sox", "-R", str(raw), "-r", "16000", "-c", "1", "-b", "16",
                            "-e", "signed-integer", str(wav)], check=True, capture_output=True)
            raw.unlink()
        entries[key] = {"file": wav.name, "text": text, "placeholder": True, "made_with": made_with}
    manifest = {
        "placeholder": True,
        "note": "Synthetic placeholders. No Khmer text-to-speech exists: a clerk replaces each"
                " prompt with a Khmer recording in the console (Spoken prompts); the kiosk and the"
                " portal then play it.",
        "prompts": entries,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
    return manifest


def manifest(directory: Path | None = None) -> dict:
    try:
        return json.loads(((directory or prompts_dir()) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"placeholder": True, "prompts": {}}


def replacements(db) -> dict[str, dict]:
    return {r["key"]: r for r in db.query(
        "select p.key, p.media_id, p.updated_at, p.updated_by, m.web_name, m.loud_name,"
        " m.master_name, m.duration_ms from voice_prompts p join media m on m.id = p.media_id")}


def listing(db, directory: Path | None = None) -> list[dict]:
    """Every prompt with its text, and whether a clerk's recording or the default is used."""
    directory = directory or prompts_dir()
    shipped = manifest(directory).get("prompts", {})
    replaced = replacements(db)
    out = []
    for key, text in PROMPTS.items():
        default = shipped.get(key, {})
        default_file = directory / default.get("file", f"{key}.wav")
        r = replaced.get(key)
        out.append({
            "key": key, "text": text,
            "replaced": r is not None, "replacement": r,
            "default_exists": default_file.is_file(),
            "placeholder": r is None and default.get("placeholder", True),
            "made_with": default.get("made_with", ""),
            "heard_on": heard_on(key),
        })
    return out


def replace(ctx, key: str, upload: Path, clerk: str = "") -> str:
    """Store a clerk's recording as the prompt *key*; return its media id."""
    if key not in PROMPTS:
        raise KeyError(key)
    hub_id = ctx.hub_id
    row = ctx.media.prepare_audio(Path(upload), MAX_PROMPT_SECONDS)
    try:
        with transaction(ctx.db) as conn:
            ctx.media.insert(conn, row)
            conn.execute(
                "insert into voice_prompts (key, hub_id, media_id, updated_at, updated_by)"
                " values (?, ?, ?, ?, ?) on conflict (key) do update set media_id = excluded.media_id,"
                " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (key, hub_id, row["id"], utcnow(), clerk))
    except BaseException:
        ctx.media.discard(row["id"])
        raise
    return row["id"]


def reset(ctx, key: str) -> None:
    """Go back to the default for *key* (the clerk's recording stays in the media store)."""
    with transaction(ctx.db) as conn:
        conn.execute("delete from voice_prompts where key = ?", (key,))


class PromptPlayer:
    """Finds each prompt's sound (replacement first, else the default) as 16 kHz PCM."""

    def __init__(self, ctx, directory: Path | None = None):
        self.ctx = ctx
        self.dir = directory or prompts_dir()
        self._cache: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def source(self, key: str) -> tuple[str, Path]:
        """(version, file) of the sound for *key*."""
        if key not in PROMPTS:
            raise KeyError(key)
        r = replacements(self.ctx.db).get(key)
        if r is not None:
            # The loudness-normalised copy: clerks' phone recordings vary a lot in level.
            name = r["loud_name"] or r["master_name"]
            return r["media_id"], self.ctx.media.path(name)
        entry = manifest(self.dir).get("prompts", {}).get(key, {})
        return "default", self.dir / entry.get("file", f"{key}.wav")

    def pcm(self, key: str) -> bytes:
        version, path = self.source(key)
        with self._lock:
            cached = self._cache.get((key, version))
            if cached is None:
                cached = read_pcm(path) if path.is_file() else b""
                self._cache[(key, version)] = cached
            return cached

    def sequence(self, keys: list[str], gap: float = 0.15) -> bytes:
        """The prompts one after another, with a short pause between them."""
        pause = silence(gap)
        return pause.join(self.pcm(k) for k in keys)


def digit_keys(receipt: str) -> list[str]:
    return [f"digit_{c}" for c in receipt if c.isdigit()]


if __name__ == "__main__":
    made = make_placeholders()
    print(f"made {len(made['prompts'])} placeholder prompts in {prompts_dir()}", file=sys.stderr)
