"""A hub release comes down during sync: in ranges, within the data budget, resumed the next day.

`hub central release publish` stores the release on a real central server; `hub sync once`
fetches it into ``DATA/update/ready.release``, the file hub-update.service installs.
"""

from __future__ import annotations

import os
import zipfile

import pytest

from hub.sync import state as sync_state
from hub.update import release as rel
from tests.sync.procs import hub_cmd, sync_once


def big_wheel(tmp_path, version="0.9.0"):
    w = tmp_path / f"commune_hub-{version}-py3-none-any.whl"
    with zipfile.ZipFile(w, "w", zipfile.ZIP_STORED) as z:
        z.writestr("hub/__init__.py", f'__version__ = "{version}"\n')
        z.writestr("hub/blob.bin", os.urandom(600 * 1024))
    return w


@pytest.mark.parametrize("database_url", [""])
def test_a_release_comes_down_in_ranges_within_the_budget_and_resumes(central, make_hub, tmp_path):
    key = tmp_path / "release.key"
    assert hub_cmd(["central", "release", "keygen", str(key)], central.env).returncode == 0
    wheel = big_wheel(tmp_path)
    r = hub_cmd(["central", "release", "publish", str(wheel), "--key", str(key), "--min-version", "0.1.0",
                 "--out", str(tmp_path / "r.release")], central.env)
    assert r.returncode == 0 and "offered to the hubs" in r.stdout, r.stdout + r.stderr
    hub = make_hub(central.url, central.add_hub("kampong"), name="kampong",
                   release_key_file=str(key) + ".pub", sync_chunk_kb=64, sync_daily_budget_mb=0.4)
    part = hub.data_dir / "update" / "download" / "0.9.0.whl.part"
    ready = hub.data_dir / "update" / "ready.release"

    code, out, err = sync_once(hub.env)
    assert code == 0, err
    assert "tomorrow's data budget" in out["extra"]["update"], out
    got = part.stat().st_size
    assert 0 < got < wheel.stat().st_size and got % (64 * 1024) == 0
    today = hub.ctx.clock.now().date().isoformat()
    assert sync_state.usage(hub.ctx.db, today) <= 0.4 * 1024 * 1024
    assert not ready.exists()

    # The next day's budget: it goes on from the part's end, not from the start.
    hub.settings_values["sync_daily_budget_mb"] = 5
    code, out, err = sync_once(hub.env)
    assert code == 0, err
    assert "downloaded" in out["extra"]["update"], out
    assert out["extra"]["update_bytes"] == wheel.stat().st_size - got
    release, whl = rel.open_release_file(ready, key.with_name("release.key.pub"), tmp_path / "check")
    assert release.version == "0.9.0" and whl.read_bytes() == wheel.read_bytes()
    assert not part.exists()

    # Waiting to be installed: not fetched again.
    code, out, _ = sync_once(hub.env)
    assert "waits to be installed" in out["extra"]["update"] and "update_bytes" not in out["extra"]
    # Being installed (hub-update.service took the file): not fetched again meanwhile.
    ready.unlink()
    (hub.data_dir / "update" / "state.json").write_text('{"step": "install", "version": "0.9.0"}')
    code, out, _ = sync_once(hub.env)
    assert "being installed" in out["extra"]["update"] and not ready.exists()
    # Rolled back here: never fetched again.
    (hub.data_dir / "update" / "state.json").unlink()
    (hub.data_dir / "update" / "failed.json").write_text('["0.9.0"]')
    code, out, _ = sync_once(hub.env)
    assert "not tried again" in out["extra"]["update"] and not ready.exists()
    store = central.open_store()
    try:
        health = {h["name"]: h["health"] for h in store.hubs()}["kampong"]
    finally:
        store.close()
    assert health["update_failed"] == ["0.9.0"] and "update_last" in health  # told with the hello


@pytest.mark.parametrize("database_url", [""])
def test_a_release_signed_with_another_key_is_not_downloaded(central, make_hub, tmp_path):
    key, other = tmp_path / "release.key", tmp_path / "other.key"
    for k in (key, other):
        assert hub_cmd(["central", "release", "keygen", str(k)], central.env).returncode == 0
    r = hub_cmd(["central", "release", "publish", str(big_wheel(tmp_path)), "--key", str(other),
                 "--min-version", "0.1.0", "--out", str(tmp_path / "r.release")], central.env)
    assert r.returncode == 0, r.stderr
    hub = make_hub(central.url, central.add_hub("takeo"), name="takeo", release_key_file=str(key) + ".pub")
    code, out, err = sync_once(hub.env)
    assert code == 0, err
    assert "signature" in out["extra"]["update"], out
    assert not (hub.data_dir / "update" / "download").exists()
