"""The built SD-card image as a card, booted under ``qemu-system-aarch64``.

:class:`Card` is a copy of the image (grown to a card's size), and reads the
partitions of it without mounting them: mtools for the FAT boot partition,
``debugfs`` on a read-only loop device for the ext4 ones. :class:`Pi` boots
it on QEMU's ``virt`` machine with the card's own kernel, initramfs and
``cmdline.txt`` from its boot partition and the card as a virtio disk, the
portal reachable through a forwarded port.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

MTOOLS = dict(os.environ, MTOOLS_SKIP_CHECK="1", MTOOLSRC="/dev/null")


class BootError(RuntimeError):
    """The image did not do what the test waited for."""


def run(cmd: list, check: bool = True, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    r = subprocess.run([str(c) for c in cmd], **kw)
    if check and r.returncode != 0:
        raise BootError(f"{' '.join(map(str, cmd))[:300]}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Card:
    """A copy of the image, as an SD card of *size_mb*; with no *image*, the card already at *path*."""

    def __init__(self, image: Path | None, path: Path, size_mb: int = 3072):
        self.path = Path(path)
        if image is not None:
            run(["cp", "--sparse=always", image, self.path])
            run(["truncate", "-s", f"{size_mb}M", self.path])

    def partitions(self) -> list[dict]:
        table = json.loads(run(["sfdisk", "--json", self.path]).stdout)["partitiontable"]
        return table["partitions"]

    def offset(self, n: int) -> tuple[int, int]:
        p = self.partitions()[n - 1]
        return p["start"] * 512, p["size"] * 512

    def boot_file(self, name: str, dest: Path | None = None) -> bytes:
        off, _ = self.offset(1)
        dest = dest or self.path.with_name(f".{name}.boot")
        r = subprocess.run(["mcopy", "-n", "-i", f"{self.path}@@{off}", f"::/{name}", str(dest)],
                           capture_output=True, env=MTOOLS, check=False)
        if r.returncode != 0:
            raise BootError(f"::/{name} not on the boot partition: {r.stderr.decode()}")
        return dest.read_bytes()

    def boot_listing(self) -> str:
        off, _ = self.offset(1)
        return run(["mdir", "-/", "-b", "-i", f"{self.path}@@{off}", "::/"], env=MTOOLS, check=False).stdout

    def ext4(self, n: int, command: str) -> str:
        """A read-only ``debugfs`` request on partition *n*."""
        off, size = self.offset(n)
        loop = run(["losetup", "--find", "--show", "--read-only", "--offset", off, "--sizelimit", size,
                    self.path]).stdout.strip()
        try:
            return run(["debugfs", "-R", command, loop], check=False).stdout
        finally:
            run(["losetup", "-d", loop], check=False)

    def read(self, n: int, path: str) -> str:
        return self.ext4(n, f"cat {path}")

    def copy_out(self, n: int, path: str, dest: Path) -> Path:
        off, size = self.offset(n)
        loop = run(["losetup", "--find", "--show", "--read-only", "--offset", off, "--sizelimit", size,
                    self.path]).stdout.strip()
        try:
            run(["debugfs", "-R", f"dump -p {path} {dest}", loop])
        finally:
            run(["losetup", "-d", loop], check=False)
        if not dest.exists():
            raise BootError(f"{path} is not on partition {n}")
        return dest

    def write_root_file(self, path: str, text: str, scratch: Path) -> None:
        """Put one file on the root partition (the test's probe unit), with debugfs."""
        off, size = self.offset(2)
        src = scratch / Path(path).name
        src.write_text(text)
        loop = run(["losetup", "--find", "--show", "--offset", off, "--sizelimit", size, self.path]).stdout.strip()
        try:
            run(["debugfs", "-w", "-R", f"rm {path}", loop], check=False)
            run(["debugfs", "-w", "-R", f"write {src} {path}", loop])
            run(["debugfs", "-w", "-R", f"sif {path} mode 0100644", loop])
        finally:
            run(["losetup", "-d", loop], check=False)

    def digest(self, n: int) -> str:
        off, size = self.offset(n)
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            f.seek(off)
            left = size
            while left:
                chunk = f.read(min(left, 8 << 20))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
        return h.hexdigest()


class Pi:
    """One power-on of *card* under qemu-system-aarch64 (TCG)."""

    def __init__(self, card: Card, workdir: Path, name: str, extra_cmdline: str = ""):
        self.card, self.dir, self.name = card, Path(workdir), name
        self.console = self.dir / f"{name}.console.log"
        self.monitor = self.dir / f"{name}.monitor"
        self.port = free_port()
        self.extra = extra_cmdline
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def kernel_files(self) -> tuple[Path, Path, str]:
        """The kernel and initramfs that config.txt names, and cmdline.txt, from the card."""
        config = self.card.boot_file("config.txt").decode()
        kernel = re.search(r"^kernel=(\S+)", config, re.M).group(1)
        initrd = re.search(r"^initramfs\s+(\S+)", config, re.M).group(1)
        cmdline = self.card.boot_file("cmdline.txt").decode().strip()
        k, i = self.dir / kernel, self.dir / initrd
        self.card.boot_file(kernel, k)
        self.card.boot_file(initrd, i)
        return k, i, cmdline

    def start(self) -> None:
        kernel, initrd, cmdline = self.kernel_files()
        # The Pi's serial console is ttyS1; QEMU's virt machine has a PL011 at ttyAMA0.
        cmdline = " ".join(w for w in cmdline.split() if not w.startswith("console="))
        cmdline = f"console=ttyAMA0,115200 {cmdline} {self.extra}".strip()
        self.cmdline = cmdline
        cmd = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a53", "-smp", "2", "-m", "1024",
               "-accel", "tcg,thread=multi", "-nographic", "-no-reboot",
               "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
               "-drive", f"file={self.card.path},format=raw,if=none,id=card,cache=writeback",
               "-device", "virtio-blk-pci,drive=card",
               "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{self.port}-:80",
               "-device", "virtio-net-pci,netdev=net0,romfile=",
               "-device", "virtio-rng-pci",
               "-serial", f"file:{self.console}",
               "-monitor", f"unix:{self.monitor},server,nowait"]
        self.console.write_bytes(b"")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / f"{self.name}.qemu.err", "wb"),
                                     start_new_session=True)

    def log(self) -> str:
        return self.console.read_text(errors="replace")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def wait_console(self, pattern: str, timeout: float) -> float:
        """Seconds from power-on until *pattern* shows on the serial console."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if rx.search(self.log()):
                return self.elapsed()
            if self.proc.poll() is not None:
                raise BootError(f"QEMU ended (exit {self.proc.returncode}) before {pattern!r};"
                                f" console:\n{self.tail()}")
            time.sleep(1)
        raise BootError(f"no {pattern!r} on the console in {timeout:.0f} s; console:\n{self.tail()}")

    def tail(self, n: int = 25) -> str:
        return "\n".join(self.log().splitlines()[-n:])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def send(self, command: str) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.monitor))
            s.sendall(command.encode() + b"\n")
            time.sleep(0.5)

    def shut_down(self, timeout: float = 300) -> float:
        """Wait for the guest to power itself off (the probe does, once it is done)."""
        t = time.monotonic()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.power_cut()
            raise BootError(f"no power-off in {timeout:.0f} s; console:\n{self.tail()}") from None
        return time.monotonic() - t

    def power_cut(self) -> None:
        """QEMU killed at once: what the guest had not written to its disk is lost."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def __enter__(self) -> Pi:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.power_cut()
        self.monitor.unlink(missing_ok=True)
