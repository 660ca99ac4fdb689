"""Phones through nginx while the kiosk records and the transcriber works: no errors, p95 under 2 s.

A reduced run of the `make bench` figure (50 phones for 10 minutes; tests/faults/load.py).
"""

from __future__ import annotations

import os

import pytest

from tests.faults import load

pytestmark = pytest.mark.slow
PHONES = int(os.environ.get("HUB_LOAD_PHONES", "8"))
SECONDS = float(os.environ.get("HUB_LOAD_SECONDS", "45"))


def test_phones_kiosk_and_transcriber_together_get_no_errors_and_p95_under_2_s(tmp_path):
    fig = load.run(tmp_path, phones=PHONES, seconds=SECONDS, think=2.0, kiosk_pause=3.0, settle=60)
    print()
    for label, value in load.rows(fig):
        print(f"  {label}: {value}")
    assert all(fig.answers[k] for k in ("home", "notice", "form", "text", "voice", "receipt")), \
        {k: len(v) for k, v in fig.answers.items()}
    assert fig.error_count == 0, fig.errors
    assert fig.p95() < 2.0, {k: load.percentile(v, 95) for k, v in fig.answers.items()}
    assert fig.acknowledged and fig.lost == 0
    # The kiosk and the transcriber did their work meanwhile.
    assert fig.kiosk.get("outcomes", {}).get("saved", 0) >= 1 and fig.kiosk["stored"] >= 1, fig.kiosk
    assert fig.transcripts.get("done", 0) >= 1, fig.transcripts
    assert fig.kiosk.get("stopped"), fig.kiosk
