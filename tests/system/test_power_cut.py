"""A crash of the whole appliance, again and again, during submissions and during playout.

Each cut SIGKILLs the container's PID 1, so the kernel kills every process of
the appliance at the same instant: systemd, nginx, gunicorn, the daemons,
ffmpeg. The disk cache belongs to this machine and survives, so this is a
crash of every process, not the loss of unwritten data in the disk's cache.
After each cut the appliance boots again and must hold every submission it
acknowledged (with its media), an intact database, no announcement played
twice, and no second first boot.
"""

from __future__ import annotations

import os
import random
import threading
import time

import requests

from tests.phone_audio import encode, tone_wav
from tests.system.conftest import (
    RECEIPT_RE,
    clerk_session,
    csrf,
    send_feedback,
    session,
    sound_card_appears,
    wait_for,
)

CUTS = int(os.environ.get("HUB_POWER_CUTS", "20"))
SEED = int(os.environ.get("HUB_POWER_CUT_SEED", str(int(time.time()))))


def sql(app, query: str) -> list[list[str]]:
    r = app.sh(f"sqlite3 -readonly -separator '|' /var/lib/hub/hub.db \"{query}\"", user="hub")
    return [line.split("|") for line in r.stdout.splitlines()]


def submitters(app, voice, acknowledged: dict, stop: threading.Event, n: int = 3) -> list[threading.Thread]:
    """Phones sending feedback as fast as the hub takes it; a receipt counts once it is in hand."""

    def phone(i: int) -> None:
        s = session()
        k = 0
        while not stop.is_set():
            k += 1
            with_voice = (k + i) % 3 == 0
            try:
                r = send_feedback(app, voice if with_voice else None, body=f"phone {i} message {k}", s=s,
                                  timeout=20)
            except (requests.RequestException, AssertionError):
                time.sleep(0.2)
                continue
            m = RECEIPT_RE.search(r.headers.get("Location", "")) if r.status_code == 303 else None
            if m:
                acknowledged[m.group(1)] = with_voice

    threads = [threading.Thread(target=phone, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def check_after_boot(app, acknowledged: dict) -> dict:
    assert sql(app, "pragma integrity_check") == [["ok"]]
    stored = {code: media for code, media in sql(
        app, "select f.receipt, coalesce(m.web_name, '') || ' ' || coalesce(m.master_name, '')"
             " from feedback f left join media m on m.id = f.audio_id")}
    lost = sorted(set(acknowledged) - set(stored))
    assert not lost, f"{len(lost)} acknowledged submissions lost: {lost[:5]}"
    # Every file of every acknowledged voice message is there, and not empty.
    present = {line.split()[1] for line in app.sh("cd /var/lib/hub/media && find . -type f -size +0 -printf '%s %f\\n'",
                                                   user="hub").stdout.splitlines()}
    for code, with_voice in acknowledged.items():
        names = stored[code].split()
        assert bool(names) == with_voice, code
        missing = [n for n in names if n not in present]
        assert not missing, (code, missing)
    plays = sql(app, "select occurrence_id, count(*), sum(outcome = 'played') from play_log group by occurrence_id")
    assert all(int(n) == 1 and int(played) <= 1 for _, n, played in plays), plays
    states = dict(sql(app, "select state || ':' || (detail = 'interrupted by a restart'), count(*)"
                           " from occurrences group by 1"))
    assert {s.split(":")[0] for s in states} <= {"played", "missed", "failed", "due", "playing"}, states
    return states


def test_power_cuts_lose_no_acknowledged_submission_and_never_play_twice(make_appliance, tmp_path):
    rng = random.Random(SEED)
    app = make_appliance("hubp", settings={"feedback_per_hour": 0})  # phones as fast as the hub takes them
    app.drop_in("hub-announcer", "mock-pins", "[Service]\nEnvironment=GPIOZERO_PIN_FACTORY=mock\n")
    sound_card_appears(app, paced=True)
    voice = encode(tone_wav(tmp_path / "v.wav", seconds=1.0), "m4a", tmp_path)
    clip = tone_wav(tmp_path / "a.wav", seconds=3.0, freq=550)
    acknowledged: dict[str, bool] = {}
    announced = 0
    for cut in range(CUTS):
        app.boot()
        if cut:
            check_after_boot(app, acknowledged)
        stop = threading.Event()
        threads = submitters(app, voice, acknowledged, stop)
        clerk = clerk_session(app)
        token = csrf(clerk, f"{app.staff}/clerk/announcements/new")
        r = clerk.post(f"{app.staff}/clerk/announcements/new",
                       data={"csrf_token": token, "title": f"cut {cut}", "when": "now", "repeats": "1"},
                       files={"audio": ("a.wav", clip.read_bytes())}, allow_redirects=False, timeout=60)
        announced += r.status_code == 303
        time.sleep(rng.uniform(1.0, 9.0))  # during submissions; before, during or after playout
        app.power_cut()
        stop.set()
        for t in threads:
            t.join(30)
    app.boot()
    # What the last cut left queued or half-played settles: played, or marked missed.
    wait_for(lambda: not {s.split(":")[0] for s in check_after_boot(app, acknowledged)} & {"due", "playing"}, 120,
             interval=2, message="occurrences left due or playing after the last boot")
    states = check_after_boot(app, acknowledged)
    streams = list((app.root / "var/lib/hub/test").glob("speaker.raw*"))
    started = sum(int(n) for _, n in sql(app, "select 1, count(*) from occurrences where started_at is not null"))
    # Each playout opens one stream: never more streams than occurrences that started.
    assert len(streams) <= started, (len(streams), started)
    firstboots = app.console.read_text(errors="replace").count("hub-firstboot: installed /etc/hub/hub.toml")
    assert firstboots == 1
    assert app.unit("hub-firstboot", "ConditionResult") == "no"
    print(f"\n{CUTS} power cuts (seed {SEED}): {len(acknowledged)} acknowledged submissions, all there;"
          f" {announced} announcements queued, occurrences {states}, {len(streams)} streams to the speaker")
    assert len(acknowledged) > CUTS and announced == CUTS
    # The cuts landed both inside playouts (cut short, marked missed) and after them.
    assert int(states.get("missed:1", 0)) > 0 and int(states.get("played:0", 0)) > 0, states
