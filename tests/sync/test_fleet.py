"""The fleet's care: health on every sync, alerts to officers on Telegram, backups to the central server.

`hub central`, `hub sync once`, `hub central alerts` and `hub restore` run as real
processes, on SQLite and on PostgreSQL; Telegram is the local Bot API stand-in.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from hub import accounts, feedback
from hub.central import fleet
from hub.core import settings as settings_mod
from hub.core.db import new_id, transaction
from hub.sync import state as sync_state
from tests.phone_audio import tone_wav
from tests.sync.procs import hub_cmd, sync_once
from tests.sync.standin import BotAPI

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def missed_play(ctx, at: datetime) -> str:
    play_id, hub_id = new_id(), ctx.hub_id
    with transaction(ctx.db) as conn:
        conn.execute("insert into play_log (id, hub_id, created_at, title, outcome, detail)"
                     " values (?, ?, ?, ?, 'missed', 'interrupted by a restart')",
                     (play_id, hub_id, at.isoformat(timespec="seconds"), "Market day"))
    return play_id


TELEGRAM = {"telegram_bot_token": "123456:fleet-secret", "fleet_chat_id": "@officers"}


def alerts(central, telegram, **settings) -> tuple[int, str, str]:
    """`hub central alerts`, one pass, as the officers' server runs it."""
    values = {**TELEGRAM, "telegram_api_url": telegram.url, **settings}
    r = hub_cmd(["central", "alerts"], {**central.env, **{f"HUB_{k.upper()}": str(v) for k, v in values.items()}})
    return r.returncode, r.stdout, r.stderr


def alerts_pass(central, telegram, **settings) -> list[str]:
    """The same pass in this process (no start-up cost), to the same Bot API stand-in."""
    values = {**TELEGRAM, "telegram_api_url": telegram.url, "data_dir": central.data_dir,
              "database_url": central.database_url, **settings}
    s = settings_mod.load(config=None, env={}, overrides=values)
    store = central.open_store()
    try:
        return fleet.run_alerts(store, s, fleet.telegram_sender(s))
    finally:
        store.close()


