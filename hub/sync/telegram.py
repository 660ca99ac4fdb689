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
from hub.sync import outbox
from hub.sync.client import redact

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
#: Telegram's limit for a message is 4096 characters; a caption's is 1024.
MAX_TEXT = 4000
MAX_CAPTION = 1000


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
        since = outbox.get_state(db, "telegram_after_rowid")
        if since is None:
            since = outbox.telegram_watermark(db)
            outbox.set_state(db, telegram_after_rowid=since)
        outbox.telegram_queue(db, int(since))
        done = 0
        for post in outbox.telegram_pending(db):
            if stopping():
                break
            try:
                self._post(post)
            except TelegramError as e:
                give_up = post["attempts"] + 1 >= MAX_ATTEMPTS
                outbox.telegram_result(db, post["notice_id"], error=str(e), give_up=give_up)
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
            outbox.telegram_result(db, post["notice_id"], message_ids=[])
            return
        if "text" not in parts:
            result = self._call("sendMessage", {"chat_id": self.chat, "text": message_text(n)[:MAX_TEXT]})
            outbox.telegram_note_part(db, post["notice_id"], f"text={result['message_id']}")
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
            outbox.telegram_note_part(db, post["notice_id"], f"audio={result['message_id']}")
            parts["audio"] = result["message_id"]
        outbox.telegram_result(db, post["notice_id"], message_ids=[f"{k}={v}" for k, v in parts.items()])


def message_text(n: dict) -> str:
    lines = []
    title = "\n".join(t for t in (n["title_km"], n["title_en"]) if t)
    lines.append(("‼️ " if n["urgent"] else "") + title)
    for body in (n["body_km"], n["body_en"]):
        if body:
            lines.append(body)
    # The hub marks Khmer word breaks with zero-width spaces for the portal; Telegram wraps by itself.
    return "\n\n".join(lines).replace("\u200b", "")
