"""The hub as a Pi runs it, on this machine: systemd as PID 1, the `hub` user, nginx as www-data.

- :func:`base_root` builds a Debian bookworm root with mmdebstrap from
  ``provisioning/packages.list`` (the image's own list) and keeps it in a cache
  keyed on that list, so a second run downloads nothing.
- :func:`installed_layer` installs the hub into an overlay above that root
  with ``provisioning/install-hub.sh``, the script the image stage runs.
- :class:`Appliance` provisions its boot folder with ``hub provision``, boots
  it with ``systemd-nspawn --boot`` inside a network namespace of its own, and
  reaches it with ``nsenter``. Its villagers' side is the access point's
  address on ``wlan0``; its staff side is ``eth0``.

``python -m tests.system.appliance`` (``make appliance``) boots one for a
person to try and prints how to reach its portal and console.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROVISIONING = REPO / "provisioning"
PACKAGE_LIST = PROVISIONING / "packages.list"
CACHE = Path(os.environ.get("HUB_SYSTEM_CACHE", "/var/cache/commune-hub/system"))
SUITE = "bookworm"
#: What a booted root needs beyond the image's packages (the image has them from its own base).
BOOT_PACKAGES = ["systemd", "systemd-sysv", "dbus", "procps"]

CLERK = ("clerk", "correct horse battery")
DAEMONS = ("hub-web", "hub-announcer", "hub-recorder", "hub-transcriber", "hub-sync")


class SystemError_(RuntimeError):
    """The appliance could not be built or booted."""


def run(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    r = subprocess.run(cmd, **kw)
    if check and r.returncode != 0:
        raise SystemError_(f"{' '.join(map(str, cmd))[:300]}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def packages() -> list[str]:
    lines = PACKAGE_LIST.read_text().splitlines()
    return [x.strip() for x in lines if x.strip() and not x.lstrip().startswith("#")]


def root_key() -> str:
    text = "\n".join([SUITE, *packages(), "--", *BOOT_PACKAGES])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def base_root(log=print) -> Path:
    """The cached Debian root for the current package list, built once."""
    root = CACHE / f"root-{SUITE}-{root_key()}"
    if (root / "etc/os-release").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f".building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"building a Debian {SUITE} root with mmdebstrap into {root} (once per package list)")
    run(["mmdebstrap", "--variant=minbase", "--include=" + ",".join(packages() + BOOT_PACKAGES),
         "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
         SUITE, str(tmp)], capture_output=False, stdout=subprocess.DEVNULL)
    # Roots of earlier package lists stay: another run may still be booting one.
    try:
        tmp.rename(root)
    except OSError:
        if not (root / "etc/os-release").exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another run built the same root meanwhile
    return root


def mount_overlay(lowers: list[Path], upper: Path, merged: Path) -> None:
    work = upper.parent / (upper.name + ".work")
    for d in (upper, work, merged):
        d.mkdir(parents=True, exist_ok=True)
    lower = ":".join(str(p) for p in lowers)
    run(["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)])


def umount(path: Path) -> None:
    for _ in range(50):
        r = run(["umount", str(path)], check=False)
        if r.returncode == 0 or "not mounted" in r.stderr:
            return
        time.sleep(0.2)
    run(["umount", "-l", str(path)], check=False)


def installed_layer(workdir: Path, log=print) -> tuple[Path, Path]:
    """Install the hub of this checkout above the cached root; return (layer, root)."""
    base = base_root(log)
    stage = workdir / "stage"
    log("staging the hub (wheel, units, first boot) with provisioning/stage-files.sh")
    run([str(PROVISIONING / "stage-files.sh"), str(stage)], env=dict(os.environ, PYTHON=sys.executable))
    layer, merged = workdir / "install", workdir / "install.root"
    mount_overlay([base], layer, merged)
    try:
        target = merged / "var/tmp/hub-install"
        shutil.copytree(stage, target)
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", target / "ca.crt")
        pip_cache = CACHE / "pip"
        pip_cache.mkdir(parents=True, exist_ok=True)
        env = {"PIP_CACHE_DIR": "/var/cache/hub-pip", "PIP_CERT": "/var/tmp/hub-install/ca.crt",
               "PIP_DEFAULT_TIMEOUT": "120", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        log("installing the hub with provisioning/install-hub.sh (as the image stage does)")
        run(["systemd-nspawn", "-q", "-D", str(merged), "--register=no", "--keep-unit",
             "--resolv-conf=copy-host", f"--bind={pip_cache}:/var/cache/hub-pip",
             *[f"--setenv={k}={v}" for k, v in env.items()],
             "sh", "/var/tmp/hub-install/install-hub.sh", "/var/tmp/hub-install"])
        shutil.rmtree(target)
        # The install leaves nothing of this machine behind: the resolver copy goes.
        (merged / "etc/resolv.conf").unlink(missing_ok=True)
    finally:
        umount(merged)
    return layer, base


def fat_boot_image(path: Path) -> int:
    """A small MBR image with one FAT partition, as a card's boot partition; return its offset."""
    run(["truncate", "-s", "40M", str(path)])
    run(["sfdisk", "-q", str(path)], input="label: dos\nstart=2048, type=c\n")
    start = 2048 * 512
    size_kb = (40 * 1024 * 1024 - start) // 1024
    run(["mkfs.vfat", "-F", "32", "-s", "1", "--offset", "2048", str(path), str(size_kb)])
    return start


