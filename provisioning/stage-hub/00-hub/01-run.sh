#!/bin/bash -e
# pi-gen substage: install the commune hub with provisioning/install-hub.sh, the
# same script the booted-appliance test runs. build-image.sh stages its files
# (provisioning/stage-files.sh) into files/ before pi-gen runs.

rm -rf "${ROOTFS_DIR}/tmp/hub-install"
cp -a files "${ROOTFS_DIR}/tmp/hub-install"

on_chroot << CHROOT_EOF
set -e
PIP_NO_CACHE_DIR=1 sh /tmp/hub-install/install-hub.sh /tmp/hub-install
rm -rf /tmp/hub-install
CHROOT_EOF

if [ "${HUB_READONLY_ROOT:-0}" = "1" ]; then
	# Optional read-only root: an overlay in RAM over the SD card. The hub's data
	# must then live on its own partition, mounted at /var/lib/hub
	# (see provisioning/README.md, "Read-only root").
	on_chroot << CHROOT_EOF
raspi-config nonint do_overlayfs 0
CHROOT_EOF
fi
