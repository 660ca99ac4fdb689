"""What of a villager's message leaves the commune, and how a clerk's reply changes it: no web app involved."""

from __future__ import annotations

import pytest

from hub import feedback
from hub.core.db import transaction
from hub.sync import outbox

ROW = {"id": "f1", "hub_id": "h1", "receipt": "123456", "source": "portal", "category": "water",
       "body": "The well is dry", "name": "Sok", "phone": "012345678", "village": "Prey Veng",
       "lang": "km", "audio_id": "m1", "status": "new", "reply": "", "replied_at": None,
       "created_at": "2026-12-01T00:00:00+00:00", "updated_at": "2026-12-01T00:00:00+00:00",
       "clock_trusted": 1}


def columns(ctx) -> set[str]:
    return {r[1] for r in ctx.db.conn.execute("pragma table_info(feedback)")}


def test_without_consent_no_name_phone_or_voice_leaves():
    out = feedback.outgoing({**ROW, "consent_share": 0})
    assert not {"name", "phone", "audio_id"} & set(out)
    assert out["body"] == "The well is dry" and out["village"] == "Prey Veng" and out["consent_share"] == 0


def test_with_consent_name_phone_and_voice_leave():
    out = feedback.outgoing({**ROW, "consent_share": 1})
    assert (out["name"], out["phone"], out["audio_id"]) == ("Sok", "012345678", "m1")


def test_a_column_nobody_named_stays_in_the_commune():
    out = feedback.outgoing({**ROW, "consent_share": 1, "clerk_note": "lives behind the pagoda"})
    assert "clerk_note" not in out
    assert not {"id", "hub_id", "created_at", "updated_at"} & set(out)  # the record carries these itself


def test_every_feedback_column_is_decided(ctx):
    """A new column on feedback must be named as shared, shared with consent, or staying."""
    staying = {"id", "hub_id", "created_at", "updated_at"}
    decided = (set(feedback.SHARED_FIELDS) | set(feedback.SHARED_WITH_CONSENT) | set(feedback.SHARED_IF_SET)
               | set(feedback.STAYS_HOME) | staying)
    assert columns(ctx) == decided


def test_the_outbox_sends_what_feedback_allows(ctx):
    kept = feedback.submit(ctx, {"category": "water", "body": "dry well", "name": "Sok", "phone": "012"})
    shared = feedback.submit(ctx, {"category": "roads", "body": "broken bridge", "name": "Dara",
                                   "consent_share": "on"})
    assert outbox.scan(ctx) == 2
    import json

    data = {json.loads(r["body"])["id"]: json.loads(r["body"])["data"]
            for r in ctx.db.query("select body from sync_outbox where kind = 'feedback'")}
    assert "name" not in data[kept["id"]] and "phone" not in data[kept["id"]]
    assert data[shared["id"]]["name"] == "Dara"


def test_a_reply_to_a_new_item_answers_it(ctx):
    item = feedback.submit(ctx, {"category": "water", "body": "dry well"})
    feedback.set_status(ctx, item["id"], "new", "The truck comes on Monday")
    row = feedback.get(ctx.db, item["id"])
    assert row["status"] == "answered" and row["reply"] == "The truck comes on Monday" and row["replied_at"]


def test_a_reply_keeps_a_closed_item_closed_and_no_reply_changes_nothing(ctx):
    item = feedback.submit(ctx, {"category": "water", "body": "dry well"})
    feedback.set_status(ctx, item["id"], "closed", "Done")
    assert feedback.get(ctx.db, item["id"])["status"] == "closed"
    feedback.set_status(ctx, item["id"], "in_progress", "   ")
    assert feedback.get(ctx.db, item["id"])["status"] == "in_progress"


def test_validation_happens_once_and_store_needs_text_or_voice(ctx):
    fields = feedback.validate({"category": "health", "body": "  "})
    with pytest.raises(feedback.FeedbackError) as e:
        feedback.store(ctx, fields)
    assert e.value.code == "say_something"
    with pytest.raises(feedback.FeedbackError) as e:
        feedback.validate({"category": "nonsense", "body": "x"})
    assert e.value.code == "choose_category"


def _counted(db) -> dict[str, int]:
    """The unread counts as a count over the items themselves."""
    rows = db.query("select category, count(*) as n from feedback where seen_at is null group by category")
    out = {r["category"]: r["n"] for r in rows}
    return {"all": sum(out.values()), **out}


def test_the_unread_counts_follow_every_write_and_read_one_row_per_category(ctx):
    """Items come, are opened, change category (a script) and go: the kept counts stay equal to a count
    of the items, and reading them takes as many SQLite steps at 300 items as at 3."""
    def steps() -> int:
        n = [0]

        def count():
            n[0] += 1

        ctx.db.conn.set_progress_handler(count, 1)
        try:
            feedback.unread_counts(ctx.db)
        finally:
            ctx.db.conn.set_progress_handler(None, 0)
        return n[0]

    items = [feedback.submit(ctx, {"category": c, "body": "dry well"}) for c in ("water", "roads", "water")]
    assert feedback.unread_counts(ctx.db) == _counted(ctx.db) == {"all": 3, "water": 2, "roads": 1}
    few = steps()
    feedback.mark_seen(ctx, items[0]["id"])
    feedback.mark_seen(ctx, items[0]["id"])  # opened again: counted once
    assert feedback.unread_counts(ctx.db) == _counted(ctx.db) == {"all": 2, "water": 1, "roads": 1}
    with transaction(ctx.db) as conn:
        conn.execute("update feedback set category = 'health' where id = ?", (items[1]["id"],))
        conn.execute("update feedback set category = 'health' where id = ?", (items[0]["id"],))  # seen
        conn.execute("delete from feedback where id = ?", (items[2]["id"],))
    assert feedback.unread_counts(ctx.db) == _counted(ctx.db) == {"all": 1, "health": 1}
    for i in range(300):
        feedback.submit(ctx, {"category": ("water", "roads", "health")[i % 3], "body": "dry well"})
    assert feedback.unread_counts(ctx.db) == _counted(ctx.db)
    assert steps() <= few + 10, (few, steps())


def test_the_unread_counts_start_from_the_items_already_stored(make_settings, tmp_path):
    from hub.core.context import open_context
    from hub.core.db import migrate
    from hub.migrations import MIGRATIONS

    before = [m for m in MIGRATIONS if m[0] != "0014_unread_counts"]
    old = open_context(make_settings(data_dir=tmp_path / "old"), before)
    items = [feedback.submit(old, {"category": c, "body": "dry well"}) for c in ("water", "water", "roads")]
    feedback.mark_seen(old, items[2]["id"])
    assert migrate(old.db, MIGRATIONS) == ["0014_unread_counts"]
    assert feedback.unread_counts(old.db) == {"all": 2, "water": 2}
    old.close()