class Appliance:
    """One booted hub: an overlay root, a network namespace, systemd-nspawn as its power switch."""

    def __init__(self, workdir: Path, layer: Path, base: Path, name: str = "hub",
                 settings: dict | None = None, data_image_mb: int | None = None, uplink: bool = False):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lowers = [layer, base]
        self.name = name
        n = os.getpid() % 50
        self.ns = f"{name}{os.getpid()}"
        self.phone_if, self.clerk_if = f"hp{os.getpid()}", f"hc{os.getpid()}"
        # Subnets of this run's own, so that runs side by side never meet.
        self.ap_address, self.phone_address = f"10.{150 + n}.0.1", f"10.{150 + n}.0.50"
        self.staff_address, self.clerk_address = f"10.{200 + n}.0.1", f"10.{200 + n}.0.50"
        # With *uplink*, eth1 is an uplink of its own (a 3G dongle, an office line), not the staff side.
        self.uplink = uplink
        self.uplink_if = f"hu{os.getpid()}"
        self.uplink_address, self.outside_address = f"10.{100 + n}.0.1", f"10.{100 + n}.0.50"
        self.upper = self.dir / "upper"
        self.root = self.dir / "root"
        self.settings = settings or {}
        self.data_image_mb = data_image_mb
        self.data_mount: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.console = self.dir / "console.log"
        self.boots = 0

    # --- set-up ---------------------------------------------------------------------------
    def hub_toml(self) -> str:
        values = {
            "hub_name": "ឃុំសាកល្បង", "wifi_interface": "wlan0", "staff_interface": "eth0",
            "uplink_interface": "eth1" if self.uplink else "eth0", "ap_address": self.ap_address,
            "staff_address": f"{self.staff_address}/24", "country_code": "KH",
            "dhcp_range_start": self.ap_address.rsplit(".", 1)[0] + ".100",
            "dhcp_range_end": self.ap_address.rsplit(".", 1)[0] + ".200",
            "amplifier_pin": "GPIO17", "status_led_pin": "GPIO27", "amplifier_warmup_seconds": 0.5,
            "button_pin": "GPIO22", "button_led_pin": "GPIO23",
            "audio_output_device": "hub_speaker", "audio_input_device": "hub_mic",
            "kiosk_output_device": "hub_speaker",
            **self.settings,
        }
        import tomli_w

        return tomli_w.dumps(values)

    def prepare(self) -> None:
        """Overlay root, first-boot files from ``hub provision``, network namespace."""
        mount_overlay(self.lowers, self.upper, self.root)
        config = self.dir / "hub.toml"
        config.write_text(self.hub_toml(), encoding="utf-8")
        img = self.dir / "boot.img"
        offset = fat_boot_image(img)
        hub = str(Path(sys.executable).with_name("hub"))
        run([hub, "provision", "--image", str(img), "--config", str(config), "--hostname", "commune-test",
             "--clerk", CLERK[0]], input=CLERK[1] + "\n")
        boot = self.root / "boot/firmware"
        boot.mkdir(parents=True, exist_ok=True)
        run(["mcopy", "-s", "-n", "-i", f"{img}@@{offset}", "::/hub", str(boot)],
            env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
        if self.data_image_mb:
            self._small_data_disk(self.data_image_mb)
        self._network()

    def _small_data_disk(self, mb: int) -> None:
        img = self.dir / "data.img"
        run(["truncate", "-s", f"{mb}M", str(img)])
        run(["mkfs.ext4", "-q", "-m", "0", "-N", "256", str(img)])
        self.data_mount = self.dir / "data"
        self.data_mount.mkdir(exist_ok=True)
        run(["mount", "-o", "loop", str(img), str(self.data_mount)])
        (self.data_mount / "lost+found").rmdir()

    def _network(self) -> None:
        """wlan0 (villagers) and eth0 (staff) inside the hub's namespace, each a veth pair whose
        other end is on this machine: the tests are the phone and the clerk's laptop."""
        run(["ip", "netns", "add", self.ns])
        run(["ip", "-n", self.ns, "link", "set", "lo", "up"])
        links = [("wlan0", self.phone_if, self.ap_address, self.phone_address),
                 ("eth0", self.clerk_if, self.staff_address, self.clerk_address)]
        if self.uplink:
            links.append(("eth1", self.uplink_if, self.uplink_address, self.outside_address))
        for inside, outside, hub_addr, peer_addr in links:
            run(["ip", "link", "add", outside, "type", "veth", "peer", "name", f"{outside}i"])
            run(["ip", "link", "set", f"{outside}i", "netns", self.ns, "name", inside])
            run(["ip", "-n", self.ns, "addr", "add", f"{hub_addr}/24", "dev", inside])
            run(["ip", "-n", self.ns, "link", "set", inside, "up"])
            run(["ip", "addr", "add", f"{peer_addr}/24", "dev", outside])
            run(["ip", "link", "set", outside, "up"])

    # --- power ----------------------------------------------------------------------------
    def boot(self, extra: list[str] | None = None, timeout: float = 120) -> None:
        """Switch on: systemd-nspawn boots the root; wait until systemd has finished starting."""
        binds = [f"--bind={self.data_mount}:/var/lib/hub"] if self.data_mount else []
        cmd = ["systemd-nspawn", "-q", "-D", str(self.root), "--boot", "--register=no", "--keep-unit",
               f"--network-namespace-path=/run/netns/{self.ns}", "--console=read-only",
               f"--machine={self.name}", "--capability=CAP_NET_ADMIN", *binds, *(extra or [])]
        self._log = open(self.console, "ab")  # noqa: SIM115 - closed in power_off
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.boots += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemError_(f"systemd-nspawn exited {self.proc.returncode}; see {self.console}")
            if self.pid1() is not None:
                r = self.sh("systemctl is-system-running --wait", check=False, timeout=timeout)
                if r.stdout.strip() in ("running", "degraded"):
                    return
            time.sleep(0.3)
        raise SystemError_(f"the appliance did not finish booting in {timeout} s; see {self.console}")

    def pid1(self) -> int | None:
        if self.proc is None:
            return None
        r = run(["pgrep", "-P", str(self.proc.pid), "-x", "systemd"], check=False)
        return int(r.stdout.split()[0]) if r.stdout.strip() else None

    def power_cut(self) -> None:
        """Every process of the appliance killed at once: the container's PID 1 gets SIGKILL,
        and the kernel kills the rest of its PID namespace with it. The disk cache is
        the host's and survives: this is a crash of every process, not a loss of power
        to the disk."""
        pid = self.pid1()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=60)
            self.proc = None
            self._log.close()

    def shutdown(self, timeout: float = 90) -> None:
        """A clean power-off through systemd."""
        if self.proc is None:
            return
        pid = self.pid1()
        if pid is not None:
            os.kill(pid, signal.SIGRTMIN + 4)  # systemd: poweroff
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.power_cut()
        self.proc = None
        self._log.close()

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            if self.proc is not None:
                self.power_cut()
        umount(self.root)
        if self.data_mount:
            umount(self.data_mount)
        run(["ip", "netns", "del", self.ns], check=False)
        for link in (self.phone_if, self.clerk_if, *([self.uplink_if] if self.uplink else [])):
            run(["ip", "link", "del", link], check=False)

    # --- inside ---------------------------------------------------------------------------
    def sh(self, script: str, check: bool = True, timeout: float = 60, user: str | None = None,
           input: str | None = None) -> subprocess.CompletedProcess:
        """Run *script* with sh inside the appliance (as *user*, or root)."""
        pid = self.pid1()
        if pid is None:
            raise SystemError_("the appliance is not running")
        cmd = ["nsenter", "-t", str(pid), "-a", "--"]
        if user:
            cmd += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
        return run([*cmd, "env", "-i", *[f"{k}={v}" for k, v in env.items()], "sh", "-c", script],
                   check=check, timeout=timeout, input=input)

    def hub(self, args: str, check: bool = True, timeout: float = 120, input: str | None = None,
            user: str | None = "hub"):
        """`hub ARGS` inside as a technician types it (`sudo -u hub hub ...`, or as root with user=None)."""
        return self.sh(f"cd /tmp && hub {args}", check=check, timeout=timeout, user=user, input=input)

    def unit(self, name: str, prop: str) -> str:
        return self.sh(f"systemctl show -P {prop} {name}").stdout.strip()

    def journal(self, unit: str) -> str:
        return self.sh(f"journalctl -q -o short-iso-precise --no-pager -u {unit}", check=False).stdout

    def drop_in(self, unit: str, name: str, text: str) -> None:
        """A unit drop-in, written before boot (or followed by daemon-reload)."""
        d = self.root / "etc/systemd/system" / f"{unit if '.' in unit else unit + '.service'}.d"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{name}.conf").write_text(text)

    def write(self, path: str, text: str | bytes, mode: int = 0o644, owner: str | None = None) -> Path:
        """Write a file into the appliance's root (running or not), owned by *owner* inside it."""
        p = self.root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
        p.chmod(mode)
        if owner:
            uid, gid = self.ids(owner)
            os.chown(p.parent, uid, gid)
            os.chown(p, uid, gid)
        return p

    def ids(self, user: str) -> tuple[int, int]:
        """The uid and gid of *user* in the appliance's own /etc/passwd."""
        for line in (self.root / "etc/passwd").read_text().splitlines():
            f = line.split(":")
            if f[0] == user:
                return int(f[2]), int(f[3])
        raise KeyError(user)

    # --- outside: a phone and a clerk -------------------------------------------------------
    @property
    def portal(self) -> str:
        """The villagers' side, as a phone on the hub's Wi-Fi reaches it."""
        return f"http://{self.ap_address}"

    @property
    def staff(self) -> str:
        """The staff side, as a clerk's laptop on the office LAN reaches it."""
        return f"http://{self.staff_address}"