def test_health_reaches_the_central_server_and_officers_hear_of_problems_once(central, make_hub, standin):
    bot = BotAPI()
    telegram = standin(bot)
    kampong = make_hub(central.url, central.add_hub("kampong"), name="kampong")
    takeo = make_hub(central.url, central.add_hub("takeo"), name="takeo")
    missed_play(kampong.ctx, datetime.now(UTC) - timedelta(hours=2))
    feedback.submit(kampong.ctx, {"category": "water", "body": "the well is dry"})
    doctor = hub_cmd(["doctor", "--json", "--lang", "en", "--timeout", "1",
                      "--skip", "services,access_point,portal,speech,uplink"], kampong.env)
    failing = sorted(c["id"] for c in json.loads(doctor.stdout)["checks"] if c["status"] == "fail")
    assert failing, doctor.stdout  # no sound card here, at least
    for h in (kampong, takeo):
        assert sync_once(h.env)[0] == 0

    store = central.open_store()
    try:
        health = {h["name"]: h for h in store.hubs()}
        k = health["kampong"]["health"]
        assert k["missed_plays"] == 1 and k["failing_checks"] == failing
        assert k["version"] and k["disk_free_mb"] > 0 and "clock_trust" in k  # the first hello sets it
        assert k["oldest_waiting_seconds"] >= 0 and k["last_backup_at"] == ""
        assert health["takeo"]["health"]["missed_plays"] == 0
        # Takeo falls silent: its last contact was three days ago.
        with transaction(store.db) as conn:
            conn.execute("update hubs set last_contact = ? where name = 'takeo'",
                         ((datetime.now(UTC) - timedelta(days=3)).isoformat(timespec="seconds"),))
    finally:
        store.close()

    # Seen, but not yet for long enough: nobody is woken.
    assert alerts_pass(central, telegram, fleet_alert_after_minutes=10) == []
    # A low disk that clears before its time was never worth a message.
    assert alerts_pass(central, telegram, fleet_alert_after_minutes=10, fleet_disk_low_mb=10**9) == []
    assert alerts_pass(central, telegram, fleet_alert_after_minutes=10) == []
    assert bot.messages == []

    rc, out, err = alerts(central, telegram, fleet_alert_after_minutes=0)
    assert rc == 0, err
    texts = sorted(m["text"] for m in bot.messages)
    assert len(texts) == 2 and all(m["chat_id"] == "@officers" for m in bot.messages)
    missed = next(t for t in texts if "kampong" in t)
    silent = next(t for t in texts if "takeo" in t)
    assert "1 announcements missed in the last day" in missed.splitlines()[1]
    assert "មិនបានចាក់" in missed.splitlines()[0], "Khmer first"
    assert "no contact since" in silent and "គ្មានទំនាក់ទំនង" in silent.splitlines()[0]
    assert "123456:fleet-secret" not in out + err

    # Sent once: the next passes say nothing while the problems last.
    for _ in range(2):
        assert alerts_pass(central, telegram, fleet_alert_after_minutes=0) == []
    assert len(bot.messages) == 2

    # Both recover: the missed play is old news, Takeo is heard from again.
    with transaction(kampong.ctx.db) as conn:
        conn.execute("update play_log set created_at = ?",
                     ((datetime.now(UTC) - timedelta(days=2)).isoformat(timespec="seconds"),))
    for h in (kampong, takeo):
        assert sync_once(h.env)[0] == 0
    store = central.open_store()
    assert {h["name"]: h["health"]["clock_trust"] for h in store.hubs()} == {"kampong": "central", "takeo": "central"}
    store.close()
    assert alerts(central, telegram, fleet_alert_after_minutes=0)[0] == 0
    recovered = sorted(m["text"] for m in bot.messages[2:])
    assert len(recovered) == 2 and all(t.startswith("✅") for t in recovered)
    assert any("takeo: in contact again" in t for t in recovered)
    assert any("kampong: no more missed announcements" in t for t in recovered)
    assert alerts_pass(central, telegram, fleet_alert_after_minutes=0) == []
    assert len(bot.messages) == 4, "a recovery is said once too"


@pytest.mark.parametrize("database_url", [""])  # the retry is the same on both backends
def test_an_alert_telegram_refuses_is_sent_on_the_next_pass(central, make_hub, standin):
    bot = BotAPI()
    down = {"on": True}

    def flaky(method, path, headers, body):
        if down["on"]:
            return 502, "application/json", b'{"ok": false, "error_code": 502, "description": "Bad Gateway"}'
        return bot(method, path, headers, body)

    telegram = standin(flaky)
    hub = make_hub(central.url, central.add_hub("kampong"))
    assert sync_once(hub.env)[0] == 0
    assert alerts_pass(central, telegram, fleet_alert_after_minutes=0, fleet_disk_low_mb=10**9) == []
    assert bot.messages == [] and telegram.calls, "Telegram was asked and refused"
    down["on"] = False
    alerts_pass(central, telegram, fleet_alert_after_minutes=0, fleet_disk_low_mb=10**9)
    assert len(bot.messages) == 1 and "low disk space" in bot.messages[0]["text"]


