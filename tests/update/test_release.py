"""Release files: signed with the central server's key, checked before anything is installed;
the A/B switch and the recovery after a power cut, in a folder standing for /opt/hub."""

from __future__ import annotations

import json
import sqlite3
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from hub.cli import main
from hub.update import install
from hub.update import release as rel


def wheel(tmp: Path, version: str = "0.2.0") -> Path:
    w = tmp / f"commune_hub-{version}-py3-none-any.whl"
    with zipfile.ZipFile(w, "w") as z:
        z.writestr("hub/__init__.py", f'__version__ = "{version}"\n')
    return w


@pytest.fixture
def keys(tmp_path):
    key = tmp_path / "keys" / "release.key"
    assert main(["central", "release", "keygen", str(key)]) == 0
    assert key.stat().st_mode & 0o777 == 0o600
    return key, key.with_name("release.key.pub")


def publish(tmp_path, key, version="0.2.0", min_version="0.1.0") -> Path:
    out = tmp_path / f"hub-{version}.release"
    assert main(["central", "release", "publish", str(wheel(tmp_path, version)), "--key", str(key),
                 "--min-version", min_version, "--out", str(out), "--file-only"]) == 0
    return out


def test_a_published_release_opens_with_the_public_key(tmp_path, keys):
    key, pub = keys
    release, whl = rel.open_release_file(publish(tmp_path, key), pub, tmp_path / "out")
    assert release.version == "0.2.0" and release.manifest["min_version"] == "0.1.0"
    assert whl.read_bytes() == wheel(tmp_path / "again" if (tmp_path / "again").mkdir() is None else tmp_path
                                     ).read_bytes()
    rel.check_applies(release, "0.1.0", set())
    with pytest.raises(rel.ReleaseError, match="not newer"):
        rel.check_applies(release, "0.2.0", set())
    with pytest.raises(rel.ReleaseError, match="not tried again"):
        rel.check_applies(release, "0.1.0", {"0.2.0"})
    newer_min = rel.open_release_file(publish(tmp_path, key, "0.3.0", "0.2.0"), pub, tmp_path / "o3")[0]
    with pytest.raises(rel.ReleaseError, match="replaces 0.2.0 or newer"):
        rel.check_applies(newer_min, "0.1.0", set())


def _rewrite(src: Path, dst: Path, change) -> Path:
    with tarfile.open(src) as t, tarfile.open(dst, "w") as out:
        for m in t.getmembers():
            data = t.extractfile(m).read()
            data = change(m.name, data)
            m.size = len(data)
            import io
            out.addfile(m, io.BytesIO(data))
    return dst


def test_another_key_a_changed_manifest_or_wheel_is_refused(tmp_path, keys):
    key, pub = keys
    good = publish(tmp_path, key)
    other = tmp_path / "other" / "k"
    assert main(["central", "release", "keygen", str(other)]) == 0
    forged = tmp_path / "forged.release"
    assert main(["central", "release", "publish", str(wheel(tmp_path)), "--key", str(other), "--out", str(forged),
                 "--min-version", "0.1.0", "--file-only"]) == 0
    with pytest.raises(rel.ReleaseError, match="signature"):
        rel.open_release_file(forged, pub, tmp_path / "o1")

    def older_min(name, data):
        if name == rel.MANIFEST:
            m = json.loads(data)
            m["min_version"] = "0.0.1"
            return rel.canonical(m)
        return data
    with pytest.raises(rel.ReleaseError, match="signature"):
        rel.open_release_file(_rewrite(good, tmp_path / "m.release", older_min), pub, tmp_path / "o2")

    def other_wheel(name, data):
        return data + b"x" if name.endswith(".whl") else data
    with pytest.raises(rel.ReleaseError, match="SHA-256"):
        rel.open_release_file(_rewrite(good, tmp_path / "w.release", other_wheel), pub, tmp_path / "o3")
    with pytest.raises(rel.ReleaseError, match="no release key"):
        rel.open_release_file(good, tmp_path / "missing.pub", tmp_path / "o4")
    (tmp_path / "junk.release").write_bytes(b"not a tar")
    with pytest.raises(rel.ReleaseError, match="cannot read"):
        rel.open_release_file(tmp_path / "junk.release", pub, tmp_path / "o5")


def layout(tmp_path) -> SimpleNamespace:
    root, data = tmp_path / "opt", tmp_path / "data"
    for v in ("0.1.0", "0.2.0"):
        (root / "releases" / v).mkdir(parents=True)
        (root / "releases" / v / install.COMPLETE).write_text(v)
    (root / "current").symlink_to("releases/0.1.0")
    data.mkdir()
    db = data / "hub.db"
    conn = sqlite3.connect(db)
    conn.execute("create table _migrations (name text primary key, applied_at text)")
    conn.execute("insert into _migrations values ('0001', 'x')")
    conn.execute("create table feedback (receipt text)")
    conn.execute("insert into feedback values ('1234')")
    conn.commit()
    conn.close()
    return SimpleNamespace(update_root=root, data_dir=data, db_path=db, release_key_file=tmp_path / "k.pub",
                           update_health_seconds=5)


def test_the_switch_replaces_the_symlink_and_refuses_an_incomplete_release(tmp_path):
    s = layout(tmp_path)
    install.switch(s, "0.2.0")
    assert install.running_version(s) == "0.2.0"
    assert not (s.update_root / ".current.new").exists()
    (s.update_root / "releases/0.2.0" / install.COMPLETE).unlink()
    with pytest.raises(install.UpdateError, match="not installed completely"):
        install.switch(s, "0.2.0")


@pytest.mark.parametrize("step", ["install", "stop", "snapshot", "switch", "trial", "rollback", "commit"])
def test_recovery_after_a_cut_at_each_step(tmp_path, step):
    s = layout(tmp_path)
    install.take_snapshot(s, "0.2.0")
    if step in ("trial", "rollback", "commit"):
        install.switch(s, "0.2.0")
        conn = sqlite3.connect(s.db_path)  # the new release migrated, then a villager wrote
        conn.execute("insert into _migrations values ('0010_new', 'x')")
        conn.commit()
        conn.close()
    install._set_state(s, step=step, version="0.2.0", previous="0.1.0")
    said = install.recover(s, say=lambda m: None)
    assert install.read_state(s) is None
    names = {r[0] for r in sqlite3.connect(s.db_path).execute("select name from _migrations")}
    if step == "commit":
        assert install.running_version(s) == "0.2.0" and "0010_new" in names
        assert install.history(s)[-1]["result"] == "installed"
    else:
        assert install.running_version(s) == "0.1.0", said
        assert names == {"0001"}, "the database the previous release knows"
        assert not (s.update_root / "releases/0.2.0").exists()
        assert install.failed_versions(s) == ({"0.2.0"} if step == "rollback" else set())
    receipts = [r[0] for r in sqlite3.connect(s.db_path).execute("select receipt from feedback")]
    assert receipts == ["1234"]


def test_hub_update_refuses_a_damaged_file_and_changes_nothing(tmp_path, capsys, monkeypatch, keys):
    s = layout(tmp_path)
    monkeypatch.setenv("HUB_DATA_DIR", str(s.data_dir))
    monkeypatch.setenv("HUB_UPDATE_ROOT", str(s.update_root))
    monkeypatch.setenv("HUB_RELEASE_KEY_FILE", str(keys[1]))
    (tmp_path / "x.release").write_bytes(b"x")
    code = main(["update", str(tmp_path / "x.release")])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot read the release file" in err or "needs root" in err, err
    assert install.running_version(s) == "0.1.0"
    assert install.read_state(s) is None
