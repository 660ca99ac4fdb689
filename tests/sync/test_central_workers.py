"""The central server under several gunicorn workers at once, on each backend.

Nothing that matters lives in a worker: records race into the one database
and are stored exactly once, and logins, sessions and the rate limit hold
whichever worker answers.
"""

from __future__ import annotations

import random
import re
import threading
import uuid
from collections import Counter

import pytest
import requests

from tests.sync.procs import Central
from tests.sync.wirehub import WireHub

pytestmark = pytest.mark.slow
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def busy_central(tmp_path, database_url):
    c = Central(tmp_path / "central", workers=4, database_url=database_url, login_attempts=3)
    yield c
    c.stop()


def test_concurrent_pushes_store_each_record_exactly_once(busy_central):
    hubs = []
    for i in range(3):
        hub_id = str(uuid.uuid4())
        r = busy_central.run("add-hub", f"hub{i}", "--hub-id", hub_id)
        assert r.returncode == 0, r.stderr
        hubs.append((hub_id, r.stdout.strip()))
    rng = random.Random(7)
    plain = {hub_id: [{"id": str(uuid.uuid4()), "kind": rng.choice(["feedback", "play", "transcript"]),
                       "hub_id": hub_id, "created_at": f"2026-12-01T0{n % 10}:00:00+00:00",
                       "data": {"category": "water", "status": "new", "body": f"message {n}"}}
                      for n in range(240)] for hub_id, _ in hubs}
    # Ids sent by two threads at the same moment with different content: one wins, the other is a conflict.
    contested = {hub_id: [str(uuid.uuid4()) for _ in range(20)] for hub_id, _ in hubs}
    threads_per_hub = 4
    barrier = threading.Barrier(threads_per_hub * len(hubs))
    answers: list[tuple[str, str, int, str]] = []  # (hub, id, status, variant)
    errors: list[str] = []
    lock = threading.Lock()

    def pusher(hub_id: str, token: str, n: int) -> None:
        client = WireHub(busy_central.port, token, hub_id)
        mine = list(plain[hub_id])
        random.Random(n).shuffle(mine)
        variant = "a" if n % 2 == 0 else "b"
        mine += [{"id": rid, "kind": "feedback", "hub_id": hub_id, "created_at": "2026-12-01T05:00:00+00:00",
                  "data": {"category": "roads", "status": "new", "body": f"variant {variant}"}}
                 for rid in contested[hub_id]]
        barrier.wait()
        try:
            for start in range(0, len(mine), 40):
                batch = mine[start:start + 40]
                status, body, _ = client.push(batch)
                if status != 200:
                    errors.append(f"{status} {body}")
                    continue
                with lock:
                    for r in batch:
                        v = r["data"]["body"].removeprefix("variant ") if r["id"] in contested[hub_id] else ""
                        answers.append((hub_id, r["id"], body["status"][r["id"]], v))
        except Exception as e:  # noqa: BLE001 - any failure is the test's to report
            errors.append(repr(e))
        finally:
            client.close()

    threads = [threading.Thread(target=pusher, args=(hub_id, token, n))
               for hub_id, token in hubs for n in range(threads_per_hub)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    stored = Counter(rid for _, rid, status, _ in answers if status == 201)
    every_id = {r["id"] for rs in plain.values() for r in rs} | {rid for ids in contested.values() for rid in ids}
    assert set(stored) == every_id and set(stored.values()) == {1}, "each record stored exactly once"
    for ids in contested.values():
        for rid in ids:
            got = [(status, v) for _, i, status, v in answers if i == rid]
            winner = next(v for status, v in got if status == 201)
            assert all(status == (200 if v == winner else 409) for status, v in got if status != 201), got
            assert any(status == 409 for status, _ in got), "the other content was refused"

    rows = busy_central.export()
    ids = [r["id"] for r in rows if not r["kind"].startswith("published.")]
    assert len(ids) == len(set(ids)) == len(every_id)
    store = busy_central.open_store()
    try:
        feedback_ids = {r["id"] for rs in plain.values() for r in rs if r["kind"] == "feedback"}
        assert store.feedback_overview()["total"] == len(feedback_ids) + sum(len(v) for v in contested.values())
    finally:
        store.close()


def _fresh(url: str, session: requests.Session, method: str = "GET", **kw):
    """A request on a new connection, so the workers take turns answering."""
    return session.request(method, url, headers={"Connection": "close"}, allow_redirects=False, timeout=30, **kw)


def test_logins_sessions_and_the_rate_limit_hold_across_workers(busy_central):
    r = busy_central.run("user", "add", "officer", stdin="a long password\n")
    assert r.returncode == 0, r.stderr
    url = busy_central.url
    s = requests.Session()
    token = CSRF.search(_fresh(url + "/login", s).text).group(1)
    r = _fresh(url + "/login", s, "POST", data={"username": "officer", "password": "a long password",
                                               "csrf_token": token})
    assert r.status_code == 303
    for _ in range(12):
        assert _fresh(url + "/hubs", s).status_code == 200, "the session is good on every worker"

    attacker = requests.Session()
    token = CSRF.search(_fresh(url + "/login", attacker).text).group(1)
    codes = [_fresh(url + "/login", attacker, "POST", data={"username": "officer", "password": "wrong guess",
                                                            "csrf_token": token}).status_code
             for _ in range(5)]
    assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429], codes
    r = _fresh(url + "/login", attacker, "POST", data={"username": "officer", "password": "a long password",
                                                       "csrf_token": token})
    assert r.status_code == 429, "locked whichever worker is asked"
