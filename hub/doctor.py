"""`hub doctor`: the one command a technician runs to see what is wrong.

Each check returns a :class:`Result`: ok, warn (works, but look at it), fail
(something the hub needs is broken; the exit code is 1) or skip (does not
apply to this hub). Every failure carries a fix hint. The report is in
Khmer or English, through the same catalogue as the web pages, and
``--json`` prints the same results for scripts.

Checks owned by other parts of the hub are imported lazily, so the doctor
still reports everything else when one of them is missing or broken.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import pwd
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomli_w

from hub import __version__
from hub.core import audio as sound
from hub.core import khmer
from hub.core import settings as settings_mod
from hub.core.clock import Clock
from hub.core.errors import HubError
from hub.core.settings import SETTINGS, SettingsError
from hub.net import checks
from hub.sync import outbox
from hub.voice import health

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
MARKS = {OK: "✓", WARN: "!", FAIL: "✗", SKIP: "-"}
#: Check names, in report order; `--skip` and `--only` take these.
CHECKS = ("config", "database", "disk", "clock", "access_point", "portal", "audio", "gpio",
          "speech", "uplink", "sync")


def N_(message: str) -> str:
    """Mark a string for the Khmer catalogue; it is translated when the report is printed."""
    return message


TITLES = {
    "config": N_("Configuration"),
    "database": N_("Database"),
    "disk": N_("Free disk space"),
    "clock": N_("Clock"),
    "access_point": N_("Wi-Fi access point"),
    "portal": N_("Portal"),
    "audio": N_("Sound devices"),
    "gpio": N_("Relay and button pins"),
    "speech": N_("Speech models"),
    "uplink": N_("Uplink"),
    "sync": N_("Sync with the central server"),
}


@dataclass
class Result:
    id: str
    status: str
    #: English text with %(name)s fields, translated before the values go in.
    detail: str
    values: dict[str, Any] = field(default_factory=dict)
    hint: str = ""
    hint_values: dict[str, Any] = field(default_factory=dict)


# --- language ----------------------------------------------------------------------------------


class Said(list):
    """Findings another part of the hub reported (hub.voice.health), each said in the report's language."""


class Words:
    """The report's language: the Khmer catalogue, or English as written."""

    def __init__(self, lang: str):
        self.lang = lang
        self.catalog: dict[str, str] = {}
        if lang != "en":
            try:
                from hub.web.i18n import load_catalog

                self.catalog = load_catalog(lang)
            except Exception:  # a report in English beats no report
                self.catalog = {}

    def __call__(self, message: str, values: dict[str, Any] | None = None) -> str:

        text = self.catalog.get(message, message)
        if values:
            shown = {k: self.show(v) for k, v in values.items()}
            try:
                text = text % shown
            except (KeyError, ValueError, TypeError):
                text = message % shown
        return text

    def show(self, value: Any) -> Any:
        if isinstance(value, Said):
            return "; ".join(self(m.template, m.values) if hasattr(m, "template") else str(m) for m in value)
        if isinstance(value, int) and not isinstance(value, bool):
            return khmer.digits(value, self.lang)
        return value


# --- the checks ---------------------------------------------------------------------------------


