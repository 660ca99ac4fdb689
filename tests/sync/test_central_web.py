"""The central server's console and storage, in process: login, dashboard, publishing, export."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from hub import accounts
from hub.central import reports
from hub.central.store import CentralStore
from hub.central.web import create_central_app
from tests.sync.procs import hub_cmd

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def store(tmp_path, database_url):
    s = CentralStore.open(tmp_path / "central", database_url)
    yield s
    s.close()


@pytest.fixture
def officer(store, make_settings):
    app = create_central_app(make_settings(data_dir=store.data_dir), store=store)
    client = app.test_client()
    accounts.add_user(store.db, "officer", "a long password", "admin")
    token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
    r = client.post("/login", data={"username": "officer", "password": "a long password", "csrf_token": token})
    assert r.status_code == 303
    client.get("/lang/en")
    return client


def fill(store) -> dict[str, str]:
    """Two hubs with feedback, a reply, a transcript and a play log."""
    a, _ = store.add_hub("kampong", "11111111-1111-4111-8111-111111111111")
    b, _ = store.add_hub("takeo", "22222222-2222-4222-8222-222222222222")

    def rec(i, hub, kind, data, created="2026-11-16T03:00:00+00:00"):
        return {"id": f"00000000-0000-4000-8000-{i:012d}", "kind": kind, "hub_id": hub, "created_at": created,
                "data": data}

    assert store.store_records(a, [
        rec(1, a, "feedback", {"category": "water", "status": "new", "body": "The well is dry"}),
        rec(2, a, "feedback", {"category": "roads", "status": "new", "body": "=HYPERLINK(bad)"}),
        rec(3, a, "feedback.revision", {"of": "00000000-0000-4000-8000-000000000001", "status": "answered",
                                        "reply": "A new pump on Monday"}, "2026-11-17T03:00:00+00:00"),
        rec(4, a, "transcript", {"text": "안녕하세요 마을", "lang": "ko"}),
        rec(5, a, "play", {"announcement": "Vaccination", "state": "ended"}),
    ])["stored"]
    assert store.store_records(b, [rec(6, b, "feedback", {"category": "water", "status": "new", "body": "Flood"})])
    return {"a": a, "b": b}


def test_the_console_needs_a_login(store, make_settings):
    client = create_central_app(make_settings(data_dir=store.data_dir), store=store).test_client()
    for path in ("/", "/feedback", "/transcripts", "/plays", "/hubs", "/publish"):
        r = client.get(path)
        assert r.status_code == 302 and "/login" in r.headers["Location"], path
    r = client.post("/login", data={"username": "x", "password": "y"})
    assert r.status_code == 400  # no CSRF token


def test_the_dashboard_shows_feedback_across_communes(store, officer):
    fill(store)
    o = store.feedback_overview(today=__import__("datetime").datetime(2026, 11, 18))
    assert o["by_category"] == {"water": 2, "roads": 1}
    assert o["by_status"] == {"answered": 1, "new": 2}
    assert o["by_hub"] == {"kampong": 2, "takeo": 1}
    assert o["weekly"]["water"][-1] == 2
    page = officer.get("/").get_data(as_text=True)
    assert "kampong" in page and "takeo" in page and "<svg" in page
    assert len(page.encode()) < 30 * 1024
    answered = officer.get("/feedback?status=answered").get_data(as_text=True)
    assert "The well is dry" in answered and "A new pump on Monday" in answered and "Flood" not in answered
    only_takeo = officer.get("/feedback?hub=takeo").get_data(as_text=True)
    assert "Flood" in only_takeo and "The well is dry" not in only_takeo
    assert "안녕하세요 마을" in officer.get("/transcripts").get_data(as_text=True)
    assert "Vaccination" in officer.get("/plays").get_data(as_text=True)


def test_the_hubs_page_shows_last_contact_and_health(store, officer):
    ids = fill(store)
    store.touch_hub(ids["a"], "127.0.0.1", {"disk_free_mb": 812, "outbox_pending": 7, "outbox_flagged": 0,
                                            "clock_trust": "central", "version": "0.1.0"})
    page = officer.get("/hubs").get_data(as_text=True)
    assert "812" in page and "central" in page and "Never" in page  # takeo has not called in


def test_publishing_to_chosen_hubs_from_the_console(store, officer):
    ids = fill(store)
    page = officer.get("/publish").get_data(as_text=True)
    token = CSRF.search(page).group(1)
    r = officer.post("/publish", data={"csrf_token": token, "kind": "notice", "title_en": "Road closed",
                                       "title_km": "ផ្លូវបិទ", "to": "chosen", "hub": [ids["b"]]})
    assert r.status_code == 303
    r = officer.post("/publish", data={"csrf_token": token, "kind": "notice", "title_en": "Nobody",
                                       "to": "chosen"})
    assert r.status_code == 200 and "Choose at least one hub" in r.get_data(as_text=True)
    r = officer.post("/publish", data={"csrf_token": token, "kind": "notice", "to": "all"})
    assert "needs a title" in r.get_data(as_text=True)
    assert [p["data"]["title_en"] for p in store.publications()] == ["Road closed"]
    assert store.publications_since(ids["a"], 0)["publications"] == []
    (pub,) = store.publications_since(ids["b"], 0)["publications"]
    assert pub["data"]["title_km"] == "ផ្លូវបិទ"
    assert store.pull_cursor(ids["b"]) == 0


def test_export_writes_every_record(store, tmp_path):
    fill(store)
    store.publish("notice", {"title_en": "For all"}, None)
    out = io.StringIO()
    assert store.export("jsonl", out) == 7
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len({r["id"] for r in rows}) == 7
    assert {r["kind"] for r in rows} == {"feedback", "feedback.revision", "transcript", "play", "published.notice"}
    out = io.StringIO()
    store.export("csv", out)
    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert table[0][:2] == ["id", "kind"] and len(table) == 8
    assert not any(cell.startswith("=") for row in table for cell in row)


def test_hub_central_commands(tmp_path):
    from tests.sync.procs import base_env

    env = base_env(tmp_path / "c")
    r = hub_cmd(["central", "add-hub", "kampong"], env)
    assert r.returncode == 0 and len(r.stdout.strip()) >= 40
    token = r.stdout.strip()
    db = (tmp_path / "c" / "central.db").read_bytes()
    assert token.encode() not in db, "only the token's hash is stored"
    assert hub_cmd(["central", "add-hub", "kampong"], env).returncode == 1
    assert hub_cmd(["central", "user", "add", "officer"], env, stdin="a long password\n").returncode == 0
    r = hub_cmd(["central", "revoke-hub", "kampong"], env)
    assert r.returncode == 0
    r = hub_cmd(["central", "revoke-hub", "kampong"], env)
    assert r.returncode == 1 and "no active hub" in r.stderr
    r = hub_cmd(["central", "export", "--format", "csv"], env)
    assert r.returncode == 0 and r.stdout.startswith("id,kind")


def test_export_reads_a_page_at_a_time(store, monkeypatch):
    fill(store)
    monkeypatch.setattr(reports, "EXPORT_PAGE", 2)
    out = io.StringIO()
    assert store.export("jsonl", out) == 6
    assert len({json.loads(line)["id"] for line in out.getvalue().splitlines()}) == 6