def test_a_backup_goes_to_the_central_server_in_chunks_within_the_budget(central, make_hub, tmp_path):
    hub = make_hub(central.url, central.add_hub("kampong"), sync_chunk_kb=16, sync_daily_budget_mb=0.45,
                   backup_interval_hours=24)
    row = hub.ctx.media.prepare_audio(tone_wav(tmp_path / "v.wav", seconds=6))
    item = feedback.submit(hub.ctx, {"category": "water", "body": ""}, audio_row=row)
    accounts.add_user(hub.ctx.db, "sokha", "a long password", "clerk")

    rc, out, err = sync_once(hub.env)  # the budget runs out half way: the backup waits, the cycle is fine
    assert rc == 0, err
    assert "waiting for tomorrow's data budget" in out["extra"]["backup"]
    job = json.loads(sync_state.get_state(hub.ctx.db, "backup_upload"))
    first = out["extra"]["backup_bytes"]
    assert 0 < first < job["bytes"]

    hub.settings_values["sync_daily_budget_mb"] = 0  # the next day, say
    rc, out, err = sync_once(hub.env)
    assert rc == 0, err
    assert out["extra"]["backup_done"] == job["id"]
    assert first + out["extra"]["backup_bytes"] <= job["bytes"] + 16 * 1024, "resumed, not sent again"

    fetched = tmp_path / "from-central.tar"
    r = central.run("hub-backup", "kampong", str(fetched))
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(fetched.read_bytes()).hexdigest() == job["sha256"]

    # The central server keeps the newest backup only.
    sync_state.set_state(hub.ctx.db, backup_sent_at=None)
    feedback.submit(hub.ctx, {"category": "roads", "body": "after the first backup"})
    rc, out, err = sync_once(hub.env)
    assert rc == 0 and out["extra"]["backup_done"] != job["id"], err
    store = central.open_store()
    try:
        rows = list(store.db.query("select backup_id from hub_backups"))
        assert [r["backup_id"] for r in rows] == [out["extra"]["backup_done"]]
        assert store.upload_state(job["id"]) is None
        assert not store.media.exists(f"{job['id']}.bin")
    finally:
        store.close()

    # The fetched backup makes a new card the same hub.
    card = tmp_path / "new-card"
    env = {**{k: v for k, v in hub.env.items() if not k.startswith("HUB_")}, "HUB_DATA_DIR": str(card)}
    assert hub_cmd(["migrate"], env).returncode == 0
    r = hub_cmd(["restore", str(fetched)], env)
    assert r.returncode == 0, r.stderr
    assert f"hub {hub.ctx.hub_id} restored" in r.stdout
    skip = "services,access_point,portal,audio,gpio,speech,uplink,sync"
    r = hub_cmd(["doctor", "--json", "--lang", "en", "--skip", skip], env)
    found = {c["id"]: c for c in json.loads(r.stdout)["checks"]}["backup"]
    assert found["status"] == "ok"
    import sqlite3

    conn = sqlite3.connect(card / "hub.db")
    assert conn.execute("select receipt from feedback").fetchall() == [(item["receipt"],)]
    conn.close()


@pytest.fixture
def officer(central, make_settings):
    from hub.central.web import create_central_app

    store = central.open_store()
    accounts.add_user(store.db, "officer", "a long password", "admin")
    app = create_central_app(make_settings(data_dir=central.data_dir, fleet_disk_low_mb=10**9,
                                           database_url=central.database_url), store=store)
    client = app.test_client()
    token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
    r = client.post("/login", data={"username": "officer", "password": "a long password", "csrf_token": token})
    assert r.status_code == 303
    yield client
    store.close()


def test_the_console_shows_the_fleets_health(central, make_hub, officer):
    hub = make_hub(central.url, central.add_hub("kampong"))
    missed_play(hub.ctx, datetime.now(UTC))
    assert sync_once(hub.env)[0] == 0
    central.add_hub("takeo")  # registered, never heard from

    officer.get("/lang/en")
    r = officer.get("/fleet")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and len(r.data) < 30 * 1024
    assert "kampong" in page and "takeo" in page
    assert "Missed plays" in page and "Low disk" in page
    assert "No backup yet" in page
    officer.get("/lang/km")
    page = officer.get("/fleet").get_data(as_text=True)
    assert "ស្ថានភាពហាប់" in page and "ការផ្សាយដែលខកខាន" in page


@pytest.mark.parametrize("database_url", [""])  # the hub decides this alone
def test_no_backup_copy_is_made_when_it_would_take_the_room_recordings_need(central, make_hub):
    hub = make_hub(central.url, central.add_hub("kampong"), min_free_mb=10**8, backup_interval_hours=24)
    feedback.submit(hub.ctx, {"category": "water", "body": "the well is dry"})
    rc, out, err = sync_once(hub.env)
    assert rc == 0 and out["pushed"] >= 1, err
    assert out["extra"]["backup"].startswith("not enough free disk")
    assert not list((hub.data_dir / "backups").glob("*.tar"))
    assert sync_state.get_state(hub.ctx.db, "backup_upload") is None
