"""SIGKILL the production web server during a stream of submissions.

Every submission that got its success response must be in the database, with
its audio, and the database must pass its integrity check.
"""

from __future__ import annotations

import random
import re
import threading
import time

import pytest
import requests

from hub import feedback
from hub.core import db as dbmod
from tests.livehub import LiveHub
from tests.phone_audio import encode, tone_wav

pytestmark = pytest.mark.slow
CYCLES = 4


def submit_forever(url: str, voice: bytes, acked: list, stop: threading.Event, seed: int) -> None:
    rnd = random.Random(seed)
    while not stop.is_set():
        s = requests.Session()
        s.headers["Sec-Fetch-Site"] = "same-origin"  # as a browser posting the hub's own form
        try:
            page = s.get(url + "/feedback", timeout=5).text
            token = re.search(r'name="csrf_token" value="([^"]*)"', page).group(1)
            body = f"crash test {seed}-{rnd.random()}"
            files = {"voice": ("v.ogg", voice, "audio/ogg")} if rnd.random() < 0.3 else None
            r = s.post(url + "/feedback", data={"csrf_token": token, "category": "water", "body": body},
                       files=files, allow_redirects=False, timeout=10)
            if r.status_code == 303:
                code = re.search(r"/receipt/(\d{8})", r.headers["Location"]).group(1)
                acked.append((code, body, files is not None))
        except (requests.RequestException, AttributeError):
            time.sleep(0.05)


def test_acknowledged_submissions_survive_sigkill(tmp_path):
    voice = encode(tone_wav(tmp_path / "v.wav", seconds=1.0), "ogg", tmp_path).read_bytes()
    hub = LiveHub(tmp_path / "data", gunicorn=True, HUB_FEEDBACK_PER_HOUR="0")  # a load, not one phone
    acked: list = []
    rnd = random.Random(7)
    for cycle in range(CYCLES):
        hub.start()
        stop = threading.Event()
        threads = [threading.Thread(target=submit_forever, args=(hub.url, voice, acked, stop, cycle * 10 + i))
                   for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(rnd.uniform(1.5, 3.0))
        hub.kill()  # mid-stream, no warning
        stop.set()
        for t in threads:
            t.join(15)
    assert len(acked) > 20, "the load generator did not get going"
    print(f"{len(acked)} acknowledged submissions across {CYCLES} kills")
    db = dbmod.connect(tmp_path / "data" / "hub.db")
    dbmod.integrity_check(db)
    missing = []
    for code, body, with_voice in acked:
        row = feedback.by_receipt(db, code)
        if row is None or row["body"] != body:
            missing.append(code)
        elif with_voice:
            assert row["audio_name"] and (tmp_path / "data" / "media" / row["audio_name"]).exists()
    assert not missing, f"{len(missing)} acknowledged submissions lost"
