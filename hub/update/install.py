"""Installing a release beside the running one, switching to it, and switching back.

The layout (made by ``provisioning/install-hub.sh``, the image's installer)::

    /opt/hub/releases/0.1.0/      a venv with that release
    /opt/hub/releases/0.2.0/      the next one, installed beside it
    /opt/hub/current -> releases/0.2.0     what the units run (PATH=/opt/hub/current/bin:...)

An update goes through these steps, each written to ``DATA/update/state.json``
(durably, before the step) so that a power cut at any point is finished or undone
at the next boot by :func:`recover` (``hub-update-recover.service``, ordered before
``hub-migrate.service``):

1. ``install``: a copy of the running venv under the new version's name, the new
   wheel installed into it (offline: no index), marked complete. The running hub is
   untouched; a cut leaves an incomplete directory that is removed.
2. ``stop``: ``hub.target`` stopped, so the database is quiet.
3. ``snapshot``: the database copied with SQLite's backup API (``before-VERSION.db``).
4. ``switch`` / ``trial``: ``current`` replaced by a new symlink through ``rename()``
   (atomic), ``hub.target`` started, and the health check given
   ``update_health_seconds``: ``hub-migrate`` done, every daemon of ``hub.target``
   active, the portal answering on its socket, and ``hub doctor`` with no check failing
   that passed before the update.
5. ``commit`` on success; ``rollback`` on failure: ``hub.target`` stopped, ``current``
   back to the previous release, the database snapshot put back when the new release
   had migrated it (the previous release refuses a schema it does not know), the
   version added to ``failed.json`` (never tried again), ``hub.target`` started.

A cut during ``switch`` or ``trial`` rolls back at boot: the new release has not
proved itself. That version is not marked failed (it can be tried again).

Migrations: the hub backs the database up before migrating and restores it on
rollback. What was written to the database during the trial of a release that
migrated it is lost with the rollback; a release without new migrations keeps it.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hub.backup.archive import snapshot_database
from hub.core.db import utcnow
from hub.core.files import fsync_dir
from hub.net.checks import _http_status_unix
from hub.update import release as rel
from hub.update.release import ReleaseError

log = logging.getLogger(__name__)

TARGET = "hub.target"
MIGRATE_UNIT = "hub-migrate.service"
WEB_SOCKET = Path("/run/hub/web.sock")
COMPLETE = ".complete"
#: Where ``hub update --ready`` moves the downloaded release before checking it (out of the hub user's reach).
TAKEN = "downloaded.release"
#: The steps of an update, in order (see the module's text).
STEPS = ("install", "stop", "snapshot", "switch", "trial", "rollback", "commit")


class UpdateError(ReleaseError):
    """The update could not be made; the running release stays."""


# --- the files of the update ------------------------------------------------------------
def work_dir(settings) -> Path:
    return Path(settings.data_dir) / "update"


def _write_json(path: Path, value) -> None:
    if not path.parent.exists():
        # The sync daemon (the data directory's owner) downloads into the same folder.
        path.parent.mkdir(parents=True)
        if os.geteuid() == 0:
            owner = path.parent.parent.stat()
            os.chown(path.parent, owner.st_uid, owner.st_gid)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def read_state(settings) -> dict | None:
    return _read_json(work_dir(settings) / "state.json", None)


def _set_state(settings, **state) -> None:
    _write_json(work_dir(settings) / "state.json", {**state, "at": utcnow()})


def _clear_state(settings) -> None:
    path = work_dir(settings) / "state.json"
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)


def failed_versions(settings) -> set[str]:
    return set(_read_json(work_dir(settings) / "failed.json", []))


def history(settings) -> list[dict]:
    return _read_json(work_dir(settings) / "history.json", [])


def _record(settings, version: str, result: str, detail: str = "", failed: bool = False) -> None:
    if failed:
        _write_json(work_dir(settings) / "failed.json", sorted(failed_versions(settings) | {version}))
    _write_json(work_dir(settings) / "history.json",
                (history(settings) + [{"version": version, "result": result, "detail": detail[:500],
                                       "at": utcnow()}])[-20:])


# --- the release directories ------------------------------------------------------------
def releases_dir(settings) -> Path:
    return Path(settings.update_root) / "releases"


def current_link(settings) -> Path:
    return Path(settings.update_root) / "current"


def running_version(settings) -> str:
    link = current_link(settings)
    try:
        target = os.readlink(link)
    except OSError as e:
        raise UpdateError(f"{link} is not a symlink to a release: this hub was installed without"
                          " release directories; reinstall it from a current image") from e
    return Path(target).name


def switch(settings, version: str) -> None:
    """Point ``current`` at *version*: a new symlink renamed over the old one (atomic)."""
    link = current_link(settings)
    if not (releases_dir(settings) / version / COMPLETE).exists():
        raise UpdateError(f"release {version} is not installed completely")
    tmp = link.with_name(".current.new")
    tmp.unlink(missing_ok=True)
    os.symlink(f"releases/{version}", tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def _rewrite_prefix(venv: Path, old: str, new: str) -> None:
    """A copied venv names its old place in its scripts' #! lines, activate scripts and pyvenv.cfg."""
    files = [venv / "pyvenv.cfg", *(p for p in (venv / "bin").iterdir() if p.is_file() and not p.is_symlink())]
    for p in files:
        data = p.read_bytes()
        if old.encode() in data and (data.startswith(b"#!") or p.name.startswith("activate")
                                     or p.name == "pyvenv.cfg"):
            mode = p.stat().st_mode
            p.write_bytes(data.replace(old.encode(), new.encode()))
            os.chmod(p, mode)


