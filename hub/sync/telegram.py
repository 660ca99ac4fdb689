"""The Telegram mirror: each new public notice posted once to the commune's channel.

Runs inside a sync cycle, so only while the uplink is up. Notices made
after the mirror was first switched on are queued in ``telegram_posts``;
each part (the text, then the audio) is recorded as soon as Telegram
confirms it, so a retry after a failure or a crash never posts a part
twice. A notice that keeps failing is given up after :data:`MAX_ATTEMPTS`
and shows as failed in the console.
"""

from __future__ import annotations

import logging
import time

import requests

from hub import notices
from hub.core.db import transaction, utcnow
from hub.sync import state as sync_state
from hub.sync.client import redact

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
#: Telegram's limit for a message is 4096 characters; a caption's is 1024.
MAX_TEXT = 4000
MAX_CAPTION = 1000


# --- the queue: the only code that writes telegram_posts ------------------------------------

def watermark(db) -> int:
    """The newest notice now; the mirror posts only notices made after it was switched on."""
    return db.conn.execute("select coalesce(max(rowid), 0) from notices").fetchone()[0]


def queue_new(db, after_rowid: int) -> int:
    """Queue every notice newer than *after_rowid* that is not queued yet; return how many."""
    with transaction(db) as conn:
        cur = conn.execute(
            "insert into telegram_posts (notice_id, created_at)"
            " select n.id, ? from notices n where n.rowid > ?"
            " and not exists (select 1 from telegram_posts t where t.notice_id = n.id)"
            " order by n.rowid",
            (utcnow(), after_rowid),
        )
        return cur.rowcount


def pending_posts(db) -> list[dict]:
    return list(db.query("select * from telegram_posts where state = 'pending' order by created_at"))


def record_result(db, notice_id: str, message_ids: list | None = None, error: str | None = None,
                    give_up: bool = False) -> None:
    with transaction(db) as conn:
        if message_ids is not None:
            conn.execute(
                "update telegram_posts set state = 'posted', message_ids = ?, posted_at = ?,"
                " attempts = attempts + 1, last_error = null where notice_id = ?",
                (",".join(str(m) for m in message_ids), utcnow(), notice_id))
        else:
            conn.execute(
                "update telegram_posts set attempts = attempts + 1, last_error = ?,"
                " state = case when ? then 'failed' else state end where notice_id = ?",
                (error, 1 if give_up else 0, notice_id))


def note_part(db, notice_id: str, message_id) -> None:
    """Remember a part (text or audio) already posted, so a retry never posts it twice."""
    with transaction(db) as conn:
        conn.execute(
            "update telegram_posts set message_ids = case when message_ids = '' then ?"
            " else message_ids || ',' || ? end where notice_id = ?",
            (str(message_id), str(message_id), notice_id))


class TelegramError(Exception):
    def __init__(self, message: str, retry_after: float = 0):
        super().__init__(message)
        self.retry_after = retry_after


class Mirror:
    def __init__(self, ctx, session=None):
        self.ctx = ctx
        s = ctx.settings
        self.token = s.telegram_bot_token
        self.chat = s.telegram_chat_id
        self.base = f"{s.telegram_api_url.rstrip('/')}/bot{self.token}"
        self.timeout = s.sync_timeout_seconds
        self.session = session or requests.Session()
        self.session.trust_env = False
        logging.getLogger("urllib3").setLevel(logging.WARNING)

    def _call(self, method: str, data: dict, files: dict | None = None) -> dict:
        try:
            resp = self.session.post(f"{self.base}/{method}", data=data, files=files, timeout=self.timeout)
            body = resp.json()
        except (requests.RequestException, ValueError) as e:
            raise TelegramError(redact(f"{method}: {type(e).__name__}: {e}", [self.token])) from None
        if not body.get("ok"):
            retry = (body.get("parameters") or {}).get("retry_after", 0)
            raise TelegramError(f"{method}: {body.get('error_code', resp.status_code)} "
                                f"{body.get('description', '')}", retry)
        return body["result"]

    def run(self, stopping=lambda: False) -> int:
        """Post what is pending; return how many notices were completed."""
        db = self.ctx.db
        since = sync_state.get_state(db, "telegram_after_rowid")
        if since is None:
            since = watermark(db)
            sync_state.set_state(db, telegram_after_rowid=since)
        queue_new(db, int(since))
        done = 0
        for post in pending_posts(db):
            if stopping():
                break
            try:
                self._post(post)
            except TelegramError as e:
                give_up = post["attempts"] + 1 >= MAX_ATTEMPTS
                record_result(db, post["notice_id"], error=str(e), give_up=give_up)
                log.warning("telegram: notice %s not posted: %s", post["notice_id"], e)
                if e.retry_after:
                    time.sleep(min(e.retry_after, 5))
                continue
            done += 1
        return done

    def _post(self, post: dict) -> None:
        db = self.ctx.db
        n = notices.get(db, post["notice_id"])
        parts = dict(p.split("=", 1) for p in post["message_ids"].split(",") if "=" in p)
        if n is None:
            record_result(db, post["notice_id"], message_ids=[])
            return
        if "text" not in parts:
            result = self._call("sendMessage", {"chat_id": self.chat, "text": message_text(n)[:MAX_TEXT]})
            note_part(db, post["notice_id"], f"text={result['message_id']}")
            parts["text"] = result["message_id"]
        if n.get("audio_name") and "audio" not in parts:
            path = self.ctx.media.path(n["audio_name"])
            title = (n["title_km"] or n["title_en"]).replace("\u200b", "")
            with open(path, "rb") as f:
                result = self._call(
                    "sendAudio",
                    {"chat_id": self.chat, "caption": title[:MAX_CAPTION], "title": title[:60]},
                    files={"audio": (path.name, f, "audio/mpeg")},
                )
            note_part(db, post["notice_id"], f"audio={result['message_id']}")
            parts["audio"] = result["message_id"]
        record_result(db, post["notice_id"], message_ids=[f"{k}={v}" for k, v in parts.items()])


def message_text(n: dict) -> str:
    lines = []
    title = "\n".join(t for t in (n["title_km"], n["title_en"]) if t)
    lines.append(("‼️ " if n["urgent"] else "") + title)
    for body in (n["body_km"], n["body_en"]):
        if body:
            lines.append(body)
    # The hub marks Khmer word breaks with zero-width spaces for the portal; Telegram wraps by itself.
    return "\n\n".join(lines).replace("\u200b", "")
