"""The one formula guard that every CSV export uses (hub feedback, proof of play, the central server)."""

from __future__ import annotations

import csv
import io

import pytest

from hub.core.csvsafe import BOM, formula_safe, to_text


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "=HYPERLINK(\"x\")"])
def test_a_cell_a_spreadsheet_would_run_gets_a_quote(value):
    assert formula_safe(value) == "'" + value


@pytest.mark.parametrize("value", ["", "ទឹក", "012345678", "a=b", " =x", 0, 12, None])
def test_other_cells_stay_as_they_are(value):
    assert formula_safe(value) == value


def test_to_text_starts_with_a_bom_and_guards_every_cell():
    text = to_text([["a", "b"], ["=x", ""]])
    assert text.startswith(BOM)
    assert list(csv.reader(io.StringIO(text[1:]))) == [["a", "b"], ["'=x", ""]]


def test_the_clerks_feedback_csv_has_no_stray_quote_in_empty_cells(clerk, ctx):
    from hub import feedback

    feedback.submit(ctx, {"category": "water", "body": "=cmd|' /C calc'!A0"})  # no name, phone or village
    raw = clerk.get("/clerk/feedback/export.csv").get_data(as_text=True).lstrip(BOM)
    cells = [c for row in list(csv.reader(io.StringIO(raw)))[1:] for c in row]
    assert "'=cmd|' /C calc'!A0" in cells
    assert "'" not in cells and "" in cells


def test_the_central_export_uses_the_same_guard(tmp_path):
    from hub.central.store import CentralStore

    store = CentralStore.open(tmp_path / "central", "")
    try:
        hub_id, _token = store.add_hub("=evil-hub")
        store.store_records(hub_id, [{"id": "00000000-0000-4000-8000-000000000001", "kind": "feedback",
                                      "hub_id": hub_id, "created_at": "2026-11-16T03:00:00+00:00",
                                      "data": {"body": "ok"}}])
        store.publish("notice", {"title_en": "For all"}, None)
        out = io.StringIO()
        store.export("csv", out)
        rows = list(csv.reader(io.StringIO(out.getvalue())))
    finally:
        store.close()
    assert rows[1][3] == "'=evil-hub"
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert "'" not in [cell for row in rows for cell in row], "empty cells stay empty"
