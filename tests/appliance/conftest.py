"""Fixtures for the appliance: unit trees, SD-card images and a hub to examine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, need

SYSTEMD_DIR = ROOT / "systemd"
FIRSTBOOT_DIR = ROOT / "provisioning" / "firstboot"
PREFIX_BINARIES = ("hub", "hub-web", "hub-announcer", "hub-recorder", "hub-transcriber",
                   "hub-sync")
SECTOR = 512
BOOT_START, BOOT_SECTORS = 8192, 204800  # a 100 MiB FAT32 boot partition, as on a Pi
ROOT_START = BOOT_START + BOOT_SECTORS


def run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False,
                          **kw)


def unit_tree(root: Path, units: list[Path]) -> Path:
    """An image-like tree for `systemd-analyze verify --root`: systemd's own units, the
    install prefix's executables, and *units* in /etc/systemd/system."""
    lib = root / "usr" / "lib" / "systemd"
    lib.mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", lib / "system", symlinks=True)
    bindir = root / "opt" / "hub" / "venv" / "bin"
    bindir.mkdir(parents=True)
    for name in PREFIX_BINARIES:
        (bindir / name).write_text("#!/bin/sh\n")
        (bindir / name).chmod(0o755)
    usr_bin = root / "usr" / "bin"
    usr_bin.mkdir(parents=True)
    shutil.copy2("/usr/bin/env", usr_bin / "env")  # the units start the hub's commands through env
    sbin = root / "usr" / "local" / "sbin"
    sbin.mkdir(parents=True)
    shutil.copy2(FIRSTBOOT_DIR / "hub-firstboot", sbin / "hub-firstboot")
    etc = root / "etc" / "systemd" / "system"
    etc.mkdir(parents=True)
    for u in units:
        shutil.copy2(u, etc / u.name)
    return etc


def make_image(path: Path, root_files: Path | None = None, fat: bool = True) -> dict:
    """A 400 MB card image: MBR, FAT32 boot partition (type c), ext4 root partition."""
    need("sfdisk")
    need("mkfs.vfat")
    need("mkfs.ext4")
    run(["truncate", "-s", "400M", path]).check_returncode()
    boot_type = "c" if fat else "83"
    table = (f"label: dos\nstart={BOOT_START}, size={BOOT_SECTORS}, type={boot_type}\n"
             f"start={ROOT_START}, type=83\n")
    run(["sfdisk", "-q", path], input=table).check_returncode()
    total = path.stat().st_size // SECTOR
    if fat:
        run(["mkfs.vfat", "-F", "32", "-s", "1", "-n", "BOOTFS", "--offset", BOOT_START, path,
             BOOT_SECTORS * SECTOR // 1024]).check_returncode()
    ext4 = ["mkfs.ext4", "-q", "-F", "-L", "rootfs", "-E", f"offset={ROOT_START * SECTOR}"]
    if root_files is not None:
        ext4 += ["-d", root_files]
    run([*ext4, path, f"{(total - ROOT_START) * SECTOR // 1024}k"]).check_returncode()
    return {"boot_offset": BOOT_START * SECTOR, "root_offset": ROOT_START * SECTOR}


def mtools_env() -> dict:
    return dict(os.environ, MTOOLS_SKIP_CHECK="1", MTOOLSRC="/dev/null")


@pytest.fixture
def sd_image(tmp_path):
    """A fresh card image with a little root file system on it."""
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "os-release").write_text('PRETTY_NAME="test image"\n')
    img = tmp_path / "sd.img"
    info = make_image(img, rootfs)
    return img, info