def install_release(settings, release: rel.Release, wheel: Path, say=print) -> Path:
    """A venv for *release* beside the running one: a copy of it with the new wheel (offline)."""
    running = current_link(settings).resolve()
    dest = releases_dir(settings) / release.version
    if dest.exists():
        shutil.rmtree(dest)
    say(f"installing release {release.version} into {dest} (beside {running.name})")
    shutil.copytree(running, dest, symlinks=True)
    (dest / COMPLETE).unlink(missing_ok=True)
    _rewrite_prefix(dest, str(running), str(dest))
    python = str(dest / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    r = subprocess.run([*pip, "install", "--quiet", "--no-index", "--no-deps", "--force-reinstall", str(wheel)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        shutil.rmtree(dest, ignore_errors=True)
        raise UpdateError(f"pip could not install release {release.version}: {(r.stderr or r.stdout)[-400:]}")
    r = subprocess.run([*pip, "check"], capture_output=True, text=True)
    missing = [line for line in r.stdout.splitlines() if line.lower().startswith("commune-hub ")]
    if missing:
        shutil.rmtree(dest, ignore_errors=True)
        raise UpdateError(f"release {release.version} needs packages this hub does not have: {'; '.join(missing)}")
    r = subprocess.run([python, "-c", "import hub, sys; sys.stdout.write(hub.__version__)"],
                       capture_output=True, text=True)
    if r.stdout != release.version:
        shutil.rmtree(dest, ignore_errors=True)
        raise UpdateError(f"release {release.version} installed, but it says it is {r.stdout or r.stderr[-200:]!r}")
    os.sync()
    (dest / COMPLETE).write_text(release.version)
    os.sync()
    return dest


def remove_incomplete(settings) -> None:
    d = releases_dir(settings)
    if not d.is_dir():
        return
    keep = {running_version(settings)} if current_link(settings).is_symlink() else set()
    for p in d.iterdir():
        if p.is_dir() and p.name not in keep and not (p / COMPLETE).exists():
            shutil.rmtree(p, ignore_errors=True)


def prune(settings, keep: set[str]) -> None:
    for p in releases_dir(settings).iterdir():
        if p.is_dir() and p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)


# --- the database -----------------------------------------------------------------------
def _migrations_of(path: Path) -> set[str]:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return set()
    try:
        return {r[0] for r in conn.execute("select name from _migrations")}
    except sqlite3.Error:
        return set()
    finally:
        conn.close()


def _snapshot_path(settings, version: str) -> Path:
    return work_dir(settings) / f"before-{version}.db"


def take_snapshot(settings, version: str) -> Path | None:
    db = Path(settings.db_path)
    if not db.exists():
        return None
    out = _snapshot_path(settings, version)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    snapshot_database(db, tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out)
    fsync_dir(out.parent)
    return out


def restore_snapshot_if_migrated(settings, version: str, say=print) -> bool:
    """Put the database from before *version* back when *version* added migrations to it."""
    snap = _snapshot_path(settings, version)
    db = Path(settings.db_path)
    if not snap.exists() or not db.exists():
        return False
    added = _migrations_of(db) - _migrations_of(snap)
    if not added:
        return False
    say(f"release {version} migrated the database ({', '.join(sorted(added))}): putting back the copy from"
        " before the update")
    owner = db.stat()
    tmp = db.with_name(db.name + ".restore")
    shutil.copyfile(snap, tmp)
    os.chown(tmp, owner.st_uid, owner.st_gid)
    os.chmod(tmp, owner.st_mode & 0o777)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    # The new release's write-ahead log belongs to the database being replaced.
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    os.replace(tmp, db)
    fsync_dir(db.parent)
    return True


# --- systemd and the health check -------------------------------------------------------
def systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["systemctl", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise UpdateError(f"systemctl {' '.join(args)}: {(r.stderr or r.stdout).strip()[-300:]}")
    return r


def hub_services() -> list[str]:
    wants = systemctl("show", "-P", "Wants", TARGET).stdout.split()
    return sorted(u for u in wants if u.endswith(".service"))


def doctor_failures(settings) -> tuple[set[str], str]:
    """The checks ``hub doctor`` (of the release ``current`` points at, as the hub user) says fail."""
    hub = current_link(settings) / "bin" / "hub"
    user = _data_owner(settings)
    cmd = [str(hub), "doctor", "--json", "--lang", "en"]
    if os.geteuid() == 0 and user != "root":
        cmd = ["runuser", "-u", user, "--", *cmd]
    env = {**os.environ, "HUB_DATA_DIR": str(settings.data_dir)}
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd="/")
        checks = json.loads(r.stdout)["checks"]
    except (subprocess.TimeoutExpired, ValueError, KeyError, TypeError, OSError) as e:
        return {"doctor"}, f"hub doctor gave no report: {e}"
    failing = {c["id"] for c in checks if c.get("status") == "fail"}
    return failing, "; ".join(f"{c['id']}: {c.get('message', '')}" for c in checks if c["id"] in failing)


def _data_owner(settings) -> str:
    try:
        return pwd.getpwuid(Path(settings.data_dir).stat().st_uid).pw_name
    except (OSError, KeyError):
        return "root"


def health(settings, known_failing: set[str]) -> tuple[bool, str]:
    """One look at the running hub: (healthy, what is wrong)."""
    services = hub_services()
    states = systemctl("is-active", *services, check=False).stdout.split()
    down = [u for u, s in zip(services, states, strict=False) if s != "active"]
    if MIGRATE_UNIT in down:
        return False, "the database migrations did not run (hub-migrate is not active)"
    if down:
        return False, f"not active: {', '.join(down)}"
    if WEB_SOCKET.parent.exists():
        status = _http_status_unix(str(WEB_SOCKET), 10)
        if isinstance(status, str) or status >= 500:
            return False, f"the portal does not answer on {WEB_SOCKET}: {status}"
    failing, detail = doctor_failures(settings)
    if "database" in failing or failing - known_failing:
        return False, f"hub doctor: {detail}"
    return True, "healthy"


def wait_healthy(settings, known_failing: set[str], say=print, sleep=time.sleep) -> tuple[bool, str]:
    deadline = time.monotonic() + settings.update_health_seconds
    why = "not checked"
    while True:
        ok, why = health(settings, known_failing)
        if ok:
            # Once more a little later: a daemon that crashes right after starting is not healthy.
            sleep(3)
            ok, why = health(settings, known_failing)
            if ok:
                return True, why
        if time.monotonic() > deadline:
            return False, why
        sleep(2)


# --- the whole update -------------------------------------------------------------------
def update(settings, release_file: Path, say=print, pause: Callable[[str], None] = lambda step: None) -> bool:
    """Install *release_file*; True when the hub runs it healthily, False when it was rolled back.

    A release that cannot be checked or installed raises :class:`ReleaseError` (nothing changed).
    """
    if os.geteuid() != 0:
        raise UpdateError("an update needs root: sudo hub update FILE")
    os.umask(0o022)
    state = read_state(settings)
    if state:
        raise UpdateError(f"an update to {state.get('version')} is under way ({state.get('step')});"
                          " `hub update --recover` finishes or undoes it")
    running = running_version(settings)
    staging = Path(settings.update_root) / "incoming"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        try:
            release, wheel = rel.open_release_file(Path(release_file), Path(settings.release_key_file), staging)
            rel.check_applies(release, running, failed_versions(settings))
        except ReleaseError as e:
            _record(settings, Path(release_file).name, "refused", str(e))
            raise
        version = release.version
        say(f"release {version} (replaces {release.manifest['min_version']} or newer) is signed by the"
            f" central server; the hub runs {running}")
        remove_incomplete(settings)
        _set_state(settings, step="install", version=version, previous=running)
        pause("install")
        try:
            install_release(settings, release, wheel, say)
        except (UpdateError, OSError) as e:
            # It would not install next time either (a package missing here): never fetched again.
            _clear_state(settings)
            _record(settings, version, "refused", str(e), failed=True)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    known_failing, _ = doctor_failures(settings)
    _set_state(settings, step="stop", version=version, previous=running)
    pause("stop")
    say(f"stopping {TARGET}")
    systemctl("stop", TARGET)
    _set_state(settings, step="snapshot", version=version, previous=running)
    pause("snapshot")
    take_snapshot(settings, version)
    _set_state(settings, step="switch", version=version, previous=running)
    pause("switch")
    switch(settings, version)
    _set_state(settings, step="trial", version=version, previous=running)
    pause("trial")
    say(f"starting {TARGET} on release {version}; it has {settings.update_health_seconds} s to be healthy")
    systemctl("start", "--no-block", TARGET)
    ok, why = wait_healthy(settings, known_failing, say)
    if ok:
        _set_state(settings, step="commit", version=version, previous=running)
        pause("commit")
        _commit(settings, version, running)
        say(f"release {version} is running and healthy ({running} is kept to switch back to)")
        return True
    say(f"release {version} is not healthy: {why}")
    _set_state(settings, step="rollback", version=version, previous=running, reason=why)
    pause("rollback")
    rollback(settings, version, running, why, say, at_boot=False)
    return False


def _commit(settings, version: str, previous: str) -> None:
    _snapshot_path(settings, version).unlink(missing_ok=True)
    _record(settings, version, "installed", f"replaced {previous}")
    prune(settings, {version, previous})
    _clear_state(settings)


def rollback(settings, version: str, previous: str, why: str, say=print, at_boot: bool = False,
             failed: bool = True) -> None:
    """Back to *previous*: its release, its database when *version* migrated it; *version* marked failed."""
    if not at_boot:
        say(f"switching back to {previous}")
        systemctl("stop", TARGET, check=False)
    switch(settings, previous)
    restore_snapshot_if_migrated(settings, version, say)
    _record(settings, version, "rolled back" if failed else "interrupted", why, failed=failed)
    _snapshot_path(settings, version).unlink(missing_ok=True)
    shutil.rmtree(releases_dir(settings) / version, ignore_errors=True)
    _clear_state(settings)
    if not at_boot:
        systemctl("start", "--no-block", TARGET)
        ok, detail = wait_healthy(settings, {"doctor"} | doctor_failures(settings)[0], say)
        say(f"release {previous} is running again" + ("" if ok else f", but it is not healthy either: {detail}"))


def recover(settings, say=print) -> str:
    """At boot, before the daemons: finish or undo an update a power cut interrupted."""
    os.umask(0o022)
    state = read_state(settings)
    if not current_link(settings).is_symlink():
        return "no release directories"
    if not state:
        remove_incomplete(settings)
        return "nothing to recover"
    step, version, previous = state.get("step"), state.get("version"), state.get("previous")
    if step in ("install", "stop", "snapshot"):
        # ``current`` was never switched: the previous release runs on.
        if running_version(settings) != previous:
            switch(settings, previous)
        shutil.rmtree(releases_dir(settings) / version, ignore_errors=True)
        _snapshot_path(settings, version).unlink(missing_ok=True)
        _record(settings, version, "interrupted", f"power cut at step {step}; {previous} kept")
        _clear_state(settings)
        return f"update to {version} was cut at step {step}: {previous} runs"
    if step in ("switch", "trial", "rollback"):
        failed = step == "rollback"
        why = state.get("reason", "") if failed else f"power cut at step {step}, before the health check passed"
        rollback(settings, version, previous, why, say, at_boot=True, failed=failed)
        return f"update to {version} was cut at step {step}: back to {previous}"
    if step == "commit":
        _commit(settings, version, previous)
        return f"update to {version} was committed"
    _clear_state(settings)
    return f"unknown update step {step!r}; cleared"
