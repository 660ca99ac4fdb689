"""SD cards: `hub provision` onto a synthetic image, `hub flash` with verification, and the
first-boot script against a temporary root."""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.appliance.conftest import (
    FIRSTBOOT_DIR,
    SYSTEMD_DIR,
    make_image,
    mtools_env,
    run,
)
from tests.conftest import ROOT, need

PASSWORD = "clerk-pass-7391"


def hub(args, cwd: Path, stdin: str | None = None, **env) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    e.update(env)
    return subprocess.run([sys.executable, "-m", "hub.cli", *map(str, args)], input=stdin,
                          capture_output=True, text=True, env=e, cwd=cwd, timeout=300)


def mtype(img: Path, offset: int, path: str) -> subprocess.CompletedProcess:
    need("mtype")
    return run(["mtype", "-i", f"{img}@@{offset}", f"::/{path}"], env=mtools_env())


def e2fsck(img: Path, offset: int) -> subprocess.CompletedProcess:
    need("e2fsck")
    return run(["e2fsck", "-fn", f"{img}?offset={offset}"])


HUB_TOML = """\
hub_name = "ឃុំ តេស្ត"
ssid = "Khum-Test"
central_url = "https://district.example.org/"
central_token = "tok-9f8e7d6c5b4a"
staff_address = "192.168.1.250/24"
"""


