"""Spoken words on the portal: the kiosk's prompts as small MP3s, and sequences of them joined.

A receipt code is read digit by digit with the same recordings the kiosk uses
(a clerk's Khmer recording where there is one, else the shipped placeholder).
With JavaScript the page plays the clips one after another; without it the
page links one file made by joining them with ffmpeg. Both are made once and
kept in the data directory's cache, named by what went into them.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from pathlib import Path

from flask import Blueprint, Response, abort, send_file
from markupsafe import Markup

from hub.core.files import write_durably
from hub.voice import prompts
from hub.web.current import hub_context, hub_settings
from hub.web.icons import icon

bp = Blueprint("voice", __name__, url_prefix="/voice")

#: The most words one joined file may hold (a receipt code and a sentence or two).
MAX_WORDS = 24
WORD_RE = re.compile(r"^[a-z_0-9]+$")
#: One second of 22 kHz mono MP3 at 40 kb/s is about 5 KB: small on a crowded Wi-Fi.
MP3_ARGS = ["-ac", "1", "-ar", "22050", "-c:a", "libmp3lame", "-b:a", "40k"]
GAP_SECONDS = 0.15
#: Joined files kept; past this the oldest go (each is a few tens of KB, made again if asked).
MAX_CACHED = 400


def cache_dir() -> Path:
    return Path(hub_settings().data_dir) / "cache" / "voice"


def expand(words: list[str]) -> list[str]:
    """Prompt keys for *words*: a run of digits becomes one key per digit."""
    keys = []
    for w in words:
        if w.isdigit():
            keys += prompts.digit_keys(w)
        else:
            keys.append(w)
    return keys


def _source(key: str) -> tuple[str, Path]:
    """(version, file) of a prompt: the clerk's phone copy if recorded, else the shipped default."""
    if key not in prompts.PROMPTS:
        raise KeyError(key)
    ctx = hub_context()
    r = prompts.replacements(ctx.db).get(key)
    if r is not None:
        return r["media_id"], ctx.media.path(r["web_name"])
    entry = prompts.manifest().get("prompts", {}).get(key, {})
    return "default", prompts.prompts_dir() / entry.get("file", f"{key}.wav")


def _ffmpeg(args: list[str]) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *args],
                   check=True, capture_output=True, timeout=60)


def _made(name: str, make) -> Path | bytes:
    """The cached file *name*, made by ``make(path)`` the first time; its bytes if it cannot be kept."""
    out = cache_dir() / name
    if out.is_file():
        return out
    with tempfile.TemporaryDirectory(prefix="hub-voice-") as tmp:
        tmp_file = Path(tmp) / name
        make(tmp_file)
        try:
            write_durably(out, source=tmp_file)
        except OSError:
            # A full disk refuses the cache, not the villager: the sound is sent all the same.
            return tmp_file.read_bytes()
    _prune(out.parent)
    return out


def _prune(folder: Path) -> None:
    files = sorted(folder.glob("*.mp3"), key=lambda p: p.stat().st_mtime)
    for old in files[:-MAX_CACHED]:
        old.unlink(missing_ok=True)


def clip(key: str) -> Path | bytes:
    version, src = _source(key)
    if not src.is_file():
        abort(404)
    name = hashlib.sha256(f"{key}:{version}".encode()).hexdigest()[:24] + ".mp3"
    return _made(name, lambda out: _ffmpeg(["-i", str(src), *MP3_ARGS, str(out)]))


def joined(keys: list[str]) -> Path | bytes:
    sources = [_source(k) for k in keys]
    if not all(src.is_file() for _, src in sources):
        abort(404)
    stamp = "|".join(f"{k}:{v}" for k, (v, _) in zip(keys, sources, strict=True))
    name = hashlib.sha256(stamp.encode()).hexdigest()[:24] + ".mp3"

    def make(out: Path) -> None:
        inputs, chains = [], []
        for i, (_, src) in enumerate(sources):
            inputs += ["-i", str(src)]
            chains.append(f"[{i}:a]aresample=22050,aformat=sample_fmts=s16:channel_layouts=mono,"
                          f"apad=pad_dur={GAP_SECONDS}[a{i}]")
        graph = ";".join(chains) + ";" + "".join(f"[a{i}]" for i in range(len(sources)))
        graph += f"concat=n={len(sources)}:v=0:a=1[out]"
        _ffmpeg([*inputs, "-filter_complex", graph, "-map", "[out]", *MP3_ARGS, str(out)])

    return _made(name, make)


def _send(sound: Path | bytes):
    if isinstance(sound, bytes):
        resp = Response(sound, mimetype="audio/mpeg")
    else:
        resp = send_file(sound, mimetype="audio/mpeg", conditional=True)
    # The address names the words, not the recording: a clerk's new recording shows within the hour.
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return resp


@bp.route("/<key>.mp3")
def prompt_clip(key: str):
    if key not in prompts.PROMPTS:
        abort(404)
    return _send(clip(key))


@bp.route("/say/<words>.mp3")
def say(words: str):
    parts = words.split("-")
    if not parts or any(not WORD_RE.match(p) for p in parts):
        abort(404)
    try:
        keys = expand(parts)
    except KeyError:
        abort(404)
    if not keys or len(keys) > MAX_WORDS or any(k not in prompts.PROMPTS for k in keys):
        abort(404)
    return _send(joined(keys))


def spoken(words: list[str], label: str) -> Markup:
    """A player for *words*: one joined file without JavaScript, the clips in turn with it.

    Each digit clip carries the place of its digit among the page's ``.digit`` marks, which
    light up while it plays.
    """
    keys = expand(words)
    digit = iter(range(len(keys)))
    clips = " ".join(f"/voice/{k}.mp3|{next(digit) if k.startswith('digit_') else -1}" for k in keys)
    src = "/voice/say/" + "-".join(words) + ".mp3"
    return Markup(
        '<div class="say" data-clips="{clips}">'
        '<div class="joined"><p class="field">{listen} {label}</p>'
        '<audio controls preload="none" src="{src}" aria-label="{label}"></audio></div>'
        '<button class="btn alt" type="button" hidden>{play} {label}</button></div>'
    ).format(clips=clips, src=src, label=label, listen=icon("listen"), play=icon("play"))