#: ALSA devices of the same names the image's /etc/asound.conf defines, backed by files in
#: /var/lib/hub/test (the only place the units may write): the speaker's samples land in
#: speaker.raw (one numbered file per stream), the microphone reads silence.
ALSA_FILES = """\
pcm.hub_speaker {
    type file; slave.pcm { type null }; file "/var/lib/hub/test/speaker.raw"; format "raw"; truncate false
    hint { show on; description "test speaker (file)" }
}
pcm.hub_mic {
    type file; slave.pcm { type null }; file "/dev/null"; infile "/var/lib/hub/test/mic.raw"; format "raw"
    hint { show on; description "test microphone (file)" }
}
pcm.!default { type null }
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make appliance",
        description="Boot this checkout's hub as a Pi runs it (systemd, the hub user, nginx as www-data) "
                    "and print how to reach it. Ctrl-C powers it off.")
    parser.add_argument("--keep", action="store_true", help="leave the work folder behind")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("make appliance: needs root (mmdebstrap, mount, systemd-nspawn, ip netns)", file=sys.stderr)
        return 1
    # Ctrl-C or a plain kill powers the appliance off, even when started in the background.
    def power_off(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, power_off)
    signal.signal(signal.SIGTERM, power_off)
    work = Path(tempfile.mkdtemp(prefix="hub-appliance-"))
    app = None
    try:
        layer, base = installed_layer(work)
        app = Appliance(work / "a", layer, base, name="hubdev")
        app.prepare()
        app.boot()
        state = app.sh("systemctl is-system-running", check=False).stdout.strip()
        print(json.dumps({"system": state, "console_log": str(app.console)}))
        print(f"""
The appliance is up (systemd {state}).
  The villagers' portal, as a phone on its Wi-Fi:  {app.portal}/
  The clerk console, from the office LAN:          {app.staff}/clerk/
                                   (user {CLERK[0]!r}, password {CLERK[1]!r})
  Inside:     nsenter -t {app.pid1()} -a hub doctor
Ctrl-C powers it off.""")
        with contextlib.suppress(KeyboardInterrupt):
            app.proc.wait()
    finally:
        if app is not None:
            app.shutdown()
            app.destroy()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
