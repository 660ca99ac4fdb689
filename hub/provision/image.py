"""Partitions of a disk image or card, and the FAT boot partition through mtools.

Nothing here mounts anything: ``sfdisk --json`` gives the partition offsets,
and mtools reads and writes the FAT file system at ``IMAGE@@OFFSET``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hub.core.errors import HubError

#: MBR partition types of a FAT file system (Raspberry Pi OS uses 0c, FAT32 LBA).
FAT_MBR_TYPES = {"1", "4", "6", "b", "c", "e"}
#: GPT types of a FAT file system: Microsoft basic data, EFI system.
FAT_GPT_TYPES = {"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"}


class ImageError(HubError):
    """The image or card cannot be read or written as expected."""


@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # bytes
    size: int  # bytes
    type: str

    @property
    def is_fat(self) -> bool:
        t = self.type.lower().removeprefix("0x")
        return t in FAT_MBR_TYPES or self.type.upper() in FAT_GPT_TYPES


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not path:
        package = {"sfdisk": "fdisk"}.get(name, "mtools")
        raise ImageError(f"{name} is not installed (apt-get install {package})")
    return path


def partitions(target: str | os.PathLike) -> list[Partition]:
    """The partitions of an image file or block device, from ``sfdisk --json``."""
    target = str(target)
    if not os.path.exists(target):
        raise ImageError(f"{target}: no such file or device")
    r = subprocess.run([_tool("sfdisk"), "--json", target], capture_output=True, text=True)
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or ["no partition table"])[-1]
        raise ImageError(f"{target}: cannot read the partition table ({why})")
    try:
        table = json.loads(r.stdout)["partitiontable"]
    except (ValueError, KeyError):
        raise ImageError(f"{target}: sfdisk gave no partition table") from None
    sector = int(table.get("sectorsize", 512))
    out = []
    for i, p in enumerate(table.get("partitions", []), start=1):
        node = p.get("node", "")
        digits = "".join(ch for ch in node[len(node.rstrip("0123456789")):])
        out.append(Partition(int(digits or i), int(p["start"]) * sector,
                             int(p["size"]) * sector, str(p.get("type", ""))))
    return out


def boot_partition(target: str | os.PathLike) -> Partition:
    """The first FAT partition: the Raspberry Pi's boot partition."""
    parts = partitions(target)
    for p in parts:
        if p.is_fat:
            return p
    kinds = ", ".join(p.type for p in parts) or "none"
    raise ImageError(f"{target}: no FAT boot partition (partition types: {kinds})")


class FatPartition:
    """One FAT file system inside an image or device, driven with mtools."""

    def __init__(self, target: str | os.PathLike, offset: int):
        self.target = str(target)
        self.offset = offset
        # Images made by other tools often have a geometry mtools finds odd;
        # the file system itself is fine.
        self.env = dict(os.environ, MTOOLS_SKIP_CHECK="1", MTOOLSRC="/dev/null")

    @property
    def drive(self) -> str:
        return f"{self.target}@@{self.offset}"

    def _run(self, tool: str, *args: str, input: bytes | None = None) -> bytes:
        r = subprocess.run([_tool(tool), "-i", self.drive, *args], input=input,
                           capture_output=True, env=self.env)
        if r.returncode != 0:
            why = r.stderr.decode(errors="replace").strip().splitlines() or [f"exit {r.returncode}"]
            raise ImageError(f"{tool} on {self.target}: {why[-1]}")
        return r.stdout

    def exists(self, path: str) -> bool:
        r = subprocess.run([_tool("mdir"), "-i", self.drive, "-b", f"::/{path.lstrip('/')}"],
                           capture_output=True, env=self.env)
        return r.returncode == 0

    def mkdir(self, path: str) -> None:
        if not self.exists(path):
            self._run("mmd", f"::/{path.lstrip('/')}")

    def write(self, path: str, data: bytes) -> None:
        """Write *data* as *path* on the partition, replacing any file there."""
        # mcopy reads the data from a file; keep it in a private one so a secret
        # never sits world-readable in /tmp, even briefly.

        with tempfile.NamedTemporaryFile(prefix="hub-provision-") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
            f.flush()
            self._run("mcopy", "-o", "-n", f.name, f"::/{path.lstrip('/')}")

    def read(self, path: str) -> bytes:
        return self._run("mtype", f"::/{path.lstrip('/')}")


# --- safety checks for real devices ---------------------------------------------


def _dev_numbers(path: str) -> int | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_rdev if stat.S_ISBLK(st.st_mode) else None


def _whole_disk(rdev: int) -> int:
    """The device number of the disk a partition belongs to (itself for a disk)."""
    sys_path = Path(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}")
    if (sys_path / "partition").exists():
        try:
            major, minor = (sys_path.resolve().parent / "dev").read_text().strip().split(":")
            return os.makedev(int(major), int(minor))
        except (OSError, ValueError):
            return rdev
    return rdev


def mounted_partitions(device: str, mounts: str = "/proc/self/mounts") -> list[str]:
    """Mount points of *device* or any of its partitions."""
    rdev = _dev_numbers(device)
    if rdev is None:
        return []
    disk = _whole_disk(rdev)
    found = []
    try:
        lines = Path(mounts).read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 2 or not fields[0].startswith("/dev/"):
            continue
        other = _dev_numbers(fields[0])
        if other is not None and (other == rdev or _whole_disk(other) == disk):
            found.append(fields[1].replace("\\040", " "))
    return found


def root_disk() -> int | None:
    """Device number of the disk holding / (None when it cannot be told)."""
    dev = os.stat("/").st_dev
    if os.major(dev) == 0:  # overlay, tmpfs, a container: no block device
        return None
    return _whole_disk(dev)


def check_writable_target(device: str) -> None:
    """Refuse a mounted card or the disk this machine runs from."""
    rdev = _dev_numbers(device)
    if rdev is None:
        return  # a regular file
    if root_disk() is not None and _whole_disk(rdev) == root_disk():
        raise ImageError(f"{device} holds this computer's root file system; refusing to touch it")
    mounted = mounted_partitions(device)
    if mounted:
        raise ImageError(f"{device} is mounted at {', '.join(mounted)}; unmount it first")
