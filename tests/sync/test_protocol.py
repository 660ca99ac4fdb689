"""The sync protocol's promises, with `hub central` and `hub sync once` as real processes."""

from __future__ import annotations

import json

import requests

from hub import feedback, notices
from hub.core.db import transaction
from hub.sync import outbox, wire
from hub.sync import state as sync_state
from tests.sync.procs import sync_once
from tests.sync.standin import BotAPI


def snapshot(db) -> dict:
    return {t: [tuple(r) for r in db.conn.execute(f"select * from {t} order by 1").fetchall()]
            for t in ("sync_outbox", "sync_seen", "sync_media", "sync_inbox", "notices", "clock_trust",
                      "telegram_posts")}


def api(central, token: str, hub_id: str, method: str, path: str, **kw):
    headers = {"Authorization": f"Bearer {token}", "X-Hub-Id": hub_id, "X-Hub-Nonce": "n1"}
    return requests.request(method, central.url + wire.API + path, headers=headers, timeout=10, **kw)


def test_a_captive_portal_is_not_taken_for_the_central_server(make_hub, standin):
    captive = standin(lambda *a: (200, "text/html", b"<html><body>Welcome! Buy a data package</body></html>"))
    hub = make_hub(captive.url, "a-token-the-portal-never-checks")
    for i in range(20):
        feedback.submit(hub.ctx, {"category": "water", "body": f"m{i}"})
    outbox.scan(hub.ctx)  # some of it was already in the outbox from an earlier cycle
    feedback.submit(hub.ctx, {"category": "roads", "body": "new since"})
    before = snapshot(hub.ctx.db)
    assert len(before["sync_outbox"]) == 20

    rc, out, _ = sync_once(hub.env)

    assert rc == 1
    assert out["online"] is False and out["message"].startswith("not online")
    assert captive.calls, "the hub did ask"
    assert snapshot(hub.ctx.db) == before, "the outbox and everything else is untouched"
    assert hub.ctx.clock.trust() in (None, "ntp"), "the portal's answer did not set the clock"
    from tests.sync.procs import hub_cmd

    r = hub_cmd(["sync", "once"], hub.env)
    assert r.returncode == 1 and r.stdout.startswith("not online")


def test_a_signed_answer_sets_the_clock_and_health_reaches_the_dashboard(central, make_hub):
    token = central.add_hub("kampong")
    hub = make_hub(central.url, token)
    rc, out, err = sync_once(hub.env)
    assert rc == 0, err
    assert hub.ctx.clock.trust() == "central"
    hubs = central.run("hubs").stdout
    assert "kampong" in hubs and hub.ctx.hub_id in hubs and "last contact never" not in hubs


def test_same_id_same_content_is_stored_once_different_content_is_409(central, make_hub):
    token = central.add_hub("kampong")
    hub = make_hub(central.url, token)
    hub_id = hub.ctx.hub_id
    record = {"id": "5a0e8b6e-7f43-4d39-9a3b-111111111111", "kind": "feedback", "hub_id": hub_id,
              "created_at": "2026-01-05T03:00:00+00:00", "data": {"category": "water", "body": "a"}}
    path = f"/records/{record['id']}"
    assert api(central, token, hub_id, "PUT", path, json=record).status_code == 201
    assert api(central, token, hub_id, "PUT", path, json=record).status_code == 200
    other = {**record, "data": {"category": "water", "body": "b"}}
    assert api(central, token, hub_id, "PUT", path, json=other).status_code == 409
    r = api(central, token, hub_id, "POST", "/records", json={"records": [record, other]})
    assert r.json()["duplicate"] == [record["id"]] and r.json()["conflict"] == [record["id"]]
    assert r.json()["status"] == {record["id"]: 409}
    assert [x["data"]["body"] for x in central.export() if x["id"] == record["id"]] == ["a"]


