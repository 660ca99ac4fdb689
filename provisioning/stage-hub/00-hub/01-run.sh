#!/bin/bash -e
# pi-gen substage: install the commune hub into /opt/hub/venv, its systemd units,
# the first-boot service, and the power-cut and SD-wear settings.
# build-image.sh puts the hub's wheel and units into files/ before pi-gen runs.

install -d "${ROOTFS_DIR}/opt/hub/wheels" "${ROOTFS_DIR}/opt/hub/provisioning"
install -m 644 files/wheels/*.whl "${ROOTFS_DIR}/opt/hub/wheels/"
install -m 644 files/README.md "${ROOTFS_DIR}/opt/hub/README.md"
install -m 644 files/provisioning-README.md "${ROOTFS_DIR}/opt/hub/provisioning/README.md"

# systemd units: the daemons, hub.target, the doctor timer, and first boot.
install -m 644 files/units/* "${ROOTFS_DIR}/etc/systemd/system/"
install -m 755 files/hub-firstboot "${ROOTFS_DIR}/usr/local/sbin/hub-firstboot"

# ALSA names for the loudspeaker and the kiosk microphone (hub_speaker, hub_mic).
install -m 644 files/asound.conf "${ROOTFS_DIR}/etc/asound.conf"

# A capped journal in RAM.
install -d "${ROOTFS_DIR}/etc/systemd/journald.conf.d"
install -m 644 files/journald-hub.conf "${ROOTFS_DIR}/etc/systemd/journald.conf.d/hub.conf"

# noatime on every ext4 and vfat mount: a read must not cause a write.
sed -i -E '/^[^#].*[[:space:]](ext4|vfat)[[:space:]]/{/noatime/! s/([[:space:]](ext4|vfat)[[:space:]]+)([^[:space:]]+)/\1\3,noatime/}' \
	"${ROOTFS_DIR}/etc/fstab"

on_chroot << CHROOT_EOF
set -e
# The venv sees Debian's python3-lgpio, which gpiozero uses on every Pi model.
python3 -m venv --system-site-packages /opt/hub/venv
/opt/hub/venv/bin/pip install --no-cache-dir --upgrade pip
/opt/hub/venv/bin/pip install --no-cache-dir /opt/hub/wheels/*.whl
ln -sf /opt/hub/venv/bin/hub /usr/local/bin/hub

id hub >/dev/null 2>&1 || useradd --system --home-dir /var/lib/hub --no-create-home \
	--shell /usr/sbin/nologin --user-group --groups audio,gpio hub
install -d -o hub -g hub -m 0750 /var/lib/hub
# nginx serves media files from /var/lib/hub/media through the hub group.
usermod -a -G hub www-data

# The clock: fake-hwclock restores the last saved time at boot (no RTC on a Pi).
systemctl enable fake-hwclock.service
# hostapd and dnsmasq start only once first boot has written their configuration.
systemctl disable hostapd.service dnsmasq.service || true
systemctl enable hub-firstboot.service
CHROOT_EOF

if [ "${HUB_READONLY_ROOT:-0}" = "1" ]; then
	# Optional read-only root: an overlay in RAM over the SD card. The hub's data
	# must then live on its own partition, mounted at /var/lib/hub
	# (see provisioning/README.md, "Read-only root").
	on_chroot << CHROOT_EOF
raspi-config nonint do_overlayfs 0
CHROOT_EOF
fi
