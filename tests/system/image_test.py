"""`make image-test`: the built SD-card image, booted under qemu-system-aarch64.

Two cards are made from the image (``make image``): card 1 is a copy
provisioned with ``hub provision --image``, card 2 is written by ``hub flash``
onto a loop device (the .img.xz checked against its .sha256, written, read
back, compared) and provisioned by it:

- read-write root: the first boot is cut (QEMU killed) right after its data
  partition step has copied the data; the next boot finishes first boot, the
  portal answers through a forwarded port, a villager's feedback is sent,
  ``hub doctor --json`` runs inside; a third boot keeps the feedback.
- read-only root (``--read-only-root``): first boot, then two boots with the
  root as an overlay in RAM: what they write to /etc is gone, the feedback
  on the data partition stays, and the boot and root partitions are
  byte-for-byte unchanged.

Inside, a probe unit of the test's own (written onto the card's root with
debugfs, started with ``systemd.wants=`` on the kernel command line) waits
for the portal, records the mounts and the services' states and runs
``hub doctor --json`` as the hub user onto the data partition, which the test
reads off the card after power-off. Run as root: ``make image-test``
(``IMAGE_TEST=--keep`` keeps the cards).
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from tests.system.conftest import csrf, receipt_of, session
from tests.system.qemu import BootError, Card, Pi, run

REPO = Path(__file__).resolve().parents[2]
HUB = str(Path(sys.executable).with_name("hub"))
CLERK = ("clerk", "correct horse battery")
PROBE_UNIT = "/etc/systemd/system/image-test-probe.service"
PROBE_SCRIPT = "/usr/local/sbin/image-test-probe"
PROBE = f"""# The image test's probe (tests/system/image_test.py); not part of the image.
[Unit]
Description=Image test probe: states and hub doctor --json onto the data partition
After=hub.target hub-web.service nginx.service hub-firstboot.service

[Service]
Type=oneshot
ExecStart=/bin/sh {PROBE_SCRIPT}
StandardOutput=journal+console
"""
DONE_MARK = "image-test: done with this boot"
PROBE_SH = r"""#!/bin/sh
# Waits for the portal, then writes what the image test reads onto the data partition.
MARK='@MARK@'
i=0
while [ $i -lt 900 ] && ! curl -fsS -o /dev/null http://127.0.0.1/; do i=$((i+1)); sleep 1; done
p=/var/lib/hub/image-test
mkdir -p $p
for m in / /var/lib/hub /media/root-ro; do findmnt -n -o TARGET,SOURCE,FSTYPE,OPTIONS -M $m; done > $p/mounts
# A boot counter on the root and one on the data partition.
n=$(cat /etc/image-test-boots 2>/dev/null || echo 0); echo $n > $p/etc-boots-before
echo $((n+1)) > /etc/image-test-boots
n=$(cat $p/boots 2>/dev/null || echo 0); echo $((n+1)) > $p/boots
systemctl --failed --no-legend --plain > $p/failed
for u in hub-web hub-announcer hub-recorder hub-transcriber hub-sync hub-migrate nginx hostapd dnsmasq nftables; do
  echo "$u $(systemctl show -p ActiveState --value $u) $(systemctl show -p NRestarts --value $u)"
done > $p/units
cat /etc/hub/release > $p/release
chown -R hub:hub $p
# As the daily check runs it: the hub user, the units' environment.
runuser -u hub -- env HUB_DATA_DIR=/var/lib/hub PATH=/opt/hub/venv/bin:/usr/bin:/bin \
  hub doctor --json > $p/doctor.json
