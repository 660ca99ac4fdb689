"""First boot's data partition (provisioning/firstboot/hub-datapart) on a card
image behind a loop device: the third partition is made, the data moved onto
it, and a power cut after any step is finished by the next run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.appliance.conftest import FIRSTBOOT_DIR, run

SCRIPT = FIRSTBOOT_DIR / "hub-datapart"
STEPS = ("partition", "format", "copy", "fstab", "switch")
FSTAB = "LABEL=hubroot\t/\text4\tdefaults,noatime\t0\t1\n"
DATA = {"hub.db": b"SQLite format 3\0" + b"x" * 5000, "media/a.web.mp3": b"ID3" + b"m" * 20000,
        "media/b.master.ogg": b"OggS" + b"o" * 30000}

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("losetup"),
                                reason="loop devices and mounts need root")


class Card:
    """A 240 MB card: FAT boot, a 100 MB ext4 root with data in /var/lib/hub, free space after."""

    def __init__(self, tmp: Path):
        self.img = tmp / "card.img"
        self.root = tmp / "root"
        self.root.mkdir()
        run(["truncate", "-s", "240M", self.img]).check_returncode()
        run(["sfdisk", "-q", self.img], input="label: dos\nstart=8192, size=65536, type=c\n"
            "start=73728, size=204800, type=83\n").check_returncode()
        self.attach()
        run(["mkfs.ext4", "-q", "-F", "-L", "hubroot", self.part(2)]).check_returncode()
        self.mount_root()
        data = self.root / "var/lib/hub"
        for name, content in DATA.items():
            (data / name).parent.mkdir(parents=True, exist_ok=True)
            (data / name).write_bytes(content)
        os.chmod(data, 0o750)
        (self.root / "etc").mkdir()
        (self.root / "etc/fstab").write_text(FSTAB)

    def attach(self) -> None:
        r = run(["losetup", "--find", "--show", self.img])
        if r.returncode != 0:
            pytest.skip(f"no loop device: {r.stderr.strip()}")
        self.loop = r.stdout.strip()
        run(["partx", "-a", self.loop])

    def part(self, n: int) -> str:
        return f"{self.loop}p{n}"

    def mount_root(self) -> None:
        run(["mount", self.part(2), self.root]).check_returncode()

    def datapart(self, stop_after: str | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env["ROOT"] = str(self.root)
        if stop_after:
            env["HUB_DATAPART_STOP_AFTER"] = stop_after
        return subprocess.run(["sh", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120)

    def power_cycle(self) -> None:
        """Off (nothing unmounted cleanly beyond what the kernel flushed), and on again:
        the loop device re-reads the partition table; the boot mounts what fstab names."""
        self.off()
        self.attach()
        self.mount_root()
        if "hubdata" in (self.root / "etc/fstab").read_text():
            run(["mount", "-o", "noatime", self.part(3), self.root / "var/lib/hub"]).check_returncode()

    def off(self) -> None:
        for target in (self.root / "var/lib/hub", self.root):
            run(["umount", target])
        run(["partx", "-d", self.loop])
        run(["losetup", "-d", self.loop])

    def check_done(self) -> None:
        fstab = (self.root / "etc/fstab").read_text()
        assert fstab.startswith(FSTAB)
        lines = [ln for ln in fstab.splitlines() if "/var/lib/hub" in ln]
        assert lines == ["LABEL=hubdata\t/var/lib/hub\text4\tdefaults,noatime,commit=5,nofail,"
                         "x-systemd.device-timeout=30s\t0\t2"]
        src = run(["findmnt", "-n", "-o", "SOURCE", self.root / "var/lib/hub"]).stdout.strip()
        assert src == self.part(3)
        assert run(["blkid", "-o", "value", "-s", "LABEL", self.part(3)]).stdout.strip() == "hubdata"
        data = self.root / "var/lib/hub"
        for name, content in DATA.items():
            assert (data / name).read_bytes() == content, name
        assert (os.stat(data).st_mode & 0o777) == 0o750
        # Beneath the mount, the root's old copy is gone.
        run(["umount", data]).check_returncode()
        try:
            assert sorted(os.listdir(data)) == []
        finally:
            run(["mount", self.part(3), data]).check_returncode()
        table = run(["sfdisk", "-q", "-l", "-o", "Device,Start", self.img]).stdout.split()
        assert table.count(str(self.img) + "3") == 1


@pytest.fixture
def card(tmp_path):
    c = Card(tmp_path)
    yield c
    c.off()


def test_first_boot_moves_the_data_onto_a_third_partition_and_a_second_run_changes_nothing(card):
    r = card.datapart()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "added" in r.stdout and "copied" in r.stdout
    card.check_done()
    before = (card.root / "etc/fstab").read_text()
    r = card.datapart()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "added" not in r.stdout and "copied" not in r.stdout and "made" not in r.stdout
    assert (card.root / "etc/fstab").read_text() == before
    card.check_done()


@pytest.mark.parametrize("step", STEPS)
def test_a_power_cut_after_any_step_is_finished_by_the_next_boot(card, step):
    r = card.datapart(stop_after=step)
    assert r.returncode == 75 and f"stopped after {step}" in r.stdout, r.stdout + r.stderr
    card.power_cycle()
    r = card.datapart()
    assert r.returncode == 0, r.stdout + r.stderr
    card.check_done()


def test_a_copy_cut_half_way_is_made_whole(card):
    """A power cut in the middle of the copy: some files on the new partition, no mark."""
    assert card.datapart(stop_after="format").returncode == 75
    half = card.root / "half"
    half.mkdir()
    run(["mount", card.part(3), half]).check_returncode()
    (half / "hub.db").write_bytes(DATA["hub.db"][:100])
    run(["umount", half]).check_returncode()
    half.rmdir()
    card.power_cycle()
    r = card.datapart()
    assert r.returncode == 0, r.stdout + r.stderr
    card.check_done()


def test_a_card_without_room_keeps_the_data_on_the_root(tmp_path):
    c = Card(tmp_path)
    try:
        env_min = dict(os.environ, ROOT=str(c.root), HUB_DATAPART_MIN_MB="1000")
        r = subprocess.run(["sh", str(SCRIPT)], capture_output=True, text=True, env=env_min, timeout=60)
        assert r.returncode == 0 and "stays on the root" in r.stdout, r.stdout + r.stderr
        assert len(run(["sfdisk", "-q", "-l", c.img]).stdout.strip().splitlines()) == 3  # header + 2
        assert (c.root / "var/lib/hub/hub.db").read_bytes() == DATA["hub.db"]
    finally:
        c.off()


def test_a_root_that_is_not_a_partition_is_left_alone(tmp_path):
    """Like the booted-appliance test's container, whose root is an overlay, not a card."""
    root = tmp_path / "root"
    root.mkdir()
    run(["mount", "-t", "tmpfs", "tmpfs", root]).check_returncode()
    try:
        r = subprocess.run(["sh", str(SCRIPT)], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, ROOT=str(root)))
    finally:
        run(["umount", root])
    assert r.returncode == 0 and "not on a disk partition" in r.stdout, r.stdout + r.stderr