def test_a_409_flags_the_record_on_the_hub_and_the_console_shows_it(central, make_hub):
    from hub import accounts
    from hub.web import create_app
    from tests.conftest import csrf_from

    token = central.add_hub("kampong")
    hub = make_hub(central.url, token)
    fid = feedback.submit(hub.ctx, {"category": "water", "body": "the well is dry"})["id"]
    ok = feedback.submit(hub.ctx, {"category": "water", "body": "another"})["id"]
    # The central server already holds something else under that id (a restored backup, a bug).
    squatter = {"id": fid, "kind": "feedback", "hub_id": hub.ctx.hub_id,
                "created_at": "2026-01-01T00:00:00+00:00", "data": {"body": "something else"}}
    assert api(central, token, hub.ctx.hub_id, "PUT", f"/records/{fid}", json=squatter).status_code == 201

    rc, out, _ = sync_once(hub.env)
    assert out["conflicts"] == 1
    states = dict(hub.ctx.db.conn.execute("select id, state from sync_outbox").fetchall())
    assert states[fid] == "conflict" and states[ok] == "sent"
    rc, out, _ = sync_once(hub.env)
    assert out["conflicts"] == 0, "a flagged record is not sent again"

    app = create_app(hub.ctx.settings, context=hub.ctx)
    client = app.test_client()
    accounts.add_user(hub.ctx.db, "clerk1", "correct horse", "clerk")
    client.post("/clerk/login", data={"username": "clerk1", "password": "correct horse",
                                      "csrf_token": csrf_from(client, "/clerk/login")})
    page = client.get("/clerk/sync/").get_data(as_text=True)
    assert fid in page and "409" in page


def test_a_revoked_token_is_refused_and_leaves_the_outbox_alone(central, make_hub):
    token = central.add_hub("kampong")
    hub = make_hub(central.url, token)
    assert sync_once(hub.env)[0] == 0
    assert central.run("revoke-hub", "kampong").returncode == 0
    feedback.submit(hub.ctx, {"category": "land", "body": "after revocation"})
    before = snapshot(hub.ctx.db)
    rc, out, _ = sync_once(hub.env)
    assert rc == 1 and "401" in out["message"]
    assert snapshot(hub.ctx.db)["sync_outbox"] == before["sync_outbox"]
    assert api(central, token, hub.ctx.hub_id, "POST", "/hello", json={}).status_code == 401
    assert "revoked" in central.run("hubs").stdout


def test_records_in_another_hubs_name_are_refused(central, make_hub):
    token_a = central.add_hub("kampong")
    token_b = central.add_hub("takeo")
    hub_a = make_hub(central.url, token_a, name="a")
    hub_b = make_hub(central.url, token_b, name="b")
    assert sync_once(hub_a.env)[0] == 0 and sync_once(hub_b.env)[0] == 0
    b_id, a_id = hub_b.ctx.hub_id, hub_a.ctx.hub_id
    forged = {"id": "0d8f4f9e-5f43-4d39-9a3b-222222222222", "kind": "feedback", "hub_id": b_id,
              "created_at": "2026-01-05T03:00:00+00:00", "data": {"body": "in b's name"}}
    r = api(central, token_a, a_id, "POST", "/records", json={"records": [forged]})
    assert r.status_code == 403 and r.json()["refused"] == [forged["id"]]
    assert api(central, token_a, b_id, "POST", "/hello", json={}).status_code == 403
    assert api(central, token_a, a_id, "PUT", f"/records/{forged['id']}", json=forged).status_code == 403
    assert forged["id"] not in {x["id"] for x in central.export()}

    # A row carrying another hub's id on hub A (say, restored from B's card) is flagged, the rest goes.
    mine = feedback.submit(hub_a.ctx, {"category": "water", "body": "mine"})["id"]
    theirs = feedback.submit(hub_a.ctx, {"category": "water", "body": "not mine"})["id"]
    with transaction(hub_a.ctx.db) as conn:
        conn.execute("update feedback set hub_id = ? where id = ?", (b_id, theirs))
    rc, out, _ = sync_once(hub_a.env)
    assert out["refused"] == 1
    states = dict(hub_a.ctx.db.conn.execute("select id, state from sync_outbox").fetchall())
    assert states[theirs] == "refused" and states[mine] == "sent"
    held = {x["id"]: x["hub_id"] for x in central.export()}
    assert theirs not in held and held[mine] == a_id


