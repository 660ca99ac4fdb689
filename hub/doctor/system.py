"""The doctor's checks of the hub itself: its settings file, database, free disk and clock.

``check_config`` and ``check_database`` fill in the checkup's settings and its
read-only database, which the checks after them use.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import sqlite3
import tempfile
import tomllib
from pathlib import Path

import tomli_w

from hub.core import settings as settings_mod
from hub.core.checks import FAIL, OK, SKIP, WARN, Checkup, Finding
from hub.core.clock import Clock
from hub.core.db import MIGRATIONS_TABLE, Database
from hub.core.settings import SETTINGS, SettingsError
from hub.core.words import N_
from hub.migrations import MIGRATIONS

AS_HUB_HINT = N_("Run the doctor as root or as the hub user: sudo -u hub hub doctor")

DB_RESTORE_HINT = N_("Stop the services (systemctl stop hub.target), keep a copy of the data"
                     " directory, then restore the database from a backup or from the central"
                     " server.")


def check_config(checkup: Checkup) -> Finding:
    path = Path(checkup.config) if checkup.config else settings_mod.default_config_path()
    # Unknown keys are reported below, as part of the check, not as a log line.
    log = logging.getLogger("hub.core.settings")
    level = log.level
    log.setLevel(logging.ERROR)
    if path.exists() and not os.access(path, os.R_OK):
        checkup.settings = settings_mod.load(None, env={}, overrides={})
        log.setLevel(level)
        return Finding("config", FAIL, N_("%(path)s cannot be read by user %(user)s"),
                       {"path": str(path), "user": _user()}, AS_HUB_HINT)
    try:
        checkup.settings = settings_mod.load(checkup.config, env=checkup.env)
    except SettingsError as e:
        errors = [str(e)]
        try:  # the central server's changes file may be what cannot be read: the rest still counts
            checkup.settings = settings_mod.load(checkup.config, env=checkup.env, remote={})
        except SettingsError:
            checkup.settings = _settings_without_bad_values(checkup.env, path, errors)
        return Finding("config", FAIL, N_("%(error)s"), {"error": "; ".join(errors)},
                       N_("Correct that setting in %(path)s (`hub settings --all` lists every"
                          " setting), then restart the services: systemctl restart hub.target"),
                       {"path": str(path)})
    finally:
        log.setLevel(level)
    unknown = _unknown_keys(path)
    if unknown:
        return Finding("config", WARN, N_("%(path)s has unknown settings: %(names)s"),
                       {"path": str(path), "names": ", ".join(unknown)},
                       N_("Check their spelling against `hub settings --all`; unknown settings"
                          " are ignored."))
    if checkup.settings.source is None:
        return Finding("config", WARN, N_("No settings file at %(path)s; the defaults are used"),
                       {"path": str(path)},
                       N_("Write this hub's settings to %(path)s (see provisioning/README.md)."),
                       {"path": str(path)})
    return Finding("config", OK, N_("%(path)s is valid"), {"path": str(checkup.settings.source)})


def _unknown_keys(path: Path) -> list[str]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    names = {s.name for s in SETTINGS}
    return sorted(k for k in raw if k not in names)


def _settings_without_bad_values(env: dict[str, str], path: Path, errors: list[str]):
    """The settings with each bad value dropped, so the other checks can still run."""
    env = dict(env)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = {}
    quiet = logging.getLogger("hub.core.settings")
    old_level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        for _ in range(len(raw) + len(env) + 1):
            with tempfile.NamedTemporaryFile("wb", suffix=".toml") as f:
                f.write(tomli_w.dumps(raw).encode())
                f.flush()
                try:
                    return settings_mod.load(f.name, env=env)
                except SettingsError as e:
                    if str(e) not in errors:
                        errors.append(str(e))
                    m = re.search(r"setting (HUB_)?(\w+)", str(e))
                    if not m:
                        break
                    name = m.group(2)
                    if name.upper() == name:  # HUB_PORT: an environment variable
                        name = name.lower()
                    if name not in raw and "HUB_" + name.upper() not in env:
                        break
                    env.pop("HUB_" + name.upper(), None)
                    raw.pop(name, None)
        return settings_mod.load(None, env={}, overrides={})
    except SettingsError:
        return settings_mod.load(None, env={}, overrides={})
    finally:
        quiet.setLevel(old_level)


def check_database(checkup: Checkup) -> Finding:
    s = checkup.settings
    path = Path(s.db_path)
    data_dir = Path(s.data_dir)
    if data_dir.exists() and not os.access(data_dir, os.R_OK | os.X_OK):
        return Finding("database", FAIL, N_("%(path)s cannot be read by user %(user)s"),
                       {"path": str(data_dir), "user": _user()}, AS_HUB_HINT)
    if not path.exists():
        return Finding("database", FAIL, N_("No database at %(path)s"), {"path": str(path)},
                       N_("Run `hub migrate` as the hub user, or start the services:"
                          " systemctl start hub.target"))
    owner = _hub_owner_problem(path)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=checkup.timeout)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
            if rows != ["ok"]:
                return Finding("database", FAIL,
                               N_("Integrity check of %(path)s failed: %(error)s"),
                               {"path": str(path), "error": "; ".join(rows[:3])},
                               DB_RESTORE_HINT)
            tables = {r[0] for r in conn.execute(
                "select name from sqlite_master where type = 'table'")}
            done = set()
            if MIGRATIONS_TABLE in tables:
                done = {r[0] for r in conn.execute(f"select name from {MIGRATIONS_TABLE}")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        return Finding("database", FAIL, N_("%(path)s cannot be read: %(error)s"),
                       {"path": str(path), "error": str(e)}, DB_RESTORE_HINT)
    known = [n for n, _ in MIGRATIONS]
    newer = sorted(done - set(known))
    if newer:
        return Finding("database", FAIL,
                       N_("The database was written by a newer hub (%(names)s)"),
                       {"names": ", ".join(newer)},
                       N_("Install the newer hub again; never go back to an older one."))
    missing = [n for n in known if n not in done]
    if missing:
        return Finding("database", FAIL, N_("The database needs migrations: %(names)s"),
                       {"names": ", ".join(missing)},
                       N_("Run `hub migrate`, or restart the services:"
                          " systemctl restart hub.target"))
    try:
        checkup.db = read_only_db(path)
    except Exception:
        checkup.db = None
    if owner:
        return Finding("database", FAIL, N_("%(path)s belongs to %(owner)s, not to hub"),
                       {"path": str(path), "owner": owner},
                       N_("The services run as the user hub: chown -R hub:hub %(dir)s"),
                       {"dir": str(s.data_dir)})
    return Finding("database", OK, N_("%(path)s passed its integrity check"),
                   {"path": str(path)})


def check_disk(checkup: Checkup) -> Finding:
    s = checkup.settings
    where = Path(s.data_dir)
    probe = where if where.exists() else where.parent
    try:
        usage = shutil.disk_usage(probe)
    except OSError as e:
        return Finding("disk", FAIL, N_("Cannot read the free space of %(path)s: %(error)s"),
                       {"path": str(where), "error": e.strerror or str(e)},
                       N_("Check that the data directory exists: %(path)s"),
                       {"path": str(where)})
    free_mb = usage.free // (1024 * 1024)
    values = {"free": free_mb, "min": s.min_free_mb, "path": str(where)}
    if free_mb < s.min_free_mb:
        return Finding("disk", FAIL,
                       N_("Only %(free)s MB free in %(path)s (recordings stop below"
                          " %(min)s MB)"),
                       values,
                       N_("Delete old recordings in the console, or move the data to a larger"
                          " SD card."))
    if free_mb < 2 * s.min_free_mb:
        return Finding("disk", WARN, N_("%(free)s MB free in %(path)s; recordings stop below"
                                        " %(min)s MB"), values,
                       N_("Plan to free some space soon."))
    return Finding("disk", OK, N_("%(free)s MB free in %(path)s"), values)


def check_clock(checkup: Checkup) -> Finding:
    if checkup.db is None:
        return Finding("clock", SKIP, N_("Needs a working database"))

    try:
        clock = Clock(checkup.db)
        source = clock.trust()
        now = clock.now()
    except Exception as e:
        return Finding("clock", FAIL, N_("The clock state cannot be read: %(error)s"),
                       {"error": str(e)}, DB_RESTORE_HINT)
    values = {"time": now.strftime("%Y-%m-%d %H:%M UTC"), "source": source or ""}
    problem = clock.problem()
    if problem:
        return Finding("clock", WARN, N_("Not trusted: %(problem)s (it says %(time)s)"),
                       {**values, "problem": problem},
                       N_("Ask a clerk to confirm the time in the console, or connect the uplink."))
    if source is None:
        return Finding("clock", WARN,
                       N_("Not trusted since this boot (it says %(time)s); scheduled"
                          " announcements wait"), values,
                       N_("Connect the uplink so the time comes from the internet, or ask a"
                          " clerk to confirm the time in the console."))
    return Finding("clock", OK, N_("Trusted (from %(source)s): %(time)s"), values)


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _hub_owner_problem(path: Path) -> str | None:
    """The owner of *path* when a `hub` user exists and does not own it."""
    try:
        hub_uid = pwd.getpwnam("hub").pw_uid
    except KeyError:
        return None
    uid = path.stat().st_uid
    if uid == hub_uid:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def read_only_db(path: Path) -> Database:
    """The database at *path*, opened so that nothing can write to it."""
    return Database(sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False))
