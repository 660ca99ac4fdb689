"""An announcement published on the central server goes onto the hub's loudspeaker schedule."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from zoneinfo import ZoneInfo

from hub.announce import schedule
from hub.announce import store as announcements
from hub.sync import state as sync_state
from tests.sync.procs import sync_once


def test_a_published_announcement_is_scheduled_once_and_withdrawal_stops_it(central, make_hub, tmp_path):
    token = central.add_hub("kampong")
    hub = make_hub(central.url, token)
    mp3 = tmp_path / "call.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=f=330:d=1", "-c:a", "libmp3lame",
                    str(mp3)], check=True)
    tz = ZoneInfo("Asia/Phnom_Penh")
    at = (hub.ctx.clock.now() + timedelta(days=2)).astimezone(tz).replace(hour=7, minute=0, second=0,
                                                                          microsecond=0)
    r = central.run("publish", "--kind", "announcement", "--title-km", "ការប្រកាសពីខេត្ត",
                    "--audio", str(mp3), "--play-at", at.strftime("%Y-%m-%dT%H:%M"), "--repeats", "2",
                    "--to", "kampong")
    assert r.returncode == 0, r.stderr
    pub_id = r.stdout.strip()

    rc, out, err = sync_once(hub.env)
    assert rc == 0, err
    listed = announcements.listing(hub.ctx.db)
    assert len(listed) == 1
    a = listed[0]
    assert a["title"] == "ការប្រកាសពីខេត្ត" and a["repeats"] == 2 and a["loud_name"]
    rec = schedule.parse(a["rrule"])
    assert rec.kind == "once" and rec.start == at.date()
    plays = schedule.between(a["rrule"], hub.ctx.clock.now(), hub.ctx.clock.now() + timedelta(days=7))
    assert [p.astimezone(tz).strftime('%H:%M') for p in plays] == ['07:00']

    # A second sync does not schedule it twice.
    sync_once(hub.env)
    assert len(announcements.listing(hub.ctx.db)) == 1

    store = central.open_store()
    store.withdraw(pub_id)
    store.close()
    rc, out, _ = sync_once(hub.env)
    assert rc == 0
    assert announcements.get(hub.ctx.db, a["id"])["active"] == 0
    assert sync_state.get_state(hub.ctx.db, f"announcement_of:{pub_id}") == a["id"]
