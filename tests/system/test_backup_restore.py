"""A dead card: the hub's backup on a USB stick, restored onto a new card, is the same hub.

One appliance is used by villagers and a clerk, backed up with `hub backup` onto
a folder standing for a USB stick, and powered off for good. A second one boots
from a freshly provisioned card, gets `sudo hub restore FILE`, and must be the
same hub: the same id, the same records and receipt codes, the voice readable
through nginx (files owned by hub with the media store's modes), the reply on
the villager's receipt page, and `hub doctor` saying when the backup was made.
"""

from __future__ import annotations

import json
import re
import shutil

from tests.phone_audio import encode, tone_wav
from tests.system.conftest import MEDIA_RE, clerk_session, csrf, receipt_of, send_feedback, session

FEEDBACK = "select id, receipt, status, coalesce(reply, ''), coalesce(audio_id, '') from feedback order by id"


def sql(app, query: str) -> list[list[str]]:
    r = app.sh(f"sqlite3 -readonly -separator '|' /var/lib/hub/hub.db \"{query}\"", user="hub")
    return [line.split("|") for line in r.stdout.splitlines()]


def backup_check(app) -> dict:
    r = app.hub("doctor --json --lang en", check=False)
    return {c["id"]: c for c in json.loads(r.stdout)["checks"]}["backup"]


def test_a_backup_restored_onto_a_new_card_is_the_same_hub(make_appliance, tmp_path):
    old = make_appliance("hubb")
    old.boot()
    voice = encode(tone_wav(tmp_path / "v.wav", seconds=2.0), "m4a", tmp_path)
    voiced = receipt_of(send_feedback(old, voice))
    texted = receipt_of(send_feedback(old, body="ផ្លូវទៅភូមិខូច"))
    clerk = clerk_session(old)
    fid = sql(old, f"select id from feedback where receipt = '{texted}'")[0][0]
    token = csrf(clerk, f"{old.staff}/clerk/feedback/{fid}")
    r = clerk.post(f"{old.staff}/clerk/feedback/{fid}", allow_redirects=False, timeout=30,
                   data={"csrf_token": token, "status": "answered", "reply": "យើងនឹងជួសជុលនៅសប្តាហ៍ក្រោយ"})
    assert r.status_code == 303, r.text[:300]
    assert backup_check(old)["status"] == "warn", "no backup yet"
    hub_id = sql(old, "select value from hub_state where key = 'hub_id'")[0][0]
    records = sql(old, FEEDBACK)
    vid = sql(old, f"select id from feedback where receipt = '{voiced}'")[0][0]
    audio = MEDIA_RE.search(clerk.get(f"{old.staff}/clerk/feedback/{vid}", timeout=30).text).group(1)
    sound = session().get(f"{old.portal}/media/{audio}", timeout=30).content
    assert len(sound) > 1000

    # The technician's USB stick; the backup is made while the hub runs.
    old.sh("mkdir -p /media/usb")
    r = old.hub("backup /media/usb", user=None)
    assert "backup of hub" in r.stdout, r.stdout + r.stderr
    assert backup_check(old)["status"] == "ok"
    made = list((old.root / "media/usb").glob("hub-*.tar"))
    assert len(made) == 1
    stick = tmp_path / made[0].name
    shutil.copy(made[0], stick)
    old.destroy()  # the card died

    new = make_appliance("hubn")
    new.boot()
    fresh = sql(new, "select value from hub_state where key = 'hub_id'")
    assert fresh != [[hub_id]]
    new.write(f"/media/usb/{stick.name}", stick.read_bytes(), mode=0o600)
    r = new.hub(f"restore /media/usb/{stick.name}", user=None, timeout=300)
    assert f"hub {hub_id} restored" in r.stdout, r.stdout + r.stderr
    assert "every checksum matches" in r.stdout

    assert sql(new, "select value from hub_state where key = 'hub_id'") == [[hub_id]]
    got = sql(new, FEEDBACK)
    assert got == records
    owners = new.sh("stat -c '%U:%G %a' /var/lib/hub /var/lib/hub/media /var/lib/hub/hub.db"
                    f" /var/lib/hub/media/{audio}").stdout.split("\n")
    assert owners[:4] == ["hub:hub 750", "hub:hub 750", "hub:hub 640", "hub:hub 640"], owners
    for unit in ("hub-web", "hub-sync", "hub-announcer"):
        assert new.unit(unit, "ActiveState") == "active", new.journal(unit)[-2000:]

    # The villager's receipt shows the clerk's answer; the voice plays through nginx (www-data).
    page = session().get(f"{new.portal}/receipt/{texted}", timeout=30)
    assert page.status_code == 200 and "យើងនឹងជួសជុលនៅសប្តាហ៍ក្រោយ" in page.text.replace("\u200b", "")
    page = session().get(f"{new.portal}/receipt/{voiced}", timeout=30)
    assert page.status_code == 200 and f"/media/{audio}" in page.text, "the receipt plays the voice back"
    clerk = clerk_session(new)  # the clerk's account came back too
    listed = MEDIA_RE.search(clerk.get(f"{new.staff}/clerk/feedback/{vid}", timeout=30).text).group(1)
    assert listed == audio
    assert session().get(f"{new.portal}/media/{audio}", timeout=30).content == sound
    found = backup_check(new)
    assert found["status"] == "ok" and re.search(r"restored from /media/usb/hub-", found["detail"]), found