echo $? > $p/doctor.exit
# The test's last request through the forwarded port is a feedback with this
# body: only then is it done with this boot (at most 15 minutes after this).
marks() {
  runuser -u hub -- python3 -c 'import sqlite3, sys
db = sqlite3.connect("file:/var/lib/hub/hub.db?mode=ro", uri=True)
print(db.execute("select count(*) from feedback where body = ?", (sys.argv[1],)).fetchone()[0])' "$MARK"
}
before=$(marks)
sync
echo IMAGE-TEST-PROBE-DONE
i=0
while [ $i -lt 900 ] && [ "$(marks)" = "$before" ]; do i=$((i+1)); sleep 1; done
echo "IMAGE-TEST-PROBE: the test is done after $i s; powering off"
# Switched off as a technician would.
systemctl poweroff --no-block
"""
HUB_TOML = """hub_name = "ឃុំសាកល្បង"
ssid = "Khum-Sakalbong"
wifi_interface = "wlan0"
staff_interface = "eth0"
uplink_interface = "eth0"
# QEMU's user network leases the guest 10.0.2.15/24 and forwards the test's port there:
# the office LAN's address, where nginx's staff block serves the portal and the console.
staff_address = "10.0.2.15/24"
country_code = "KH"
amplifier_pin = "GPIO17"
button_pin = "GPIO27"
button_led_pin = "GPIO22"
audio_output_device = "hub_speaker"
audio_input_device = "hub_mic"
"""
PROBE_CMDLINE = "systemd.wants=image-test-probe.service"


def say(text: str) -> None:
    print(f"image-test: {text}", flush=True)


class Failed(AssertionError):
    pass


def fstab_mounts(fstab: str, mount_point: str) -> list[str]:
    """The lines of *fstab* (comments aside) that mount something on *mount_point*."""
    return [line for line in fstab.splitlines()
            if not line.lstrip().startswith("#") and line.split()[1:2] == [mount_point]]


def check(ok: bool, what: str) -> None:
    if not ok:
        raise Failed(what)
    say(f"  ok: {what}")


def the_image(arg: str | None, work: Path) -> Path:
    img = Path(arg) if arg else REPO / "build/image/commune-hub.img"
    if img.suffix == ".xz" or (not img.exists() and img.with_suffix(".img.xz").exists()):
        xz = img if img.suffix == ".xz" else img.with_suffix(".img.xz")
        img = work / xz.name.removesuffix(".xz")
        with lzma.open(xz) as src, open(img, "wb") as dst:
            shutil.copyfileobj(src, dst, 8 << 20)
    if not img.exists():
        raise SystemExit(f"image-test: no image at {img}; run `make image` first")
    return img


def provision(card: Card, work: Path, *flags: str) -> None:
    """`hub provision --image` on a copy of the image, as for a card written by any tool."""
    config = work / "hub.toml"
    config.write_text(HUB_TOML, encoding="utf-8")
    run([HUB, "provision", "--image", card.path, "--config", config, "--hostname", "khum-test",
         "--clerk", CLERK[0], *flags], input=CLERK[1] + "\n")
    add_probe(card, work)


def add_probe(card: Card, work: Path) -> None:
    card.write_root_file(PROBE_UNIT, PROBE, work)
    card.write_root_file(PROBE_SCRIPT, PROBE_SH.replace("@MARK@", DONE_MARK), work)


def flash(image: Path, path: Path, work: Path, *flags: str, size_mb: int = 3072) -> Card:
    """`hub flash IMAGE DEV --config ...` onto a blank card in a loop device, as a technician
    writes one: the published .img.xz checked against its .sha256, written, read back and
    compared, then provisioned."""
    published = image.with_name(image.name.removesuffix(".xz").removesuffix(".img") + ".img.xz")
    source = published if published.exists() and Path(f"{published}.sha256").exists() else image
    run(["truncate", "-s", f"{size_mb}M", path])
    loop = run(["losetup", "--find", "--show", path]).stdout.strip()
    config = work / "hub.toml"
    config.write_text(HUB_TOML, encoding="utf-8")
    try:
        r = run([HUB, "flash", source, loop, "--yes", "--config", config, "--hostname", "khum-test",
                 "--clerk", CLERK[0], *flags], input=CLERK[1] + "\n")
    finally:
        run(["losetup", "-d", loop])
    lines = [ln.strip() for ln in re.split(r"[\r\n]+", r.stdout) if ln.strip() and "%" not in ln]
    for line in lines:
        say(f"  hub flash: {line}")
    check(any("written and verified" in ln for ln in lines),
          f"hub flash wrote {source.name} to {loop} and read it back")
    card = Card(None, path)
    add_probe(card, work)
    return card


def send_feedback(s, pi: Pi, name: str, category: str, body: str, patience: float = 600):
    """A villager's feedback, sent again while the hub answers that it is starting.

    From the second boot on, nginx serves the cached pages from the data partition
    before hub-web is up; a post then gets the hub's own 502 page, and a villager
    tries again."""
    deadline = time.monotonic() + patience
    while True:
        form = s.get(pi.url("/feedback"), timeout=60)
        if form.status_code in (502, 503, 504) and time.monotonic() < deadline:
            time.sleep(3)
            continue
        token = csrf(s, pi.url("/feedback"))
        r = s.post(pi.url("/feedback"), allow_redirects=False, timeout=120,
                   data={"csrf_token": token, "category": category, "body": body})
        if r.status_code not in (502, 503, 504) or time.monotonic() > deadline:
            return r
        say(f"  [{name}] feedback answered {r.status_code} after {pi.elapsed():.0f} s"
            " (the hub's 'starting' page); sent again")
        time.sleep(3)


def boot_and_probe(card: Card, work: Path, name: str, feedback: str | None = None) -> dict:
    """One power-on to power-off with the probe; returns timings and what it found."""
    out: dict = {}
    with Pi(card, work, name, PROBE_CMDLINE) as pi:
        s = session()
        first = login = None
        early: set[int] = set()
        deadline = time.monotonic() + 1500
        while time.monotonic() < deadline and (first is None or login is None):
            if login is None and re.search(r"login: ", pi.log()):
                login = pi.elapsed()
                say(f"  [{name}] booted (login prompt on the serial console) after {login:.0f} s")
            if first is None:
                try:
                    r = s.get(pi.url("/"), timeout=10)
                    if r.status_code != 200:
                        # nginx may be up before hub-web (a 502, shown as a 404 until the app
                        # has written its error pages once): not yet the portal.
                        if r.status_code not in early:
                            early.add(r.status_code)
                            say(f"  [{name}] HTTP {r.status_code} from nginx after {pi.elapsed():.0f} s"
                                " (hub-web not answering yet)")
                        raise OSError(f"HTTP {r.status_code}")
                    first = (pi.elapsed(), r.status_code, r.text)
                    title = re.search(r"<title>(.*?)</title>", r.text, re.S)
                    say(f"  [{name}] the portal first answered after {first[0]:.0f} s: HTTP {r.status_code}"
                        f" «{title.group(1).strip() if title else r.text[:100]}» ({len(r.text)} bytes)")
                    out["portal_body"] = r.text
                    if feedback is not None:
                        out["receipt"] = receipt_of(send_feedback(s, pi, name, "water", feedback))
                        say(f"  [{name}] a villager's feedback acknowledged, receipt {out['receipt']}")
                except OSError:
                    pass
            if pi.proc.poll() is not None:
                raise BootError(f"QEMU ended; console:\n{pi.tail()}")
            time.sleep(1)
        if first is None or login is None:
            raise BootError(f"no portal or no login prompt in time; console:\n{pi.tail()}")
        out["portal_s"], out["portal_status"], out["login_s"] = first[0], first[1], login
        startup = re.search(r"Startup finished in .*", pi.log())
        if startup:
            say(f"  [{name}] systemd: {startup.group(0).strip()}")
        out["probe_s"] = pi.wait_console(r"IMAGE-TEST-PROBE-DONE", 900)
        say(f"  [{name}] the probe (hub doctor --json) done after {out['probe_s']:.0f} s")
        # The probe powers off once this feedback is stored: the test's requests are over.
        r = send_feedback(s, pi, name, "other", DONE_MARK)
        check(r.status_code == 303, f"the test's last feedback acknowledged (HTTP {r.status_code})")
        out["shutdown_s"] = pi.shut_down()
        out["log"] = pi.tail(15)
        say(f"  [{name}] powered off {out['shutdown_s']:.0f} s later; {pi.elapsed():.0f} s on in all")
    return out | read_probe(card, work)


def read_probe(card: Card, work: Path) -> dict:
    files = {}
    for name in ("mounts", "etc-boots-before", "boots", "failed", "units", "release", "doctor.exit"):
        files[name] = card.read(3, f"/image-test/{name}").strip()
    files["doctor"] = json.loads(card.read(3, "/image-test/doctor.json"))
    return files


def stored_feedback(card: Card, work: Path) -> list[str]:
    db = work / "hub.db"
    for suffix in ("", "-wal"):
        Path(str(db) + suffix).unlink(missing_ok=True)
        try:
            card.copy_out(3, "/hub.db" + suffix, Path(str(db) + suffix))
        except BootError:
            pass
    with sqlite3.connect(db) as con:
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
        # Stored with zero-width spaces between Khmer words (hub.core.khmer.add_break_points).
        return [row[0].replace("\u200b", "") for row in con.execute("select body from feedback")]


def show_doctor(doc: dict) -> None:
    say(f"  hub doctor --json: ok={doc['ok']}")
    for c in doc["checks"]:
        say(f"    {c['status']:5} {c['id']:14} {c['detail'][:110]}")


def read_write_layout(image: Path, work: Path) -> None:
    say("card 1: read-write root")
    card = Card(image, work / "card-rw.img")
    provision(card, work)
    check("hub/hub.toml" in card.boot_listing() or "hub.toml" in card.boot_listing(),
          "hub provision --image wrote hub/ to the boot partition")
    say("  boot 1: first boot, cut off (QEMU killed) right after its data partition step copied the data")
    with Pi(card, work, "rw-boot1", "systemd.setenv=HUB_DATAPART_STOP_AFTER=copy") as pi:
        t = pi.wait_console(r"stopped after copy", 1200)
        pi.power_cut()
        say(f"  [rw-boot1] power cut {t:.0f} s after power-on")
    check(len(card.partitions()) == 3, "the card has its third partition")
    check("hub.toml" in card.boot_listing(), "the boot partition still has hub/ (first boot not done)")
    check(not fstab_mounts(card.read(2, "/etc/fstab"), "/var/lib/hub"), "fstab does not name the data partition yet")

    say("  boot 2: first boot again, to the end")
    b2 = boot_and_probe(card, work, "rw-boot2", feedback="ទឹកស្អាត image test")
    mounts = b2["mounts"].splitlines()
    say("  mounts: " + " | ".join(mounts))
    check(any(m.split()[0] == "/" and "/dev/vda2" in m and "ext4" in m for m in mounts), "/ is the card's ext4 root")
    data = [m for m in mounts if m.split()[0] == "/var/lib/hub"]
    check(bool(data) and "/dev/vda3" in data[0] and "noatime" in data[0], "/var/lib/hub is partition 3, noatime")
    fstab = card.read(2, "/etc/fstab")
    check("LABEL=hubdata\t/var/lib/hub\text4\tdefaults,noatime,commit=5" in fstab, "fstab names the data partition")
    check("hub.toml" not in card.boot_listing(), "first boot deleted hub/ from the boot partition")
    check("hub_name" in card.read(2, "/etc/hub/hub.toml"), "the configuration is in /etc/hub")
    check("hub.db" not in card.ext4(2, "ls -l /var/lib/hub"), "no data left on the root's /var/lib/hub")
    say(f"  /etc/hub/release: {b2['release']!r}")
    say(f"  units (state, restarts): {b2['units']!r}; failed: {b2['failed']!r}")
    show_doctor(b2["doctor"])
    by_id = {c["id"]: c for c in b2["doctor"]["checks"]}
    check(len(by_id) >= 10, f"doctor reported {len(by_id)} checks")
    check(all(by_id[c]["status"] == "ok" for c in ("config", "database", "disk")),
          "doctor: configuration, database and disk ok")
    # QEMU's virt machine has no Wi-Fi chip, sound card or GPIO: said so, not hidden.
    check(all(by_id[c]["status"] in ("warn", "fail") for c in ("access_point", "audio", "gpio") if c in by_id),
          "doctor: no access point, sound card or GPIO, and says so")
    stored = stored_feedback(card, work)
    check("ទឹកស្អាត image test" in stored, "the feedback is in the database on the data partition")

    say("  boot 3: the data stays")
    b3 = boot_and_probe(card, work, "rw-boot3")
    check(b3["boots"] == "2", "the data partition's boot counter went on (2)")
    check("ទឹកស្អាត image test" in stored_feedback(card, work), "the feedback is still there after a reboot")
    restarts = {ln.split()[0]: int(ln.split()[2] or 0) for ln in b3["units"].splitlines() if len(ln.split()) == 3}
    # hostapd has no Wi-Fi chip here: it fails and systemd gives up, as on a Pi without one.
    ours = {u: n for u, n in restarts.items() if u != "hostapd"}
    check(all(n == 0 for n in ours.values()), f"no hub service or nginx restarted ({ours})")
    check(all(ln.split()[1] == "active" for ln in b3["units"].splitlines() if ln.split()[0] in ours),
          "every hub service, nginx, dnsmasq and nftables active")
    say("  the boot log's last lines (boot 3):")
    for line in b3["log"].splitlines():
        say("    " + line)
    return {"boot2": b2, "boot3": b3}


def read_only_layout(image: Path, work: Path) -> dict:
    say("card 2: read-only root (hub flash onto a loop device, then provision --read-only-root)")
    card = flash(image, work / "card-ro.img", work, "--read-only-root")
    b1 = boot_and_probe(card, work, "ro-boot1")
    check(any(m.startswith("/ ") and "ext4" in m for m in b1["mounts"].splitlines()),
          "first boot has the root read-write (it writes it once)")
    check(card.read(2, "/etc/hub/readonly-root") != "", "first boot installed /etc/hub/readonly-root")
    before = (card.digest(1), card.digest(2))
    b2 = boot_and_probe(card, work, "ro-boot2", feedback="ភ្លើង read-only image test")
    say("  mounts: " + " | ".join(b2["mounts"].splitlines()))
    check(any(m.startswith("/ ") and "overlay" in m for m in b2["mounts"].splitlines()), "/ is the overlay")
    check(any(m.startswith("/media/root-ro ") and " ro," in m + "," for m in b2["mounts"].splitlines()),
          "the card's root is mounted read-only beneath it")
    b3 = boot_and_probe(card, work, "ro-boot3")
    check(b3["etc-boots-before"] == "1", "what boot 2 wrote to /etc is gone (only first boot's write stayed)")
    check(b3["boots"] == "3", "the data partition kept every boot's write (3)")
    check("ភ្លើង read-only image test" in stored_feedback(card, work), "the feedback survived the reboot")
    check((card.digest(1), card.digest(2)) == before,
          "the boot and root partitions are unchanged by two read-only boots (only the data partition is written)")
    show_doctor(b3["doctor"])
    return {"boot1": b1, "boot2": b2, "boot3": b3}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make image-test", description=__doc__.splitlines()[0])
    p.add_argument("--image", help="the image (default build/image/commune-hub.img)")
    p.add_argument("--keep", action="store_true", help="keep the cards and consoles")
    p.add_argument("--only", choices=("rw", "ro"), help="one layout only")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("make image-test: needs root (loop devices for debugfs)", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="hub-image-test-", dir="/var/tmp"))
    try:
        image = the_image(args.image, work)
        say(f"image {image} ({image.stat().st_size >> 20} MiB); work in {work}")
        if args.only != "ro":
            read_write_layout(image, work)
        if args.only != "rw":
            read_only_layout(image, work)
    except (AssertionError, BootError) as e:
        say(f"FAILED: {e}")
        say(f"consoles in {work}")
        args.keep = True
        return 1
    finally:
        say(f"total {time.monotonic() - t0:.0f} s")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    say("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
