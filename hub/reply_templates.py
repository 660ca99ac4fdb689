"""Reply templates: answers a clerk writes once and picks for many feedback items.

The only code that writes ``reply_templates``. Templates stay in the commune (they are not synced).
"""

from __future__ import annotations

from hub.core.db import new_id, transaction, utcnow
from hub.core.khmer import strip_break_points

MAX_TITLE = 100
MAX_BODY = 4000


class TemplateError(ValueError):
    """Bad input; ``code`` names the message shown to the clerk."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def _checked(title: str, body: str) -> tuple[str, str]:
    title, body = (title or "").strip(), (body or "").strip()
    if not title or not body:
        raise TemplateError("needs_title_and_text")
    if len(title) > MAX_TITLE or len(body) > MAX_BODY:
        raise TemplateError("too_long")
    return title, strip_break_points(body)  # stored as typed, like replies


def all_templates(db) -> list[dict]:
    return list(db.query("select * from reply_templates order by title"))


def get(db, template_id: str) -> dict | None:
    rows = list(db.query("select * from reply_templates where id = ?", [template_id]))
    return rows[0] if rows else None


def create(db, title: str, body: str) -> str:
    title, body = _checked(title, body)
    tid, now = new_id(), utcnow()
    with transaction(db) as conn:
        conn.execute("insert into reply_templates (id, title, body, created_at, updated_at) values (?, ?, ?, ?, ?)",
                     (tid, title, body, now, now))
    return tid


def update(db, template_id: str, title: str, body: str) -> None:
    title, body = _checked(title, body)
    with transaction(db) as conn:
        cur = conn.execute("update reply_templates set title = ?, body = ?, updated_at = ? where id = ?",
                           (title, body, utcnow(), template_id))
        if cur.rowcount == 0:
            raise KeyError(template_id)


def delete(db, template_id: str) -> None:
    with transaction(db) as conn:
        cur = conn.execute("delete from reply_templates where id = ?", (template_id,))
        if cur.rowcount == 0:
            raise KeyError(template_id)