class Doctor:
    """Runs the checks against one hub's settings; later checks reuse what earlier ones found."""

    def __init__(self, config: str | None, env: dict[str, str] | None = None,
                 timeout: float = 5.0):
        self.config = config
        self.env = dict(os.environ if env is None else env)
        self.timeout = timeout
        self.settings = None
        self.db = None

    # configuration -------------------------------------------------------------------------
    def check_config(self) -> Result:
        path = Path(self.config) if self.config else settings_mod.default_config_path()

        # Unknown keys are reported below, as part of the check, not as a log line.
        log = logging.getLogger("hub.core.settings")
        level = log.level
        log.setLevel(logging.ERROR)
        if path.exists() and not os.access(path, os.R_OK):
            self.settings = settings_mod.load(None, env={}, overrides={})
            log.setLevel(level)
            return Result("config", FAIL, N_("%(path)s cannot be read by user %(user)s"),
                          {"path": str(path), "user": _user()}, _AS_HUB_HINT)
        try:
            self.settings = settings_mod.load(self.config, env=self.env)
        except SettingsError as e:
            errors = [str(e)]
            self.settings = self._settings_without_bad_values(path, errors)
            return Result("config", FAIL, N_("%(error)s"), {"error": "; ".join(errors)},
                          N_("Correct that setting in %(path)s (`hub settings --all` lists every"
                             " setting), then restart the services: systemctl restart hub.target"),
                          {"path": str(path)})
        finally:
            log.setLevel(level)
        unknown = self._unknown_keys(path)
        if unknown:
            return Result("config", WARN, N_("%(path)s has unknown settings: %(names)s"),
                          {"path": str(path), "names": ", ".join(unknown)},
                          N_("Check their spelling against `hub settings --all`; unknown settings"
                             " are ignored."))
        if self.settings.source is None:
            return Result("config", WARN, N_("No settings file at %(path)s; the defaults are used"),
                          {"path": str(path)},
                          N_("Write this hub's settings to %(path)s (see provisioning/README.md)."),
                          {"path": str(path)})
        return Result("config", OK, N_("%(path)s is valid"), {"path": str(self.settings.source)})

    def _unknown_keys(self, path: Path) -> list[str]:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        names = {s.name for s in SETTINGS}
        return sorted(k for k in raw if k not in names)

    def _settings_without_bad_values(self, path: Path, errors: list[str]):
        """The settings with each bad value dropped, so the other checks can still run."""
        env = dict(self.env)
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

    # database ------------------------------------------------------------------------------
    def check_database(self) -> Result:
        s = self.settings
        path = Path(s.db_path)
        data_dir = Path(s.data_dir)
        if data_dir.exists() and not os.access(data_dir, os.R_OK | os.X_OK):
            return Result("database", FAIL, N_("%(path)s cannot be read by user %(user)s"),
                          {"path": str(data_dir), "user": _user()}, _AS_HUB_HINT)
        if not path.exists():
            return Result("database", FAIL, N_("No database at %(path)s"), {"path": str(path)},
                          N_("Run `hub migrate` as the hub user, or start the services:"
                             " systemctl start hub.target"))
        owner = _hub_owner_problem(path)
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=self.timeout)
            try:
                rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
                if rows != ["ok"]:
                    return Result("database", FAIL,
                                  N_("Integrity check of %(path)s failed: %(error)s"),
                                  {"path": str(path), "error": "; ".join(rows[:3])},
                                  _DB_RESTORE_HINT)
                from hub.core.db import MIGRATIONS_TABLE
                from hub.migrations import MIGRATIONS

                tables = {r[0] for r in conn.execute(
                    "select name from sqlite_master where type = 'table'")}
                done = set()
                if MIGRATIONS_TABLE in tables:
                    done = {r[0] for r in conn.execute(f"select name from {MIGRATIONS_TABLE}")}
            finally:
                conn.close()
        except sqlite3.DatabaseError as e:
            return Result("database", FAIL, N_("%(path)s cannot be read: %(error)s"),
                          {"path": str(path), "error": str(e)}, _DB_RESTORE_HINT)
        known = [n for n, _ in MIGRATIONS]
        newer = sorted(done - set(known))
        if newer:
            return Result("database", FAIL,
                          N_("The database was written by a newer hub (%(names)s)"),
                          {"names": ", ".join(newer)},
                          N_("Install the newer hub again; never go back to an older one."))
        missing = [n for n in known if n not in done]
        if missing:
            return Result("database", FAIL, N_("The database needs migrations: %(names)s"),
                          {"names": ", ".join(missing)},
                          N_("Run `hub migrate`, or restart the services:"
                             " systemctl restart hub.target"))
        try:
            self.db = _open_db(path)
        except Exception:
            self.db = None
        if owner:
            return Result("database", FAIL, N_("%(path)s belongs to %(owner)s, not to hub"),
                          {"path": str(path), "owner": owner},
                          N_("The services run as the user hub: chown -R hub:hub %(dir)s"),
                          {"dir": str(s.data_dir)})
        return Result("database", OK, N_("%(path)s passed its integrity check"),
                      {"path": str(path)})

    # disk ----------------------------------------------------------------------------------
    def check_disk(self) -> Result:
        s = self.settings
        where = Path(s.data_dir)
        probe = where if where.exists() else where.parent
        try:
            usage = shutil.disk_usage(probe)
        except OSError as e:
            return Result("disk", FAIL, N_("Cannot read the free space of %(path)s: %(error)s"),
                          {"path": str(where), "error": e.strerror or str(e)},
                          N_("Check that the data directory exists: %(path)s"),
                          {"path": str(where)})
        free_mb = usage.free // (1024 * 1024)
        values = {"free": free_mb, "min": s.min_free_mb, "path": str(where)}
        if free_mb < s.min_free_mb:
            return Result("disk", FAIL,
                          N_("Only %(free)s MB free in %(path)s (recordings stop below"
                             " %(min)s MB)"),
                          values,
                          N_("Delete old recordings in the console, or move the data to a larger"
                             " SD card."))
        if free_mb < 2 * s.min_free_mb:
            return Result("disk", WARN, N_("%(free)s MB free in %(path)s; recordings stop below"
                                           " %(min)s MB"), values,
                          N_("Plan to free some space soon."))
        return Result("disk", OK, N_("%(free)s MB free in %(path)s"), values)

    # clock ---------------------------------------------------------------------------------
    def check_clock(self) -> Result:
        if self.db is None:
            return Result("clock", SKIP, N_("Needs a working database"))

        try:
            clock = Clock(self.db)
            source = clock.trust()
            now = clock.now()
        except Exception as e:
            return Result("clock", FAIL, N_("The clock state cannot be read: %(error)s"),
                          {"error": str(e)}, _DB_RESTORE_HINT)
        values = {"time": now.strftime("%Y-%m-%d %H:%M UTC"), "source": source or ""}
        if source is None:
            return Result("clock", WARN,
                          N_("Not trusted since this boot (it says %(time)s); scheduled"
                             " announcements wait"), values,
                          N_("Connect the uplink so the time comes from the internet, or ask a"
                             " clerk to confirm the time in the console."))
        return Result("clock", OK, N_("Trusted (from %(source)s): %(time)s"), values)

    # access point --------------------------------------------------------------------------
    def check_access_point(self) -> Result:
        return self._network_probes(checks)

    def _network_probes(self, net) -> Result:
        """The network part's own probes (hub.net.checks), in the order they are fixed."""
        s = self.settings
        calls = [("config_current", (s,)), ("service_active", ("hostapd",)),
                 ("service_active", ("dnsmasq",)), ("service_active", ("nginx",)),
                 ("interface_address", (s,)), ("access_point", (s,)), ("firewall_loaded", ()),
                 ("dns_answers", (s,))]
        failed, passed, hints = [], [], []
        for name, args in calls:
            try:
                probe = getattr(net, name)(*args)
                ok, label, detail, hint = probe.ok, probe.name, probe.detail, probe.hint
            except Exception as e:
                ok, label, detail, hint = False, name, f"{type(e).__name__}: {e}", ""
            if not ok and name == "service_active" and _service_running(args[0]):
                ok = True  # no systemd here (a container or a test); the process runs
            (passed if ok else failed).append(f"{label}: {detail}")
            if not ok and hint:
                hints.append(hint)
        if failed:
            return Result("access_point", FAIL, N_("Not working: %(error)s"),
                          {"error": "; ".join(failed)}, N_("%(text)s"),
                          {"text": "; ".join(hints) or "hub netconfig apply"})
        return Result("access_point", OK, N_("%(text)s"), {"text": "; ".join(passed)})

    # portal --------------------------------------------------------------------------------
    def check_portal(self) -> Result:
        url = self.settings.listen_url
        problems = []

        # The captive-portal API answers as a phone would ask it.
        probe = checks.portal_answers(self.settings, base_url=url, timeout=self.timeout)
        status: int | str = probe.detail
        if not probe.ok:
            problems.append(probe.detail)
        sock = Path("/run/hub/web.sock")
        if sock.exists():
            sstatus = _http_status_unix(str(sock), self.timeout)
            if isinstance(sstatus, str) or sstatus >= 500:
                problems.append(f"{sock}: {sstatus}")
        if problems:
            return Result("portal", FAIL, N_("The portal does not answer: %(error)s"),
                          {"error": "; ".join(problems)},
                          N_("Restart the web service (systemctl restart hub-web nginx) and read"
                             " `journalctl -u hub-web`."))
        return Result("portal", OK, N_("%(url)s answers (%(status)s)"),
                      {"url": url, "status": f"HTTP {status}" if isinstance(status, int)
                       else status})

    # audio ---------------------------------------------------------------------------------
    def check_audio(self) -> Result:
        s = self.settings

        try:
            with _stderr_silenced():
                pa = sound.open_pyaudio()
        except Exception as e:
            return Result("audio", FAIL, N_("PortAudio cannot list sound devices: %(error)s"),
                          {"error": str(e)},
                          N_("Check that the sound card is plugged in: `aplay -l`, `arecord -l`."))
        missing = []
        try:
            listed = sound.devices(pa, "output") + sound.devices(pa, "input")
            names = ", ".join(sorted({str(d["name"]) for d in listed}))
            for direction, name in (("output", s.audio_output_device), ("input", s.audio_input_device)):
                try:
                    sound.find_device(pa, name, direction)
                except sound.SoundDeviceError:
                    missing.append(f"{direction} {name!r}")
        finally:
            pa.terminate()
        if missing:
            names = names or "-"
            return Result("audio", FAIL, N_("Not found: %(missing)s (PortAudio lists: %(names)s)"),
                          {"missing": ", ".join(missing), "names": names},
                          N_("Plug in the sound card, or set audio_output_device and"
                             " audio_input_device to a listed name."))
        return Result("audio", OK, N_("Output %(output)s and input %(input)s found"),
                      {"output": repr(s.audio_output_device), "input": repr(s.audio_input_device)})

    # gpio ----------------------------------------------------------------------------------
    def check_gpio(self) -> Result:
        s = self.settings
        wanted = [(name, getattr(s, name)) for name in
                  ("amplifier_pin", "status_led_pin", "button_pin", "button_led_pin")
                  if getattr(s, name)]
        if not wanted:
            return Result("gpio", SKIP, N_("No relay, button or LED pins are set"))
        pins: dict[str, str] = {}
        for name, pin in wanted:
            if pin in pins.values():
                other = next(k for k, v in pins.items() if v == pin)
                return Result("gpio", FAIL, N_("%(a)s and %(b)s are the same pin (%(pin)s)"),
                              {"a": other, "b": name, "pin": pin},
                              N_("Give each device its own pin in hub.toml."))
            pins[name] = pin
        problems, busy = _try_pins(wanted, s.amplifier_active_high)
        if problems:
            return Result("gpio", FAIL, N_("Cannot use %(pins)s"), {"pins": "; ".join(problems)},
                          N_("Check the pin names (e.g. GPIO17) and the wiring in"
                             " provisioning/README.md."))
        shown = ", ".join(f"{n}={p}" for n, p in wanted)
        if busy:
            return Result("gpio", OK, N_("%(pins)s (in use by the running services: %(busy)s)"),
                          {"pins": shown, "busy": ", ".join(busy)})
        return Result("gpio", OK, N_("%(pins)s can be used"), {"pins": shown})

    # speech models ---------------------------------------------------------------------------
    def check_speech(self) -> Result:
        s = self.settings

        return self._voice_findings(health.check(s, self.db))

    def _voice_findings(self, findings: list[tuple[str, str]]) -> Result:
        """hub.voice.health's (level, message) findings as one result, in the report's language."""
        errors = Said(m for level, m in findings if level == "error")
        warnings = Said(m for level, m in findings if level == "warning")
        fine = Said(m for level, m in findings if level == "ok")
        if errors:
            return Result("speech", FAIL, N_("%(text)s"),
                          {"text": Said(errors + warnings), "ok": fine},
                          N_("Each problem above says what to do; `hub model install DIR --lang"
                             " LANG` installs a speech model."))
        if warnings:
            return Result("speech", WARN, N_("%(text)s"), {"text": warnings, "ok": fine},
                          N_("No public Khmer model exists yet; clerks can transcribe by hand."))
        return Result("speech", OK, N_("%(text)s"), {"text": fine, "ok": fine})

    # uplink --------------------------------------------------------------------------------
    def check_uplink(self) -> Result:
        s = self.settings
        if not s.central_url:
            return Result("uplink", SKIP, N_("No central server is set (central_url)"))

        u = urlsplit(s.central_url)
        port = u.port or (443 if u.scheme == "https" else 80)
        values = {"host": u.hostname or "", "port": port, "interface": s.uplink_interface}
        try:
            with socket.create_connection((u.hostname, port), timeout=self.timeout):
                pass
        except OSError as e:
            values["error"] = e.strerror or str(e)
            return Result("uplink", WARN, N_("Cannot reach %(host)s:%(port)s (%(error)s)"), values,
                          N_("Check the uplink on %(interface)s: the dongle, its credit, the"
                             " office line. The hub keeps working and syncs later."),
                          {"interface": s.uplink_interface})
        return Result("uplink", OK, N_("%(host)s:%(port)s can be reached"), values)

    # sync ----------------------------------------------------------------------------------
    def check_sync(self) -> Result:
        s = self.settings
        if not s.central_url:
            return Result("sync", SKIP, N_("No central server is set (central_url)"))
        if self.db is None:
            return Result("sync", SKIP, N_("Needs a working database"))

        try:
            state = outbox.all_state(self.db)
            counts = outbox.counts(self.db)
        except Exception as e:
            return Result("sync", FAIL, N_("The sync state cannot be read: %(error)s"),
                          {"error": str(e)}, N_("Run `hub migrate`."))
        pending = counts.get("pending", 0)
        flagged = counts.get("conflict", 0) + counts.get("refused", 0)
        values = {"last": state.get("last_success", "-"), "pending": pending, "flagged": flagged,
                  "error": state.get("last_error", "")}
        if not s.central_token:
            return Result("sync", FAIL, N_("central_url is set but central_token is empty"), values,
                          N_("Ask the central server's administrator for this hub's token"
                             " (`hub central add-hub`) and set central_token."))
        if flagged:
            return Result("sync", WARN,
                          N_("%(flagged)s records were refused by the central server"), values,
                          N_("Look at them in the console's sync page."))
        if values["error"]:
            return Result("sync", WARN, N_("Last error: %(error)s (last success: %(last)s,"
                                           " %(pending)s records waiting)"), values,
                          N_("Read `journalctl -u hub-sync`; a wrong token gives 401."))
        return Result("sync", OK, N_("Last success %(last)s; %(pending)s records waiting"), values)

    def run(self, skip: set[str] | None = None) -> list[Result]:
        """Every check in order; one that crashes is reported as failed, not raised."""
        skip = skip or set()
        results = []
        for name in CHECKS:
            if name != "config" and name in skip:
                results.append(Result(name, SKIP, N_("Skipped on request")))
                continue
            try:
                results.append(getattr(self, f"check_{name}")())
            except Exception as e:
                results.append(Result(name, FAIL, N_("The check itself failed: %(error)s"),
                                      {"error": f"{type(e).__name__}: {e}"},
                                      N_("Report this to the hub's developers with the output of"
                                         " `hub doctor --json`.")))
        if self.db is not None:
            self.db.close()
            self.db = None
        return results


