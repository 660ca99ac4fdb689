"""Transcripts of recordings: the queue, machine text, and clerks' verified corrections.

The only code that writes the ``transcripts`` table. Every feedback item with
audio (from the kiosk or a phone) gets one row; the transcriber works
through the queue one at a time. A row is in one of four states:

- ``pending``: waiting for the transcriber;
- ``no_model``: no speech model is installed for its language; it waits,
  and becomes pending again as soon as one is (nothing is lost);
- ``done``: machine text with word timings and confidence;
- ``failed``: the engine could not read it (the error is kept).

A clerk's correction is stored beside the machine text, never over it, and
marks the transcript verified: that is what the training corpus is made of.
"""

from __future__ import annotations

import json

from hub.core import text as textmod
from hub.core.db import new_id, transaction, utcnow
from hub.core.khmer import strip_break_points

STATES = ("pending", "no_model", "done", "failed")
#: A job that crashed the transcriber this many times is marked failed, not retried.
MAX_ATTEMPTS = 3
MAX_TEXT = 4000
#: Longest clerk name kept beside a correction.
MAX_CLERK = 100


class TranscriptError(ValueError):
    """A correction that cannot be stored; ``code`` is ``too_long`` or ``bad_characters``."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code
#: What of a transcript leaves the hub: the text and its correction, not the queue's bookkeeping.
#: A column not named here stays in the commune.
TRANSCRIPT_FIELDS = ("feedback_id", "media_id", "source", "lang", "state", "engine", "model", "text",
                     "confidence", "audio_seconds", "transcribed_at", "corrected_text", "verified",
                     "verified_at", "clock_trusted")
#: Which transcripts leave (SQL on the table's alias ``t``): what a villager said goes only with
#: the speaker's consent, and only once there is text.
SHARED_ROWS = ("(t.state = 'done' or t.verified = 1)"
               " and t.feedback_id in (select id from feedback where consent_share = 1)")


def outgoing(row: dict) -> dict:
    """What of a transcript row leaves the commune."""
    return {k: row[k] for k in TRANSCRIPT_FIELDS if k in row}


# --- the queue -------------------------------------------------------------------------------


def enqueue_new(ctx) -> int:
    """Add a pending transcript for every feedback recording that has none; return how many."""
    db = ctx.db
    missing = list(db.query(
        "select f.id as feedback_id, f.audio_id, f.lang, f.source from feedback f"
        " left join transcripts t on t.media_id = f.audio_id"
        " where f.audio_id is not null and t.id is null order by f.created_at"))
    if not missing:
        return 0
    now = utcnow()
    hub_id = ctx.hub_id  # read before the transaction: the first read writes it
    n = 0
    with transaction(db) as conn:
        for m in missing:
            cur = conn.execute(
                "insert or ignore into transcripts (id, hub_id, created_at, updated_at, media_id,"
                " feedback_id, source, lang, state) values (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                (new_id(), hub_id, now, now, m["audio_id"], m["feedback_id"], m["source"],
                 m["lang"] or "km"))
            n += cur.rowcount
    return n


def sort_by_model(ctx, languages: set[str]) -> None:
    """Park jobs whose language has no model as no_model; release them when one appears."""
    langs = sorted(languages)
    marks = ", ".join("?" for _ in langs) or "''"
    now = utcnow()
    with transaction(ctx.db) as conn:
        conn.execute(f"update transcripts set state = 'no_model', updated_at = ?"
                     f" where state = 'pending' and lang not in ({marks})", (now, *langs))
        conn.execute(f"update transcripts set state = 'pending', updated_at = ?"
                     f" where state = 'no_model' and lang in ({marks})", (now, *langs))


def claim(ctx, languages: set[str]) -> dict | None:
    """The oldest pending job in a language with a model, its attempt counted; or None."""
    sort_by_model(ctx, languages)
    now = utcnow()
    with transaction(ctx.db) as conn:
        conn.execute(
            "update transcripts set state = 'failed', updated_at = ?,"
            " error = 'gave up after ' || attempts || ' attempts'"
            " where state = 'pending' and attempts >= ?", (now, MAX_ATTEMPTS))
        row = conn.execute(
            "select t.id, t.lang, t.media_id, m.master_name from transcripts t"
            " join media m on m.id = t.media_id where t.state = 'pending'"
            " order by t.created_at, t.rowid limit 1").fetchone()
        if row is None:
            return None
        conn.execute("update transcripts set attempts = attempts + 1, updated_at = ? where id = ?",
                     (now, row[0]))
    return {"id": row[0], "lang": row[1], "media_id": row[2], "master_name": row[3]}


def finish(ctx, transcript_id: str, result, engine: str, model: str,
           processing_seconds: float) -> None:
    """Store the machine text, words with timings and confidence; the state becomes done."""
    now = utcnow()
    with transaction(ctx.db) as conn:
        conn.execute(
            "update transcripts set state = 'done', engine = ?, model = ?, text = ?, words = ?,"
            " confidence = ?, error = '', audio_seconds = ?, processing_seconds = ?,"
            " transcribed_at = ?, updated_at = ? where id = ?",
            (engine, model, textmod.sanitise(result.text)[:MAX_TEXT * 4], json.dumps(result.words, ensure_ascii=False),
             result.confidence, result.audio_seconds, processing_seconds, now, now, transcript_id))


def fail(ctx, transcript_id: str, error: str) -> None:
    now = utcnow()
    with transaction(ctx.db) as conn:
        conn.execute("update transcripts set state = 'failed', error = ?, updated_at = ? where id = ?",
                     (error[:500], now, transcript_id))


def retry(ctx, transcript_id: str) -> None:
    """Put a failed job back in the queue (a clerk's button, after a model was replaced)."""
    with transaction(ctx.db) as conn:
        conn.execute("update transcripts set state = 'pending', attempts = 0, error = '',"
                     " updated_at = ? where id = ? and state = 'failed'", (utcnow(), transcript_id))


def correct(ctx, transcript_id: str, text: str, clerk: str) -> None:
    """Keep a clerk's correct text beside the machine's, and mark the transcript verified."""
    try:
        text = strip_break_points(textmod.clean(text, MAX_TEXT, multiline=True))
        clerk = textmod.clean(clerk, MAX_CLERK)
    except textmod.TextError as e:
        raise TranscriptError("too_long" if e.code == "too_long" else "bad_characters") from None
    now = utcnow()
    with transaction(ctx.db) as conn:
        cur = conn.execute(
            "update transcripts set corrected_text = ?, verified = ?, verified_by = ?,"
            " verified_at = ?, updated_at = ? where id = ?",
            (text or None, 1 if text else 0, clerk if text else None, now if text else None, now,
             transcript_id))
        if cur.rowcount == 0:
            raise KeyError(transcript_id)


# --- reading ---------------------------------------------------------------------------------

_SELECT = """
    select t.*, f.receipt, f.consent_share, f.category, m.web_name as audio_name,
           m.master_name, m.duration_ms
    from transcripts t
    join media m on m.id = t.media_id
    left join feedback f on f.id = t.feedback_id
"""


def _decode(row: dict) -> dict:
    row = dict(row)
    try:
        row["words"] = json.loads(row.get("words") or "[]")
    except ValueError:
        row["words"] = []
    row["best_text"] = row.get("corrected_text") or row.get("text") or ""
    return row


def get(db, transcript_id: str) -> dict | None:
    rows = list(db.query(_SELECT + " where t.id = ?", [transcript_id]))
    return _decode(rows[0]) if rows else None


def for_feedback(db, feedback_id: str) -> dict | None:
    rows = list(db.query(_SELECT + " where t.feedback_id = ?", [feedback_id]))
    return _decode(rows[0]) if rows else None


def listing(db, state: str | None = None, limit: int = 200) -> list[dict]:
    where, args = "", []
    if state in STATES:
        where, args = " where t.state = ?", [state]
    elif state == "verified":
        where = " where t.verified = 1"
    rows = db.query(_SELECT + where + " order by t.created_at desc limit ?", [*args, limit])
    return [_decode(r) for r in rows]


def counts(db) -> dict[str, int]:
    out = {s: 0 for s in STATES}
    for r in db.query("select state, count(*) as n from transcripts group by state"):
        out[r["state"]] = r["n"]
    out["verified"] = db.execute("select count(*) from transcripts where verified = 1").fetchone()[0]
    return out


def waiting_by_language(db) -> dict[str, int]:
    """How many recordings are not yet transcribed, per language (shown for languages with no model)."""
    return {r["lang"]: r["n"] for r in db.query(
        "select lang, count(*) as n from transcripts where state in ('pending', 'no_model')"
        " group by lang")}


def corpus_rows(db, lang: str | None = None) -> list[dict]:
    """Consented recordings with verified transcripts, oldest first."""
    sql = (_SELECT + " where f.consent_share = 1 and t.verified = 1"
           " and coalesce(t.corrected_text, '') != ''")
    args: list = []
    if lang:
        sql += " and t.lang = ?"
        args.append(lang)
    sql += " order by t.created_at, t.id"
    return [_decode(r) | {"phone": _phone(db, r["feedback_id"])} for r in db.query(sql, args)]


def _phone(db, feedback_id: str | None) -> str:
    if not feedback_id:
        return ""
    row = db.execute("select phone from feedback where id = ?", [feedback_id]).fetchone()
    return row[0] if row else ""
