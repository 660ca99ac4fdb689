"""hub-web SIGKILLed again and again during submissions through nginx: nothing acknowledged is lost.

A reduced run of the `make bench` figure (1,000 kills; tests/faults/webkill.py).
"""

from __future__ import annotations

import os

import pytest

from tests.faults import webkill

pytestmark = pytest.mark.slow
KILLS = int(os.environ.get("HUB_WEB_KILLS", "30"))


def test_sigkills_of_hub_web_lose_no_acknowledged_submission_and_leave_no_orphan(tmp_path):
    fig = webkill.run(tmp_path, kills=KILLS, phones=4, whole_every=5, voice_every=4, max_seconds=300)
    print()
    for label, value in webkill.rows(fig, KILLS):
        print(f"  {label}: {value}")
    assert fig.kills == KILLS and fig.whole_kills == KILLS // 5
    assert fig.acknowledged > KILLS // 2 and fig.acknowledged_voice > 0, "the phones did not get going"
    assert fig.interrupted > 0, "no kill landed on a request"
    assert fig.integrity == "ok"
    assert not fig.lost, f"{len(fig.lost)} acknowledged submissions lost: {fig.lost[:5]}"
    assert not fig.media_missing, f"acknowledged voice without its files: {fig.media_missing[:5]}"
    assert not fig.orphans, f"{len(fig.orphans)} media files without a row: {fig.orphans[:5]}"
