"""Remote settings and diagnostics: an officer asks on the console, the hub carries it out on its next sync.

A real `hub central` on PostgreSQL, real `hub sync once` processes; the console is the central
app in this process on the same database, as an officer's browser would reach it.
"""

from __future__ import annotations

import json
import re

import pytest

from hub import accounts
from hub.core import settings as settings_mod
from hub.sync import remote
from hub.sync import state as sync_state
from tests.sync.procs import sync_once

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSPHRASE = "correct horse 42"
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,}")

ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def officer(central, make_settings):
    from hub.central.web import create_central_app

    store = central.open_store()
    accounts.add_user(store.db, "officer", "a long password", "admin")
    app = create_central_app(make_settings(data_dir=central.data_dir, database_url=central.database_url),
                             store=store)
    client = app.test_client()
    token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
    r = client.post("/login", data={"username": "officer", "password": "a long password", "csrf_token": token})
    assert r.status_code == 303
    client.store = store
    yield client
    store.close()


def post(officer, path: str, form_page: str | None = None, **form):
    page = officer.get(form_page or path).get_data(as_text=True)
    return officer.post(path, data={"csrf_token": CSRF.search(page).group(1), **form})


def changes(officer, hub_id: str) -> list[dict]:
    return list(officer.store.db.query("select * from hub_settings_changes where hub_id = ? order by asked_at",
                                       [hub_id]))


@ON_POSTGRESQL
def test_an_officer_changes_a_hubs_settings_and_the_hub_applies_them_on_its_next_sync(central, make_hub, officer):
    token = central.add_hub("kampong")
    hub = make_hub(central.url, token, ssid="Village-Wifi")
    assert sync_once(hub.env)[0] == 0
    hub_id = hub.ctx.hub_id
    care = f"/hubs/{hub_id}/care"

    # Values the hub could not use are refused at once, in Khmer with the check's English beside it.
    officer.get("/lang/km")
    r = post(officer, care, quiet_hours_start="25:00")
    page = r.get_data(as_text=True)
    assert r.status_code == 400
    assert "ម៉ោងស្ងាត់" in page and "មិនអាចប្រើ" in page, page
    assert "is not a time of day like 21:00" in page
    officer.get("/lang/en")
    for bad, why in (({"sync_interval_seconds": "often"}, "is not a valid int"),
                     ({"sync_interval_seconds": "0"}, "must be greater than 0"),
                     ({"sync_daily_budget_mb": "-1"}, "must not be negative"),
                     ({"ssid": "x" * 33}, "must be 1 to 32 bytes"),
                     ({"staff_ssid": "Office", "staff_passphrase": "short"}, "8 to 63 printable ASCII")):
        r = post(officer, care, **bad)
        page = r.get_data(as_text=True)
        assert r.status_code == 400 and why in page and "this value cannot be used" in page, (bad, page)
        assert 'value="short"' not in page, "a password is never sent back into the page"
    assert changes(officer, hub_id) == [], "nothing half-stored"

    r = post(officer, care, hub_name="ឃុំស្វាយ", quiet_hours_start="22:00", sync_interval_seconds="600",
             staff_ssid="Office", staff_passphrase=PASSPHRASE)
    assert r.status_code == 303
    # A second change before the hub synced joins the waiting one.
    assert post(officer, care, sync_daily_budget_mb="20").status_code == 303
    [change] = changes(officer, hub_id)
    assert change["state"] == "waiting" and json.loads(change["changes"])["sync_daily_budget_mb"] == 20.0

    rc, out, err = sync_once(hub.env)
    assert rc == 0, err
    assert out["extra"]["settings_change"] == {"id": change["id"], "state": "applied", "message": ""}
    path = hub.data_dir / settings_mod.REMOTE_FILE
    assert settings_mod.read_remote(path) == {"hub_name": "ឃុំស្វាយ", "quiet_hours_start": "22:00",
                                              "sync_interval_seconds": 600, "staff_ssid": "Office",
                                              "staff_passphrase": PASSPHRASE, "sync_daily_budget_mb": 20.0}
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    # Every daemon that starts now reads them: the one loader reads hub.toml, then this file.
    s = settings_mod.load(config=None, env=hub.env)
    assert (s.hub_name, s.quiet_hours_start, s.sync_interval_seconds, s.staff_passphrase) == \
        ("ឃុំស្វាយ", "22:00", 600, PASSPHRASE)
    job = json.loads((hub.data_dir / remote.APPLY_FILE).read_text())
    assert job == {"change": change["id"], "netconfig": True}, "the Wi-Fi changed: hub netconfig must run"

    [change] = changes(officer, hub_id)
    assert change["state"] == "applied" and change["answered_at"]
    assert PASSPHRASE not in change["changes"], "the passphrase is not kept once delivered"
    page = officer.get(care).get_data(as_text=True)
    assert "Applied" in page and "ឃុំស្វាយ" in page and PASSPHRASE not in page
    assert "22:00" in page.split("On the hub now")[1]

    # The next change keeps the file it replaces.
    before = path.read_bytes()
    (hub.data_dir / remote.APPLY_FILE).unlink()
    assert post(officer, care, quiet_hours_end="05:30").status_code == 303
    assert sync_once(hub.env)[0] == 0
    assert (hub.data_dir / (settings_mod.REMOTE_FILE + settings_mod.PREVIOUS_SUFFIX)).read_bytes() == before
    assert settings_mod.read_remote(path)["quiet_hours_end"] == "05:30"
    assert json.loads((hub.data_dir / remote.APPLY_FILE).read_text())["netconfig"] is False

    # The hub checks again with its own hub.toml: its villagers' network is already called this.
    before = path.read_bytes()
    (hub.data_dir / remote.APPLY_FILE).unlink()
    assert post(officer, care, staff_ssid="Village-Wifi").status_code == 303
    rc, out, err = sync_once(hub.env)
    assert rc == 0, err
    assert out["extra"]["settings_change"]["state"] == "refused"
    assert "staff_ssid" in out["extra"]["settings_change"]["message"]
    assert path.read_bytes() == before and not (hub.data_dir / remote.APPLY_FILE).exists()
    last = changes(officer, hub_id)[-1]
    assert last["state"] == "refused" and "must differ from ssid" in last["message"]
    page = officer.get(care).get_data(as_text=True)
    assert "Refused by the hub" in page and "must differ from ssid" in page
    # Nothing waits any more: the next sync carries nothing.
    assert "settings_change" not in sync_once(hub.env)[1]["extra"]


