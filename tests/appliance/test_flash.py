"""`hub flash IMAGE.xz DEV --config ...`: the published SHA-256 checked first, the
card written and read back, then provisioned, on a loop device as a card reader."""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil

import pytest

from tests.appliance.conftest import SECTOR, mtools_env, run
from tests.appliance.test_provision import HUB_TOML, PASSWORD, e2fsck, firstboot, hub, mtype, pi_root


def small_card(path) -> dict:
    """A 40 MB card image: a 16 MB FAT16 boot partition and an ext4 root with a file in it."""
    run(["truncate", "-s", "40M", path]).check_returncode()
    run(["sfdisk", "-q", path], input="label: dos\nstart=2048, size=32768, type=e\nstart=34816, type=83\n"
        ).check_returncode()
    run(["mkfs.vfat", "-F", "16", "-n", "HUBBOOT", "--offset", "2048", path, "16384"]).check_returncode()
    rootfs = path.parent / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc/os-release").write_bytes(os.urandom(256 * 1024))
    run(["mkfs.ext4", "-q", "-F", "-L", "hubroot", "-E", f"offset={34816 * SECTOR}", "-d", rootfs, path,
         f"{(81920 - 34816) * SECTOR // 1024}k"]).check_returncode()
    return {"boot_offset": 2048 * SECTOR, "root_offset": 34816 * SECTOR}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A card image as `make image` publishes it: IMAGE.img.xz and IMAGE.img.xz.sha256."""
    tmp_path = tmp_path_factory.mktemp("published")
    img = tmp_path / "commune-hub.img"
    info = small_card(img)
    xz = tmp_path / "commune-hub.img.xz"
    xz.write_bytes(lzma.compress(img.read_bytes(), preset=0))
    digest = hashlib.sha256(xz.read_bytes()).hexdigest()
    (tmp_path / "commune-hub.img.xz.sha256").write_text(f"{digest}  commune-hub.img.xz\n")
    return img, xz, info


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("losetup"), reason="needs root for a loop device")
def test_flash_then_provision_a_card_on_a_loop_device(published, tmp_path):
    img, xz, info = published
    backing = tmp_path / "card.bin"
    run(["truncate", "-s", "64M", backing]).check_returncode()
    setup = run(["losetup", "--find", "--show", backing])
    if setup.returncode != 0:
        pytest.skip(f"no loop devices: {setup.stderr.strip()}")
    loop = setup.stdout.strip()
    config = tmp_path / "hub.toml"
    config.write_text(HUB_TOML, encoding="utf-8")
    try:
        r = hub(["flash", xz, loop, "--yes", "--config", config, "--hostname", "khum-flash",
                 "--clerk", "sokha", "--read-only-root"], tmp_path, stdin=PASSWORD + "\n")
        assert r.returncode == 0, r.stderr
    finally:
        run(["losetup", "-d", loop])
    assert "matches commune-hub.img.xz.sha256" in r.stdout
    assert "written and verified" in r.stdout and "hub/hub.toml" in r.stdout
    # The card holds the image, then the provisioning on its boot partition.
    assert mtype(backing, info["boot_offset"], "hub/hub.toml").stdout == HUB_TOML
    assert mtype(backing, info["boot_offset"], "hub/hostname").stdout == "khum-flash\n"
    assert mtype(backing, info["boot_offset"], "hub/first-clerk").stdout == f"sokha\n{PASSWORD}\n"
    assert mtype(backing, info["boot_offset"], "hub/readonly-root").returncode == 0
    assert e2fsck(backing, info["root_offset"]).returncode == 0
    with open(backing, "rb") as f:
        f.seek(info["root_offset"])
        assert f.read(1 << 20) == img.read_bytes()[info["root_offset"]:info["root_offset"] + (1 << 20)]


def test_a_damaged_download_is_refused_before_writing(published, tmp_path):
    _, original, _ = published
    xz = tmp_path / original.name
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0xFF
    xz.write_bytes(bytes(data))
    shutil.copy(original.with_name(original.name + ".sha256"), tmp_path)
    card = tmp_path / "card.bin"
    card.write_bytes(b"\x55" * 4096)
    r = hub(["flash", xz, card], tmp_path)
    assert r.returncode == 1
    assert "differs from commune-hub.img.xz.sha256" in r.stderr, r.stderr
    assert card.read_bytes() == b"\x55" * 4096  # nothing written


def test_a_bad_setting_stops_flash_before_the_card_is_erased(published, tmp_path):
    _, xz, _ = published
    config = tmp_path / "hub.toml"
    config.write_text(HUB_TOML + "no_such_setting = 1\n", encoding="utf-8")
    card = tmp_path / "card.bin"
    card.write_bytes(b"\x55" * 4096)
    r = hub(["flash", xz, card, "--config", config], tmp_path)
    assert r.returncode == 1 and "no_such_setting" in r.stderr, r.stderr
    assert card.read_bytes() == b"\x55" * 4096


@pytest.mark.skipif(os.geteuid() != 0, reason="first boot creates users and sets owners: root")
def test_first_boot_installs_the_read_only_root_request_and_ssh(published, tmp_path):
    img, _, info = published
    card = tmp_path / "card.img"
    shutil.copy(img, card)
    config = tmp_path / "hub.toml"
    config.write_text(HUB_TOML, encoding="utf-8")
    r = hub(["provision", "--image", card, "--config", config, "--read-only-root", "--ssh"], tmp_path)
    assert r.returncode == 0, r.stderr
    root = pi_root(tmp_path)
    boot = root / "boot" / "firmware"
    for name in ("hub", "ssh"):
        got = run(["mcopy", "-s", "-i", f"{card}@@{info['boot_offset']}", f"::/{name}", boot], env=mtools_env())
        assert got.returncode == 0, got.stderr
    (root / "lib/systemd/system").mkdir(parents=True)
    (root / "lib/systemd/system/ssh.service").write_text("[Service]\nExecStart=/bin/true\n[Install]\n"
                                                          "WantedBy=multi-user.target\n")
    r = firstboot(root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (root / "etc/hub/readonly-root").is_file()
    assert "read-only from the next boot" in r.stdout
    assert (root / "etc/systemd/system/multi-user.target.wants/ssh.service").is_symlink()
    assert not (boot / "ssh").exists() and not (boot / "hub").exists()