_AS_HUB_HINT = N_("Run the doctor as root or as the hub user: sudo -u hub hub doctor")

_DB_RESTORE_HINT = N_("Stop the services (systemctl stop hub.target), keep a copy of the data"
                      " directory, then restore the database from a backup or from the central"
                      " server.")


# --- helpers ------------------------------------------------------------------------------------


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


class _ReadOnlyDb:
    """Just enough of sqlite_utils.Database for Clock and the sync state, read-only."""

    def __init__(self, path: Path):
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row

    def query(self, sql: str, params=()):
        for row in self.conn.execute(sql, params):
            yield dict(row)

    def close(self) -> None:
        self.conn.close()


def _open_db(path: Path) -> _ReadOnlyDb:
    return _ReadOnlyDb(path)


def _service_running(name: str) -> bool:
    """Whether a system service runs: systemd when it is PID 1, else a process by that name."""
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        r = subprocess.run(["systemctl", "is-active", "--quiet", name], check=False)
        if r.returncode == 0:
            return True
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() == name:
                return True
        except OSError:
            continue
    return False


def _http_status_unix(path: str, timeout: float) -> int | str:
    class UnixConnection(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(path)

    conn = UnixConnection("localhost", timeout=timeout)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    except OSError as e:
        return e.strerror or str(e)
    finally:
        conn.close()


class _stderr_silenced:
    """Point file descriptor 2 at /dev/null: PortAudio's C code prints its probes there."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        os.close(self.saved)
        return False


def _try_pins(wanted: list[tuple[str, str]],
              amplifier_active_high: bool = True) -> tuple[list[str], list[str]]:
    """Build each gpiozero device on its pin and close it; return (problems, busy pins).

    Outputs are built switched off in their own polarity, so checking an
    active-low relay never switches the amplifier on.
    """
    problems, busy = [], []
    with warnings.catch_warnings():
        # gpiozero warns when it falls back from one pin library to another.
        warnings.simplefilter("ignore")
        try:
            from gpiozero import Button, DigitalOutputDevice
        except Exception as e:
            return [f"gpiozero: {e}"], []
        for name, pin in wanted:
            try:
                if name == "button_pin":
                    device = Button(pin, pull_up=True)
                else:
                    active_high = amplifier_active_high if name == "amplifier_pin" else True
                    device = DigitalOutputDevice(pin, active_high=active_high,
                                                 initial_value=False)
            except Exception as e:
                text = str(e) or type(e).__name__
                if "busy" in text.lower():
                    busy.append(f"{name}={pin}")
                else:
                    problems.append(f"{name}={pin}: {text}")
                continue
            device.close()
    return problems, busy


# --- report -------------------------------------------------------------------------------------


def _columns(text: str) -> int:
    """Terminal columns *text* takes: Khmer vowel signs and subscripts sit on their consonant."""
    n, after_coeng = 0, False
    for ch in text:
        if after_coeng:
            after_coeng = False
            continue
        if ch == "\u17d2":  # coeng: the next consonant is written below
            after_coeng = True
            continue
        if unicodedata.category(ch) not in ("Mn", "Mc", "Me", "Cf"):
            n += 1
    return n


def render_text(results: list[Result], lang: str, hub_name: str = "") -> str:
    words = Words(lang)

    head = words(N_("Hub doctor")) + f" — {hub_name or 'hub'} {__version__}"
    lines = [head, ""]
    width = max(_columns(words(TITLES[r.id])) for r in results)
    for r in results:
        title = words(TITLES[r.id])
        pad = " " * (width - _columns(title))
        lines.append(f" {MARKS[r.status]} {title}{pad}  {words(r.detail, r.values)}")
        if r.status in (FAIL, WARN) and r.hint:
            lines.append(f"   {' ' * width}  → {words(r.hint, r.hint_values)}")
    failed = sum(r.status == FAIL for r in results)
    warned = sum(r.status == WARN for r in results)
    lines.append("")
    if failed:
        lines.append(words(N_("%(failed)s checks failed, %(warned)s warnings."),
                           {"failed": failed, "warned": warned}))
    else:
        lines.append(words(N_("All checks passed (%(warned)s warnings)."), {"warned": warned}))
    return "\n".join(lines) + "\n"


def render_json(results: list[Result], lang: str) -> str:
    words = Words(lang)
    out = {
        "ok": not any(r.status == FAIL for r in results),
        "lang": lang,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "checks": [
            {"id": r.id, "status": r.status, "title": words(TITLES[r.id]),
             "detail": words(r.detail, r.values),
             "hint": words(r.hint, r.hint_values) if r.hint and r.status in (FAIL, WARN) else "",
             "values": {k: words.show(v) if isinstance(v, Said) else v for k, v in r.values.items()}}
            for r in results
        ],
    }
    return json.dumps(out, ensure_ascii=False, indent=2, default=str) + "\n"


# --- command ------------------------------------------------------------------------------------


def register(sub) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the whole hub and say what is wrong, with a fix for each problem",
        description="Checks the configuration, database, free disk, clock, Wi-Fi access point,"
        " portal, sound devices, GPIO pins, speech models, uplink and sync. Exits 1 when a"
        " check fails.",
    )
    p.add_argument("--lang", choices=("km", "en"),
                   help="language of the report (default: the hub's default_language)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--skip", metavar="CHECKS", default="",
                   help=f"comma-separated checks to leave out: {', '.join(CHECKS[1:])}")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="seconds to wait for the portal and the central server")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args) -> int:
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(CHECKS)
    if unknown:
        raise HubError(f"unknown check {sorted(unknown)[0]!r} (checks: {', '.join(CHECKS)})")
    doctor = Doctor(args.config, timeout=args.timeout)
    results = doctor.run(skip)
    lang = args.lang or getattr(doctor.settings, "default_language", "km")
    if args.json:
        sys.stdout.write(render_json(results, lang))
    else:
        sys.stdout.write(render_text(results, lang, getattr(doctor.settings, "hub_name", "")))
    return 1 if any(r.status == FAIL for r in results) else 0
