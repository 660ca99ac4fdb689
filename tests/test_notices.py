"""The notice rules, with no web app involved."""

from __future__ import annotations

import pytest

from hub import notices


@pytest.mark.parametrize("fields", [{}, {"title_km": "   ", "title_en": ""}, {"body_km": "only a body"}])
def test_a_notice_needs_a_title_in_khmer_or_english(ctx, fields):
    with pytest.raises(notices.NoticeError, match="needs a title in Khmer or English"):
        notices.check_title(fields)
    with pytest.raises(notices.NoticeError):
        notices.create(ctx, fields)
    assert notices.all_notices(ctx.db) == []


@pytest.mark.parametrize("fields", [{"title_km": "ប្រជុំឃុំ"}, {"title_en": "Meeting"}])
def test_either_title_is_enough(ctx, fields):
    notices.check_title(fields)
    nid = notices.create(ctx, fields)
    assert notices.get(ctx.db, nid) is not None


def test_the_message_is_in_the_khmer_catalogue():
    from hub.core.words import load_catalog

    assert notices.NEEDS_TITLE in load_catalog("km")
