"""`hub corpus export`: consented, clerk-verified recordings as a Kaldi data directory.

This is the material a Khmer speech model is trained from. Only feedback
whose sender agreed to share it (``consent_share``) and whose transcript a
clerk verified is exported. Speakers get anonymous ids (``spk0001``...),
assigned in the export and kept nowhere; names, phone numbers, villages and
dates never leave the hub.

Layout (Kaldi's ``data/`` convention; every file sorted in C order):

- ``wav.scp``  ``<utt> <absolute path of wav/<utt>.wav>``
- ``text``     ``<utt> <words separated by spaces>``
- ``utt2spk``  ``<utt> <spk>``; utterance ids begin with their speaker id
- ``spk2utt``  ``<spk> <utt> <utt> ...``
- ``wav/``     16 kHz mono 16-bit WAV copies
- ``manifest.json``  what was exported and how
"""

from __future__ import annotations

import json
import re
import shutil
import wave
from pathlib import Path

from hub.core.errors import HubError
from hub.core.khmer import strip_break_points
from hub.voice import transcripts

FILES = ("wav.scp", "text", "utt2spk", "spk2utt")


def words_of(text: str, lang: str) -> str:
    """Text as space-separated words: Khmer is segmented with khmercut (it is written without spaces)."""
    text = strip_break_points(text).replace("\n", " ")
    if lang == "km":
        try:
            import khmercut  # optional: without it Khmer text is kept as the clerk typed it

            tokens = []
            for chunk in text.split():
                tokens.extend(t for t in khmercut.tokenize(chunk) if t.strip())
            text = " ".join(tokens)
        except ImportError:
            pass
    # Kaldi reads whitespace as separators and nothing else; punctuation is not a word.
    text = re.sub(r"[\u17d4\u17d5\u17d6\u17da,.!?;:\"“”()\[\]]", " ", text)
    return " ".join(text.split())


def _sorted_lines(lines: list[str]) -> list[str]:
    return sorted(lines, key=lambda s: s.encode("utf-8"))  # LC_ALL=C sort order


def export(ctx, out: Path, lang: str | None = None) -> dict:
    """Write the corpus into *out* (new or empty); return the manifest."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise HubError(f"{out} is not empty; give a new directory")
    rows = transcripts.corpus_rows(ctx.db, lang)
    wav_dir = out / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    speakers: dict[str, str] = {}
    per_speaker: dict[str, int] = {}
    scp, text, utt2spk, items = [], [], [], []
    for r in rows:
        words = words_of(r["corrected_text"], r["lang"])
        if not words:
            continue
        # One caller's recordings share a speaker id; without a number, each is its own speaker.
        key = f"phone:{r['phone']}" if r["phone"] else f"rec:{r['id']}"
        spk = speakers.setdefault(key, f"spk{len(speakers) + 1:04d}")
        per_speaker[spk] = per_speaker.get(spk, 0) + 1
        utt = f"{spk}-utt{per_speaker[spk]:04d}"
        wav = wav_dir / f"{utt}.wav"
        shutil.copyfile(ctx.media.path(r["master_name"]), wav)
        with wave.open(str(wav), "rb") as w:
            seconds = w.getnframes() / w.getframerate()
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (16000, 1, 2):
                raise HubError(f"{r['master_name']} is not a 16 kHz mono 16-bit master")
        scp.append(f"{utt} {wav.resolve()}")
        text.append(f"{utt} {words}")
        utt2spk.append(f"{utt} {spk}")
        items.append({"utt": utt, "spk": spk, "lang": r["lang"], "seconds": round(seconds, 2),
                      "source": r["source"]})
    spk2utt: dict[str, list[str]] = {}
    for line in _sorted_lines(utt2spk):
        utt, spk = line.split()
        spk2utt.setdefault(spk, []).append(utt)
    contents = {
        "wav.scp": _sorted_lines(scp),
        "text": _sorted_lines(text),
        "utt2spk": _sorted_lines(utt2spk),
        "spk2utt": _sorted_lines([f"{s} {' '.join(u)}" for s, u in spk2utt.items()]),
    }
    for name, lines in contents.items():
        (out / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    manifest = {
        "format": "kaldi-data-dir",
        "language": lang or sorted({i["lang"] for i in items}),
        "utterances": len(items),
        "speakers": len(spk2utt),
        "seconds": round(sum(i["seconds"] for i in items), 2),
        "sample_rate": 16000,
        "selection": "feedback with consent_share = 1 and a clerk-verified transcript",
        "speaker_ids": "anonymous, assigned per export; one caller's phone number groups"
                       " recordings, and is not exported",
        "items": sorted(items, key=lambda i: i["utt"]),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    return manifest


def check_data_dir(path: Path) -> list[str]:
    """Problems with a Kaldi data directory (empty list: it is well formed)."""
    path = Path(path)
    problems: list[str] = []
    tables: dict[str, list[tuple[str, str]]] = {}
    for name in FILES:
        f = path / name
        if not f.is_file():
            problems.append(f"{name} is missing")
            continue
        lines = f.read_text(encoding="utf-8").splitlines()
        pairs = []
        for n, line in enumerate(lines, 1):
            key, _, rest = line.partition(" ")
            if not key or not rest.strip():
                problems.append(f"{name}:{n}: expected '<id> <value>'")
            pairs.append((key, rest))
        keys = [k for k, _ in pairs]
        if keys != sorted(keys, key=lambda s: s.encode("utf-8")):
            problems.append(f"{name} is not sorted (LC_ALL=C)")
        if len(set(keys)) != len(keys):
            problems.append(f"{name} has duplicate ids")
        tables[name] = pairs
    if problems:
        return problems
    utts = [k for k, _ in tables["wav.scp"]]
    for name in ("text", "utt2spk"):
        if [k for k, _ in tables[name]] != utts:
            problems.append(f"{name} and wav.scp do not list the same utterances")
    utt2spk = dict(tables["utt2spk"])
    for utt, spk in utt2spk.items():
        if not utt.startswith(spk):
            problems.append(f"utterance {utt} does not begin with its speaker id {spk}")
    rebuilt: dict[str, list[str]] = {}
    for utt, spk in tables["utt2spk"]:
        rebuilt.setdefault(spk, []).append(utt)
    if {s: " ".join(u) for s, u in rebuilt.items()} != dict(tables["spk2utt"]):
        problems.append("spk2utt does not match utt2spk")
    for utt, wav in tables["wav.scp"]:
        if not Path(wav).is_file():
            problems.append(f"{utt}: {wav} does not exist")
    return problems