def test_a_notice_published_for_the_hub_appears_on_its_portal(central, make_hub, tmp_path):
    import subprocess

    from hub.web import create_app

    token = central.add_hub("kampong")
    central.add_hub("takeo")
    hub = make_hub(central.url, token)
    mp3 = tmp_path / "notice.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=f=440:d=1", "-c:a", "libmp3lame",
                    str(mp3)], check=True)
    r = central.run("publish", "--title-en", "Vaccination day moved to Friday",
                    "--title-km", "ថ្ងៃចាក់វ៉ាក់សាំងប្តូរទៅថ្ងៃសុក្រ", "--body-en", "Bring the health card.",
                    "--audio", str(mp3), "--to", "kampong")
    assert r.returncode == 0, r.stderr
    pub_id = r.stdout.strip()
    assert central.run("publish", "--title-en", "Only for Takeo", "--to", "takeo").returncode == 0
    assert central.run("publish", "--title-en", "Province-wide holiday").returncode == 0

    rc, out, err = sync_once(hub.env)
    assert rc == 0, err
    assert out["pulled"] == 2
    client = create_app(hub.ctx.settings, context=hub.ctx).test_client()
    client.get("/lang/en")
    home = client.get("/").get_data(as_text=True)
    assert "Vaccination day moved to Friday" in home and "Province-wide holiday" in home
    assert "Only for Takeo" not in home
    n = notices.get(hub.ctx.db, pub_id)
    assert n["origin"] == "central" and n["audio_name"]
    assert client.get(f"/notice/{pub_id}").status_code == 200
    media = client.get(f"/media/{n['audio_name']}")
    assert media.status_code == 200 and len(media.get_data()) > 1000
    media.close()

    # Pulling again changes nothing; withdrawing on the central server expires it on the hub.
    rc, out, _ = sync_once(hub.env)
    assert out["pulled"] == 0
    store = central.open_store()
    store.withdraw(pub_id)
    store.close()
    rc, out, _ = sync_once(hub.env)
    assert out["pulled"] == 1
    assert "Vaccination day moved to Friday" not in client.get("/").get_data(as_text=True)


def test_an_announcement_without_audio_is_refused_in_one_line(central):
    r = central.run("publish", "--kind", "announcement", "--title-en", "Flood warning")
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "--audio" in r.stderr


def test_new_public_notices_are_posted_to_telegram_once(central, proxy, make_hub, standin, tmp_path):
    from tests.phone_audio import tone_wav

    bot = BotAPI()
    telegram = standin(bot)
    token = central.add_hub("kampong")
    hub = make_hub(proxy.url, token, telegram_bot_token="123456:ABCdef-secret", telegram_chat_id="@kampong",
                   telegram_api_url=telegram.url)
    notices.create(hub.ctx, {"title_en": "Old notice, before the mirror"})
    assert sync_once(hub.env)[0] == 0
    assert bot.messages == []

    notices.create(hub.ctx, {"title_km": "ប្រជុំឃុំ", "title_en": "Commune meeting", "body_en": "Monday 8 am"})
    row = hub.ctx.media.prepare_audio(tone_wav(tmp_path / "n.wav", seconds=1))
    notices.create(hub.ctx, {"title_en": "Listen: water schedule", "audio_id": row["id"]}, media_rows=[row])
    proxy.down = True  # the uplink is down: nothing goes to Telegram either
    assert sync_once(hub.env)[0] == 1
    assert bot.messages == [] and telegram.calls == []
    proxy.down = False

    rc, out, _ = sync_once(hub.env)  # the audio fails once (502) ...
    assert len(bot.messages) == 2 and bot.audios == []
    rc, out, _ = sync_once(hub.env)  # ... and is retried, without posting its text again
    rc, out, _ = sync_once(hub.env)
    assert [m["text"].splitlines()[0] for m in bot.messages] == ["ប្រជុំឃុំ", "Listen: water schedule"]
    assert all(m["chat_id"] == "@kampong" for m in bot.messages)
    assert len(bot.audios) == 1 and bot.audios[0]["caption"] == "Listen: water schedule"
    assert bot.audios[0]["size"] > 1000
    posts = list(hub.ctx.db.query("select state, message_ids from telegram_posts"))
    assert len(posts) == 2 and all(p["state"] == "posted" for p in posts)
    assert "123456:ABCdef-secret" not in json.dumps(sync_state.all_state(hub.ctx.db))


def test_a_publication_that_cannot_be_applied_does_not_stop_the_others(central, make_hub, tmp_path):
    token = central.add_hub("kampong")
    hub = make_hub(central.url, token)
    bad = tmp_path / "not-audio.mp3"
    bad.write_text("this is not a recording")
    r = central.run("publish", "--title-en", "Broken recording", "--audio", str(bad))
    bad_id = r.stdout.strip()
    central.run("publish", "--title-en", "Market day")
    rc, out, err = sync_once(hub.env)
    assert rc == 0, err
    assert out["extra"]["not_applied"] == [bad_id]
    assert [n["title_en"] for n in notices.all_notices(hub.ctx.db)] == ["Market day"]
