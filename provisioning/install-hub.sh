#!/bin/sh
# Install the commune hub into the system this runs in: the wheel into a venv
# of its own, /opt/hub/releases/VERSION, with /opt/hub/current a symlink to it
# (what the units run; `hub update` installs the next release beside it and
# switches the symlink), the systemd units, the first-boot service, the hub user, and
# the power-cut and SD-wear settings. Run it as root inside the target root (a
# chroot, or pi-gen's on_chroot), with the folder that stage-files.sh made:
#
#   sh /path/to/staged/install-hub.sh /path/to/staged
#
# The image stage and the booted-appliance test both run this script, so what
# the test boots is what a card carries. pip is configured by the caller's
# environment (PIP_NO_CACHE_DIR for an image, a cache for tests).
set -eu
SRC=${1:?usage: install-hub.sh STAGED_DIR}

install -d /opt/hub/wheels /opt/hub/provisioning
rm -f /opt/hub/wheels/*.whl
install -m 644 "$SRC"/wheels/*.whl /opt/hub/wheels/
install -m 644 "$SRC/README.md" /opt/hub/README.md
install -m 644 "$SRC/provisioning-README.md" /opt/hub/provisioning/README.md

# systemd units: the daemons, hub.target, the doctor timer, and first boot.
install -m 644 "$SRC"/units/* /etc/systemd/system/
install -m 755 "$SRC/hub-firstboot" /usr/local/sbin/hub-firstboot
install -m 755 "$SRC/hub-datapart" /usr/local/sbin/hub-datapart

# ALSA names for the loudspeaker and the kiosk microphone (hub_speaker, hub_mic).
install -m 644 "$SRC/asound.conf" /etc/asound.conf

# A capped journal in RAM.
install -d /etc/systemd/journald.conf.d
install -m 644 "$SRC/journald-hub.conf" /etc/systemd/journald.conf.d/hub.conf

# noatime on every ext4 and vfat mount: a read must not cause a write.
if [ -f /etc/fstab ]; then
	sed -i -E '/^[^#].*[[:space:]](ext4|vfat)[[:space:]]/{/noatime/! s/([[:space:]](ext4|vfat)[[:space:]]+)([^[:space:]]+)/\1\3,noatime/}' /etc/fstab
fi

# The venv also sees Debian's packages (python3-lgpio on Raspberry Pi OS, which
# gpiozero uses on every Pi model).
wheel=$(ls /opt/hub/wheels/commune_hub-*.whl | head -n 1)
version=$(basename "$wheel" | cut -d- -f2)
release=/opt/hub/releases/$version
install -d /opt/hub/releases
[ -x "$release/bin/python" ] || python3 -m venv --system-site-packages "$release"
"$release/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"
"$release/bin/pip" install --quiet --disable-pip-version-check "$wheel"
echo "$version" > "$release/.complete"
ln -sfn "releases/$version" /opt/hub/.current.new
mv -T /opt/hub/.current.new /opt/hub/current
# The name earlier images used, for a technician's muscle memory.
[ -e /opt/hub/venv ] && [ ! -L /opt/hub/venv ] || ln -sfn current /opt/hub/venv
ln -sf /opt/hub/current/bin/hub /usr/local/bin/hub
# The central server's public release key: `hub update` accepts only releases signed with its private half.
if [ -f "$SRC/release-key.pub" ]; then
	install -d /etc/hub
	install -m 644 "$SRC/release-key.pub" /etc/hub/release-key.pub
fi

# The hub user. Its groups are whichever of audio (sound cards), gpio (the
# relay, LED and button; Raspberry Pi OS has it) and systemd-journal (hub-sync
# reads the hub's units' journal for a diagnostics bundle) this system has: the
# units do not name groups, so a system without one still starts every daemon.
if ! id hub >/dev/null 2>&1; then
	useradd --system --home-dir /var/lib/hub --no-create-home --shell /usr/sbin/nologin --user-group hub
fi
for g in audio gpio systemd-journal; do
	getent group "$g" >/dev/null && usermod -a -G "$g" hub
done
install -d -o hub -g hub -m 0750 /var/lib/hub
# nginx serves media files from /var/lib/hub/media through the hub group.
if id www-data >/dev/null 2>&1; then usermod -a -G hub www-data; fi

# The clock: fake-hwclock restores the last saved time at boot (no RTC on a Pi).
systemctl enable fake-hwclock.service
# hostapd and dnsmasq start only once first boot has written their configuration.
systemctl disable hostapd.service dnsmasq.service 2>/dev/null || true
systemctl enable hub-firstboot.service
# Updates: finish or undo an interrupted one at boot; install what sync downloaded.
systemctl enable hub-update-recover.service hub-update.path
