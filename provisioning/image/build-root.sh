#!/bin/bash
# The Debian arm64 root of the commune hub image, built with mmdebstrap (under
# qemu-user-static where this machine is not arm64) and kept in a cache keyed
# by everything that goes into it: the package lists, this script, the files
# in rootfs/ and the archive. The hub itself is installed later, above a copy.
#
#   provisioning/image/build-root.sh        # prints the cached root's path
#
# Environment: HUB_IMAGE_CACHE (default /var/cache/commune-hub/image),
# HUB_IMAGE_SNAPSHOT=20261201T000000Z to build from snapshot.debian.org at that
# time (the same packages every time), HUB_IMAGE_MIRROR (default deb.debian.org).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prov=$(dirname "$here")
CACHE=${HUB_IMAGE_CACHE:-/var/cache/commune-hub/image}
SUITE=bookworm
COMPONENTS="main non-free-firmware"
say() { echo "build-root: $*" >&2; }

if [ -n "${HUB_IMAGE_SNAPSHOT:-}" ]; then
	debian="http://snapshot.debian.org/archive/debian/$HUB_IMAGE_SNAPSHOT"
	security="http://snapshot.debian.org/archive/debian-security/$HUB_IMAGE_SNAPSHOT"
	opts="[check-valid-until=no] "
else
	debian=${HUB_IMAGE_MIRROR:-http://deb.debian.org/debian}
	security=${HUB_IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
	opts=""
fi
sources="deb ${opts}$debian $SUITE $COMPONENTS
deb ${opts}$debian $SUITE-updates $COMPONENTS
deb ${opts}$security $SUITE-security $COMPONENTS"

packages() { grep -hv '^[[:space:]]*\(#\|$\)' "$prov/packages.list" "$prov/packages-debian.list" | tr -d ' \t'; }

key=$( {
	echo "$SUITE arm64"; echo "$sources"; packages; echo "--"
	cat "$0"
	(cd "$here/rootfs" && find . -type f | LC_ALL=C sort | while read -r f; do
		stat -c '%n %a' "$f"; cat "$f"; done)
} | sha256sum | cut -c1-16)
root=$CACHE/root-arm64-$key
if [ -f "$root/etc/os-release" ] && [ -f "$root.packages" ]; then
	say "cached: $root"
	echo "$root"; exit 0
fi

# Foreign binaries run through qemu-user-static.
if [ "$(dpkg --print-architecture)" != arm64 ]; then
	[ -d /proc/sys/fs/binfmt_misc ] && { mountpoint -q /proc/sys/fs/binfmt_misc \
		|| mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; }
	update-binfmts --enable qemu-aarch64 2>/dev/null || true
	if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
		say "qemu-aarch64 is not registered with binfmt_misc (apt-get install qemu-user-static binfmt-support)"
		exit 1
	fi
fi

mkdir -p "$CACHE"
tmp=$CACHE/.building-$key-$$
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
say "building a Debian $SUITE arm64 root into $root (once per package list; emulated, 15-30 minutes)"
start=$(date +%s)
# Documentation, manuals and other languages' messages stay out (copyright
# files stay); no Recommends: the lists name everything the hub needs.
# rootfs/ goes in before the kernel (the essential hook), so that the one
# initramfs its installation makes already holds the hub's hooks and
# scripts; raspi-firmware's settings (a conffile of it) and the rest again at
# the end, then its hook writes config.txt and cmdline.txt with them.
mmdebstrap --architectures=arm64 --variant=minbase \
	--aptopt='APT::Install-Recommends "false"' \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--dpkgopt='path-exclude=/usr/share/lintian/*' \
	--include="$(packages | paste -sd,)" \
	--setup-hook='mkdir -p "$1/boot/firmware"' \
	--essential-hook="cp -a '$here/rootfs/.' \"\$1/\" && rm \"\$1/etc/default/raspi-firmware\"" \
	--customize-hook="cp -a '$here/rootfs/.' \"\$1/\"" \
	--customize-hook='chroot "$1" ln -sf /usr/share/zoneinfo/Asia/Phnom_Penh /etc/localtime' \
	--customize-hook='echo Asia/Phnom_Penh > "$1/etc/timezone"' \
	--customize-hook='DEB_MAINT_PARAMS=configure chroot "$1" /etc/kernel/postinst.d/z50-raspi-firmware' \
	--customize-hook='chroot "$1" lsinitramfs /boot/initrd.img-* > "$1/.initramfs"; grep -q hub-overlay "$1/.initramfs"; rm "$1/.initramfs"' \
	--customize-hook='chroot "$1" systemctl disable ssh.service' \
	--customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
	--customize-hook='chroot "$1" dpkg-query -W > "$1/.packages"' \
	"$SUITE" "$tmp" - <<<"$sources" >&2
mv "$tmp/.packages" "$tmp.packages"
if [ -f "$root.packages-previous" ] && ! cmp -s "$root.packages-previous" "$tmp.packages"; then
	say "the archive moved since this key was last built; package changes:"
	diff "$root.packages-previous" "$tmp.packages" >&2 || true
fi
rm -rf "$root"
mv "$tmp" "$root"
mv "$tmp.packages" "$root.packages"
trap - EXIT
say "built in $(( $(date +%s) - start )) s: $(wc -l < "$root.packages") packages, $(du -sh "$root" | cut -f1)"
echo "$root"