def test_provision_leaves_the_config_readable_with_mtype_and_ext4_clean(sd_image, tmp_path):
    img, info = sd_image
    config = tmp_path / "hub.toml"
    config.write_text(HUB_TOML, encoding="utf-8")
    before_ext4 = e2fsck(img, info["root_offset"])
    assert before_ext4.returncode == 0, before_ext4.stdout

    r = hub(["provision", "--image", img, "--config", config, "--hostname", "khum-test",
             "--clerk", "sokha"], tmp_path, stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    # Secrets never reach the terminal.
    for secret in (PASSWORD, "tok-9f8e7d6c5b4a"):
        assert secret not in r.stdout + r.stderr

    got = mtype(img, info["boot_offset"], "hub/hub.toml")
    assert got.returncode == 0, got.stderr
    assert got.stdout == HUB_TOML
    assert mtype(img, info["boot_offset"], "hub/hostname").stdout == "khum-test\n"
    assert mtype(img, info["boot_offset"], "hub/first-clerk").stdout == f"sokha\n{PASSWORD}\n"
    after = e2fsck(img, info["root_offset"])
    assert after.returncode == 0, after.stdout + after.stderr
    need("debugfs")
    cat = run(["debugfs", "-R", "cat /etc/os-release", f"{img}?offset={info['root_offset']}"])
    assert cat.stdout == 'PRETTY_NAME="test image"\n', cat.stderr
    # The partition table itself is unchanged.
    table = run(["sfdisk", "--dump", img]).stdout
    assert "type=c" in table and "type=83" in table

    # Provisioning again replaces the files (a technician fixing a typo).
    config.write_text(HUB_TOML.replace("Khum-Test", "Khum-Two"), encoding="utf-8")
    r = hub(["provision", "--image", img, "--config", config], tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'ssid = "Khum-Two"' in mtype(img, info["boot_offset"], "hub/hub.toml").stdout
    assert e2fsck(img, info["root_offset"]).returncode == 0


@pytest.mark.parametrize("text, named", [
    ("volume = 3.0\n", "volume"),
    ('wifi_hw_mode = "n"\n', "wifi_hw_mode"),
    ("volme = 0.5\n", "volme"),
    ('data_dir = "/home/pi/hub"\n', "data_dir"),
    ("port = [\n", "hub.toml"),
])
def test_a_bad_setting_is_refused_in_one_line_and_nothing_is_written(sd_image, tmp_path, text,
                                                                      named):
    img, info = sd_image
    config = tmp_path / "hub.toml"
    config.write_text(text)
    r = hub(["provision", "--image", img, "--config", config], tmp_path)
    assert r.returncode == 1
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("hub: error:") and named in line, r.stderr
    assert "Traceback" not in r.stderr
    assert mtype(img, info["boot_offset"], "hub/hub.toml").returncode != 0


def test_an_image_without_a_fat_partition_is_refused(tmp_path):
    img = tmp_path / "linux-only.img"
    make_image(img, fat=False)
    config = tmp_path / "hub.toml"
    config.write_text("")
    r = hub(["provision", "--image", img, "--config", config], tmp_path)
    assert r.returncode == 1 and "no FAT boot partition" in r.stderr, r.stderr


def test_provision_refuses_a_file_given_as_device(sd_image, tmp_path):
    img, _ = sd_image
    (tmp_path / "hub.toml").write_text("")
    r = hub(["provision", "--device", img, "--config", tmp_path / "hub.toml"], tmp_path)
    assert r.returncode == 1 and "not a block device" in r.stderr


# --- hub flash ----------------------------------------------------------------------------


@pytest.fixture
def small_image(tmp_path) -> Path:
    """A 24 MB image: random bytes, then zeros (as a real image has free space)."""
    img = tmp_path / "small.img"
    with open(img, "wb") as f:
        f.write(os.urandom(8 * 1024 * 1024 + 12345))
        f.write(b"\0" * (16 * 1024 * 1024))
    return img


def test_flash_writes_a_file_and_verifies_it(small_image, tmp_path):
    card = tmp_path / "card.bin"
    card.write_bytes(b"\xff" * (40 * 1024 * 1024))  # an old, bigger card image
    r = hub(["flash", small_image, card], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "written and verified" in r.stdout
    assert card.read_bytes() == small_image.read_bytes()
    # A progress report, then the verification pass.
    assert "writing 100%" in r.stderr and "verifying 100%" in r.stderr
    again = hub(["flash", "--verify-only", small_image, card], tmp_path)
    assert again.returncode == 0 and "matches" in again.stdout


def test_flash_decompresses_an_xz_image(small_image, tmp_path):
    xz = tmp_path / "small.img.xz"
    xz.write_bytes(lzma.compress(small_image.read_bytes(), preset=0))
    card = tmp_path / "card.bin"
    r = hub(["flash", xz, card], tmp_path)
    assert r.returncode == 0, r.stderr
    assert card.read_bytes() == small_image.read_bytes()


def test_a_corrupted_readback_is_detected(small_image, tmp_path):
    from hub.provision.flash import FlashError, write_image

    card = tmp_path / "card.bin"

    def card_loses_a_byte():
        # What a counterfeit card does: accepts the write, returns something else.
        with open(card, "r+b") as f:
            f.seek(5_000_000)
            byte = f.read(1)
            f.seek(5_000_000)
            f.write(bytes([byte[0] ^ 0x01]))

    with open(os.devnull, "w") as quiet, pytest.raises(FlashError, match="differs from the image"):
        write_image(small_image, str(card), out=quiet, after_write=card_loses_a_byte)
    r = hub(["flash", "--verify-only", small_image, card], tmp_path)
    assert r.returncode == 1 and "differs from the image" in r.stderr
    card.write_bytes(small_image.read_bytes()[:1_000_000])
    r = hub(["flash", "--verify-only", small_image, card], tmp_path)
    assert r.returncode == 1 and "could be read back" in r.stderr


def test_flash_refuses_the_root_disk_and_missing_devices(tmp_path, small_image):
    from hub.core.errors import HubError
    from hub.provision.image import check_writable_target, root_disk

    r = hub(["flash", small_image, "/dev/hub-test-no-such-card", "--yes"], tmp_path)
    assert r.returncode == 1 and "no such device" in r.stderr
    assert not os.path.exists("/dev/hub-test-no-such-card")
    disk = root_disk()
    if disk is None:
        pytest.skip("/ is not on a block device here")
    node = next((f"/dev/{p.name}" for p in Path("/sys/class/block").iterdir()
                 if (p / "dev").read_text().strip() == f"{os.major(disk)}:{os.minor(disk)}"),
                None)
    assert node and stat.S_ISBLK(os.stat(node).st_mode)
    # Checked without ever opening the disk for writing.
    with pytest.raises(HubError, match="root file system"):
        check_writable_target(node)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("losetup"),
                    reason="needs root for a loop device")
def test_flash_refuses_a_mounted_card_and_writes_an_unmounted_one(tmp_path, small_image):
    backing = tmp_path / "card.img"
    run(["truncate", "-s", "32M", backing]).check_returncode()
    run(["mkfs.ext4", "-q", backing]).check_returncode()
    setup = run(["losetup", "--find", "--show", backing])
    if setup.returncode != 0:
        pytest.skip(f"no loop devices: {setup.stderr.strip()}")
    loop = setup.stdout.strip()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        assert run(["mount", loop, mnt]).returncode == 0
        try:
            r = hub(["flash", small_image, loop, "--yes"], tmp_path)
            assert r.returncode == 1 and "is mounted at" in r.stderr, r.stderr
        finally:
            run(["umount", mnt])
        r = hub(["flash", small_image, loop], tmp_path)
        assert r.returncode == 1 and "add --yes" in r.stderr  # no terminal to ask on
        r = hub(["flash", small_image, loop, "--yes"], tmp_path)
        assert r.returncode == 0, r.stderr
    finally:
        run(["losetup", "-d", loop])
    assert backing.read_bytes()[: small_image.stat().st_size] == small_image.read_bytes()


# --- first boot ---------------------------------------------------------------------------


def pi_root(tmp_path) -> Path:
    """A minimal Raspberry Pi OS root: account files, hosts, the hub's units."""
    root = tmp_path / "pi"
    etc = root / "etc"
    (etc / "systemd" / "system").mkdir(parents=True)
    (root / "boot" / "firmware").mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n"
                                "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
                                "pi:x:1000:1000::/home/pi:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\nwww-data:x:33:\naudio:x:29:pi\ngpio:x:997:pi\n"
                               "pi:x:1000:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\nwww-data:*:19000:0:99999:7:::\n"
                                "pi:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\nwww-data:*::\naudio:*::pi\ngpio:!::pi\npi:!::\n")
    for f in ("shadow", "gshadow"):
        (etc / f).chmod(0o640)
    (etc / "hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n")
    (etc / "hostname").write_text("raspberrypi\n")
    for unit in [*SYSTEMD_DIR.iterdir(), FIRSTBOOT_DIR / "hub-firstboot.service"]:
        shutil.copy2(unit, etc / "systemd" / "system" / unit.name)
    return root


def firstboot(root: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(ROOT=str(root), HUB=str(Path(sys.executable).parent / "hub"))
    return subprocess.run(["sh", str(FIRSTBOOT_DIR / "hub-firstboot")], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.mark.skipif(os.geteuid() != 0, reason="first boot creates users and sets owners: root")
def test_first_boot_moves_a_provisioned_card_into_place(sd_image, tmp_path):
    need("useradd")
    need("systemctl")
    img, info = sd_image
    config = tmp_path / "hub.toml"
    config.write_text(HUB_TOML, encoding="utf-8")
    r = hub(["provision", "--image", img, "--config", config, "--hostname", "khum-test",
             "--clerk", "sokha"], tmp_path, stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    root = pi_root(tmp_path)
    # What the Pi sees at /boot/firmware: the card's FAT partition, copied out with mtools.
    got = run(["mcopy", "-s", "-i", f"{img}@@{info['boot_offset']}", "::/hub",
               root / "boot" / "firmware"], env=mtools_env())
    assert got.returncode == 0, got.stderr

    r = firstboot(root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert PASSWORD not in r.stdout + r.stderr

    etc = root / "etc"
    passwd = (etc / "passwd").read_text()
    hub_line = next(line for line in passwd.splitlines() if line.startswith("hub:"))
    uid, gid = int(hub_line.split(":")[2]), int(hub_line.split(":")[3])
    assert hub_line.endswith(":/var/lib/hub:/usr/sbin/nologin")
    group = (etc / "group").read_text()
    assert "hub" in next(line for line in group.splitlines() if line.startswith("audio:"))
    assert "hub" in next(line for line in group.splitlines() if line.startswith("gpio:"))
    # nginx reads the phone copies of media through the hub group.
    assert next(line for line in group.splitlines() if line.startswith("hub:")).endswith(
        ":www-data")

    toml = etc / "hub" / "hub.toml"
    st = toml.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0 and st.st_gid == gid
    text = toml.read_text(encoding="utf-8")
    assert text.startswith(HUB_TOML)
    key = [line for line in text.splitlines() if line.startswith("secret_key")]
    assert len(key) == 1 and len(key[0].split('"')[1]) == 64
    from hub.core import settings

    loaded = settings.load(toml, env={})
    assert loaded.hub_name == "ឃុំ តេស្ត" and len(loaded.secret_key) == 64

    assert loaded.behind_proxy is True and loaded.portal_url == "http://10.42.0.1/"
    assert str(loaded.data_dir) == "/var/lib/hub"  # the technician's `hub doctor` sees the units' data
    # The network part wrote the access point's files from the same settings.
    hostapd = etc / "hostapd" / "hostapd.conf"
    assert "ssid=Khum-Test" in hostapd.read_text().splitlines()
    assert "warning" not in r.stderr, r.stderr

    assert (etc / "hostname").read_text() == "khum-test\n"
    assert "127.0.1.1\tkhum-test" in (etc / "hosts").read_text()

    data = root / "var" / "lib" / "hub"
    assert data.stat().st_uid == uid and stat.S_IMODE(data.stat().st_mode) == 0o750
    db = data / "hub.db"
    assert db.stat().st_uid == uid
    from hub import accounts
    from hub.core import db as dbmod

    conn = dbmod.connect(db)
    assert accounts.authenticate(conn, "sokha", PASSWORD)["role"] == "admin"
    conn.conn.close()

    wants = etc / "systemd" / "system" / "multi-user.target.wants" / "hub.target"
    assert wants.is_symlink()
    assert (etc / "systemd" / "system" / "timers.target.wants" / "hub-doctor.timer").is_symlink()
    assert (etc / "systemd" / "system" / "multi-user.target.wants" / "hub-settings.path").is_symlink()
    # The boot-partition copy, with the secrets, is gone.
    assert not (root / "boot" / "firmware" / "hub").exists()

    # Run again (a reboot): nothing to do, nothing changed.
    r = firstboot(root)
    assert r.returncode == 0 and "nothing to do" in r.stdout
    assert toml.read_text(encoding="utf-8") == text


@pytest.mark.skipif(os.geteuid() != 0, reason="first boot creates users and sets owners: root")
def test_first_boot_interrupted_by_a_power_cut_finishes_on_the_next_boot(tmp_path):
    root = pi_root(tmp_path)
    src = root / "boot" / "firmware" / "hub"
    src.mkdir()
    (src / "hub.toml").write_text('hub_name = "A"\nsecret_key = "kept-from-before"\n')
    (src / "hostname").write_text("khum-a\n")
    # As if the first run had created the user and then lost power.
    assert firstboot(root).returncode == 0
    src.mkdir()
    (src / "hub.toml").write_text('hub_name = "A"\nsecret_key = "kept-from-before"\n')
    r = firstboot(root)
    assert r.returncode == 0, r.stderr
    text = (root / "etc" / "hub" / "hub.toml").read_text()
    assert text.count("secret_key") == 1 and "kept-from-before" in text
    assert (root / "etc" / "passwd").read_text().count("\nhub:") == 1
    assert not src.exists()


# --- the image recipe ---------------------------------------------------------------------


def test_a_wrong_pi_gen_checkout_is_refused_in_one_line(tmp_path):
    """PIGEN_DIR picks the Raspberry Pi OS build; one that is not a pi-gen checkout stops it."""
    env = dict(os.environ, PIGEN_DIR=str(tmp_path))
    r = subprocess.run([ROOT / "provisioning" / "build-image.sh"], cwd=ROOT, capture_output=True, text=True,
                       env=env)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("build-image:")]
    assert len(lines) == 1 and "PIGEN_DIR" in lines[0] and "Debian image" in lines[0], r.stderr


def test_the_pi_gen_stage_is_complete():
    stage = ROOT / "provisioning" / "stage-hub"
    # One package list for the image and the booted-appliance test.
    packages = [x for x in (ROOT / "provisioning" / "packages.list").read_text().split() if not x.startswith("#")]
    for p in ("hostapd", "dnsmasq", "nftables", "nginx", "ffmpeg", "fake-hwclock",
              "portaudio19-dev", "python3-venv"):
        assert p in packages
    assert "packages.list" in (ROOT / "provisioning" / "build-image.sh").read_text()
    # The stage runs the one install script.
    assert "install-hub.sh" in (stage / "00-hub" / "01-run.sh").read_text()
    install = (ROOT / "provisioning" / "install-hub.sh").read_text()
    assert "/opt/hub/venv" in install and "fake-hwclock" in install and "noatime" in install
    assert "hub-firstboot.service" in install
    journald = (ROOT / "provisioning" / "files" / "journald-hub.conf").read_text()
    assert "Storage=volatile" in journald and "RuntimeMaxUse=" in journald
    for script in (stage / "prerun.sh", stage / "00-hub" / "01-run.sh",
                   ROOT / "provisioning" / "build-image.sh", ROOT / "provisioning" / "install-hub.sh",
                   ROOT / "provisioning" / "stage-files.sh", ROOT / "provisioning" / "image" / "build-root.sh",
                   ROOT / "provisioning" / "image" / "build-debian.sh", FIRSTBOOT_DIR / "hub-datapart",
                   ROOT / "provisioning/image/rootfs/etc/initramfs-tools/scripts/init-bottom/hub-overlay"):
        assert os.access(script, os.X_OK), script
        assert run(["bash", "-n", script]).returncode == 0, script
    assert run(["sh", "-n", FIRSTBOOT_DIR / "hub-firstboot"]).returncode == 0


def test_the_noatime_edit_of_fstab(tmp_path):
    """The sed in install-hub.sh adds noatime where it is missing and nowhere twice."""
    import re

    run_sh = (ROOT / "provisioning" / "install-hub.sh").read_text()
    expr = re.search(r"sed -i -E '([^']+)'", run_sh).group(1)
    fstab = tmp_path / "fstab"
    fstab.write_text(
        "proc            /proc           proc    defaults          0       0\n"
        "PARTUUID=1-01  /boot/firmware  vfat    defaults          0       2\n"
        "PARTUUID=1-02  /               ext4    defaults,noatime  0       1\n")
    assert run(["sed", "-i", "-E", expr, fstab]).returncode == 0
    lines = fstab.read_text().splitlines()
    assert "vfat    defaults,noatime" in lines[1]
    assert lines[2].count("noatime") == 1 and "noatime" not in lines[0]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("losetup"),
                    reason="needs root for a loop device")
def test_provision_a_card_as_a_block_device(sd_image, tmp_path):
    """--device on a real block device (the image behind a loop device, as a card reader)."""
    img, info = sd_image
    setup = run(["losetup", "--find", "--show", img])
    if setup.returncode != 0:
        pytest.skip(f"no loop devices: {setup.stderr.strip()}")
    loop = setup.stdout.strip()
    try:
        config = tmp_path / "hub.toml"
        config.write_text(HUB_TOML, encoding="utf-8")
        r = hub(["provision", "--device", loop, "--config", config], tmp_path)
        assert r.returncode == 0, r.stderr
    finally:
        run(["losetup", "-d", loop])
    assert mtype(img, info["boot_offset"], "hub/hub.toml").stdout == HUB_TOML
    assert e2fsck(img, info["root_offset"]).returncode == 0