@ON_POSTGRESQL
def test_a_diagnostics_bundle_arrives_on_the_next_sync_without_secrets(central, make_hub, officer):
    token = central.add_hub("takeo")
    hub = make_hub(central.url, token, staff_ssid="Office", staff_passphrase=PASSPHRASE,
                   secret_key="cookie-signing-key-0123456789")
    assert sync_once(hub.env)[0] == 0
    # Secrets that found their way into what a bundle carries as it is (here: the sync state).
    sync_state.set_state(hub.ctx.db, last_outcome=f"stopped: token {token} passphrase {PASSPHRASE}",
                         note=f"Authorization: Bearer {token}")
    care = f"/hubs/{hub.ctx.hub_id}/care"
    officer.get("/lang/en")
    assert post(officer, care.replace("/care", "/diagnostics"), form_page=care).status_code == 303
    page = officer.get(care).get_data(as_text=True)
    assert "Waiting for the next sync" in page

    rc, out, err = sync_once(hub.env)
    assert rc == 0, err
    assert len(out["extra"]["diagnostics"]) == 1
    page = officer.get(care).get_data(as_text=True)
    link = re.search(r'href="(/diagnostics/[^"]+\.json)"', page).group(1)
    r = officer.get(link)
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    text = r.get_data(as_text=True)
    bundle = json.loads(text)
    assert bundle["versions"]["hub"] and bundle["versions"]["python"]
    assert {c["id"] for c in bundle["doctor"]["checks"]} >= {"config", "database", "disk"}
    assert "journal" in bundle and bundle["hub_id"] == hub.ctx.hub_id
    for secret in (token, PASSPHRASE, "cookie-signing-key-0123456789"):
        assert secret not in text, secret
    assert remote.REDACTED in bundle["sync_state"]["last_outcome"]
    # The database holds only the redacted bundle too.
    raw = list(officer.store.db.query("select bundle from hub_diagnostics"))[0]["bundle"]
    assert token not in raw and PASSPHRASE not in raw
    # Another officer's hub, or a made-up id, is not there.
    assert officer.get("/diagnostics/nope.json").status_code == 404
    assert officer.get("/hubs/nope/care").status_code == 404


def test_the_redaction_catches_what_a_log_line_may_carry():
    line = ('sync failed: GET https://c/api?token=abcdefgh1234 "Authorization": "Bearer s3cr3t-t0ken"'
            ' staff_passphrase = "hunter22x" my-own-secret')
    out = remote.redact(line, ["my-own-secret"])
    for s in ("abcdefgh1234", "s3cr3t-t0ken", "hunter22x", "my-own-secret"):
        assert s not in out
