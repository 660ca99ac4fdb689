"""A full SD card: the hub's data on a file system of a few MB, filled up while the hub runs."""

from __future__ import annotations

from tests.phone_audio import encode, tone_wav
from tests.system.conftest import clerk_session, csrf, receipt_of, send_feedback, session


def counts(app) -> tuple[int, int, list[str]]:
    r = app.sh("sqlite3 -readonly /var/lib/hub/hub.db 'select count(*) from feedback; select count(*) from media'",
               user="hub")
    feedback, media = (int(x) for x in r.stdout.split())
    files = sorted(p.name for p in (app.data_mount / "media").iterdir()) if (app.data_mount / "media").exists() else []
    return feedback, media, files


def test_a_full_disk_refuses_feedback_in_khmer_keeps_serving_notices_and_recovers(make_appliance, tmp_path):
    app = make_appliance("hubd", data_image_mb=12, settings={"min_free_mb": 2})
    app.boot()
    clerk = clerk_session(app)
    token = csrf(clerk, f"{app.staff}/clerk/notices/new")
    r = clerk.post(f"{app.staff}/clerk/notices/new", data={"csrf_token": token, "title_km": "ទឹកស្អាត"},
                   allow_redirects=False, timeout=60)
    assert r.status_code in (302, 303)
    voice = encode(tone_wav(tmp_path / "v.wav", seconds=3.0), "m4a", tmp_path)
    receipt_of(send_feedback(app, voice))
    web_pid = app.unit("hub-web", "MainPID")

    # The card fills up (a log, a copy, anything) until nothing is left.
    app.sh("dd if=/dev/zero of=/var/lib/hub/filler bs=64k 2>/dev/null; sync", check=False, timeout=120)
    before = counts(app)
    phone = session()
    home = phone.get(f"{app.portal}/", timeout=30)
    assert home.status_code == 200 and "ទឹកស្អាត" in home.text.replace("\u200b", "")
    r = send_feedback(app, voice)
    assert r.status_code == 507, (r.status_code, r.text[:300])
    assert "ទំហំ" in r.text or "ពេញ" in r.text, r.text[:2000]  # said in Khmer: storage is full
    assert 'lang="km"' in r.text
    assert counts(app) == before, "something was half-stored on the full disk"
    # Text alone: stored if SQLite still finds room in its pages, else refused the same way.
    r = send_feedback(app, body="ផ្លូវខូច")
    assert r.status_code in (303, 507), (r.status_code, r.text[:300])
    if r.status_code == 507:
        assert counts(app) == before and "ពេញ" in r.text
    else:
        before = counts(app)

    # Space comes back: everything works again, without a restart.
    app.sh("rm -f /var/lib/hub/filler")
    code = receipt_of(send_feedback(app, voice))
    assert phone.get(f"{app.portal}/receipt/{code}", timeout=30).status_code == 200
    after = counts(app)
    assert after[0] == before[0] + 1 and after[1] == before[1] + 1
    assert app.unit("hub-web", "MainPID") == web_pid and app.unit("hub-web", "NRestarts") == "0"
