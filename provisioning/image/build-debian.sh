#!/bin/bash
# `make image` without PIGEN_DIR: an arm64 SD-card image for the Raspberry Pi
# 3B+ and 4 from Debian packages alone (bookworm, with raspi-firmware and
# linux-image-arm64 from Debian), with the commune hub installed by
# provisioning/install-hub.sh. Nothing is loop-mounted: the root is made with
# mkfs.ext4 -d from a folder, the boot partition with mtools, and the two are
# put into place with sfdisk and dd.
#
# Output in build/image/: commune-hub.img, commune-hub.img.xz and its .sha256,
# and commune-hub.packages (dpkg-query -W of the image).
#
# Environment: HUB_READONLY_ROOT=1 (the read-only root), IMG_NAME (default
# commune-hub), HUB_IMAGE_OUT (default build/image), HUB_IMAGE_XZ (xz level,
# default 3), HUB_IMAGE_PACKAGES=FILE (fail unless the image's package list is
# exactly FILE, e.g. the .packages of an earlier build), and build-root.sh's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prov=$(dirname "$here")
repo=$(dirname "$prov")
name=${IMG_NAME:-commune-hub}
out=${HUB_IMAGE_OUT:-$repo/build/image}
CACHE=${HUB_IMAGE_CACHE:-/var/cache/commune-hub/image}
BOOT_MB=256
ROOT_FREE_MB=${HUB_IMAGE_ROOT_FREE_MB:-200}
# Fixed identifiers: the same build gives the same partition table and labels.
DISK_ID=0x48554231
say() { echo "build-image: $*" >&2; }
t0=$(date +%s)

if [ "$(id -u)" -ne 0 ]; then
	say "needs root (mmdebstrap, systemd-nspawn, file ownership in the image)"; exit 1
fi
for tool in mmdebstrap systemd-nspawn sfdisk mkfs.ext4 mkfs.vfat mcopy xz; do
	command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null \
		|| { say "$tool is missing (make image installs the image tools: run it through make)"; exit 1; }
done

root_cache=$("$here/build-root.sh")
mkdir -p "$out"
work=$out/work
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
root=$work/root
say "copying the cached root $(basename "$root_cache")"
cp -a --reflink=auto "$root_cache" "$root"

# --- the hub, by the same script as the booted-appliance test -------------------------
say "installing the hub with provisioning/install-hub.sh (emulated arm64 pip)"
"$prov/stage-files.sh" "$root/var/tmp/hub-install"
cp /etc/ssl/certs/ca-certificates.crt "$root/var/tmp/hub-install/ca.crt"
mkdir -p "$CACHE/pip"
systemd-nspawn -q -D "$root" --register=no --keep-unit --resolv-conf=copy-host \
	--bind="$CACHE/pip:/var/cache/hub-pip" \
	--setenv=PIP_CACHE_DIR=/var/cache/hub-pip --setenv=PIP_CERT=/var/tmp/hub-install/ca.crt \
	--setenv=PIP_DEFAULT_TIMEOUT=120 --setenv=PIP_DISABLE_PIP_VERSION_CHECK=1 \
	sh -c 'set -e
		# The gpio group before install-hub.sh, which adds the hub user to it.
		getent group gpio >/dev/null || groupadd --system gpio
		sh /var/tmp/hub-install/install-hub.sh /var/tmp/hub-install
		# gpiozero'"'"'s pin library: Raspberry Pi OS has python3-lgpio, Debian
		# has none; this one drives /dev/gpiochip* of the upstream kernel.
		/opt/hub/current/bin/pip install --quiet lgpio==0.2.2.0' >&2
# What only this image needs (Raspberry Pi OS brings its own).
cp -a "$here/files/." "$root/"
# The compilers go (build-only.list), and the files dpkg.cfg.d/hub-image
# leaves out of every later install.
say "removing the build-only packages and the files the hub never uses"
build_only=$(grep -v '^[[:space:]]*\(#\|$\)' "$here/build-only.list" | paste -sd' ')
systemd-nspawn -q -D "$root" --register=no --keep-unit sh -c "set -e
	DEBIAN_FRONTEND=noninteractive apt-get purge -y -q --auto-remove $build_only >/dev/null
	rm -f /usr/lib/*/dri/* /usr/lib/*/libLLVM-*.so* /usr/lib/*/libz3.so*
	# The access point's address on wlan0 comes from systemd-networkd (hub
	# netconfig writes its .network file); eth0 is ifupdown's. Nothing waits
	# for networkd to call the network online.
	systemctl enable systemd-networkd.service
	systemctl disable systemd-networkd-wait-online.service 2>/dev/null || true
	ffmpeg -hide_banner -loglevel error -f lavfi -i anullsrc=d=0.1 -f null -
	/opt/hub/current/bin/python -c 'import pyaudio, vosk, lgpio'
	hub --help >/dev/null" >&2
rm -rf "$root/var/tmp/hub-install" "$root/etc/resolv.conf" "$root/root/.cache"
# The kernel's modules compressed as kmod reads them (+XZ; the kernel's own
# convention of CRC32 and a 1 MiB dictionary), by this machine's xz, then
# depmod again: about 290 MB becomes about 80, and no driver is left out.
# The initramfs keeps its own copies; a later kernel package brings its own.
kver=$(ls "$root/usr/lib/modules")
say "compressing the kernel's modules ($(find "$root/usr/lib/modules" -name '*.ko' | wc -l) files, $(du -sm "$root/usr/lib/modules" | cut -f1) MiB)"
find "$root/usr/lib/modules" -name '*.ko' -print0 | xargs -0 -r -P "$(nproc)" -n 64 xz -q --check=crc32 --lzma2=dict=1MiB
systemd-nspawn -q -D "$root" --register=no --keep-unit depmod -a "$kver" >&2
grep -q '\.ko\.xz:' "$root/usr/lib/modules/$kver/modules.dep" || { say "depmod did not list the compressed modules"; exit 1; }
say "the kernel's modules: $(du -sm "$root/usr/lib/modules" | cut -f1) MiB"

# --- what this image is ---------------------------------------------------------------
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -n1)
commit=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
git -C "$repo" diff --quiet HEAD -- 2>/dev/null || commit="$commit-modified"
built=$(git -C "$repo" log -1 --format=%cI 2>/dev/null || date -u +%FT%TZ)
chroot "$root" dpkg-query -W > "$work/packages"
install -d -m 0755 "$root/etc/hub"
cat > "$root/etc/hub/release" <<RELEASE
# The commune hub image (provisioning/image/build-debian.sh).
version=$version
commit=$commit
commit_date=$built
image=debian-bookworm-arm64
boards=Raspberry Pi 3B+, Raspberry Pi 4
debian_root=$(basename "$root_cache")
packages=$(wc -l < "$work/packages") (/opt/hub/image-packages.txt)
readonly_root=${HUB_READONLY_ROOT:-0}
RELEASE
install -m 0644 "$work/packages" "$root/opt/hub/image-packages.txt"
if [ "${HUB_READONLY_ROOT:-0}" = 1 ]; then
	echo "the root is read-only after first boot (provisioning/README.md)" > "$root/etc/hub/readonly-root"
fi
# The image's packages are the cached root's, less the build-only ones.
if comm -13 <(LC_ALL=C sort "$root_cache.packages") <(LC_ALL=C sort "$work/packages") | grep -q .; then
	say "the hub's install added Debian packages:"
	comm -13 <(LC_ALL=C sort "$root_cache.packages") <(LC_ALL=C sort "$work/packages") >&2
	exit 1
fi
if [ -n "${HUB_IMAGE_PACKAGES:-}" ]; then
	if ! diff "$HUB_IMAGE_PACKAGES" "$work/packages" >&2; then
		say "the package list differs from $HUB_IMAGE_PACKAGES (above)"; exit 1
	fi
	say "the package list is the same as $HUB_IMAGE_PACKAGES"
fi
# Left for every card to make for itself.
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root/var/lib/systemd/random-seed"
find "$root/var/log" -type f -delete
rm -rf "$root/tmp/"* "$root/var/tmp/"* "$root/var/cache/apt/"*.bin

# --- the boot partition (FAT32, mtools) -----------------------------------------------
say "boot partition: $(ls "$root/boot/firmware" | wc -l) files"
grep -q '^kernel=vmlinuz' "$root/boot/firmware/config.txt" || { say "no kernel in config.txt"; exit 1; }
mkfs.vfat -F 32 -n HUBBOOT -i 48554231 -C "$work/boot.fat" $((BOOT_MB * 1024)) >/dev/null
MTOOLS_SKIP_CHECK=1 mcopy -s -m -i "$work/boot.fat" "$root/boot/firmware/"* ::/
find "$root/boot/firmware" -mindepth 1 -delete

# --- the root partition (ext4 from the folder) ----------------------------------------
used_mb=$(du -sm "$root" | cut -f1)
say "the root's largest parts (MiB): $(du -sm "$root"/usr/lib/aarch64-linux-gnu "$root"/usr/lib/modules \
	"$root"/opt/hub "$root"/usr/lib/python3* "$root"/usr/share "$root"/usr/lib/firmware 2>/dev/null \
	| sort -rn | sed "s|$root||" | awk '{printf "%s %s; ", $2, $1}')"
root_mb=$(( used_mb * 110 / 100 + ROOT_FREE_MB ))
mkfs.ext4 -q -L hubroot -U 48554231-0000-4000-8000-000000000002 -m 2 \
	-E root_owner=0:0 -d "$root" "$work/root.ext4" "${root_mb}M"

# --- the card ---------------------------------------------------------------------------
img=$out/$name.img
boot_start=8192                       # 4 MiB, an erase-block boundary
root_start=$(( boot_start + BOOT_MB * 2048 ))
total=$(( root_start + root_mb * 2048 ))
rm -f "$img" "$img.xz" "$img.xz.sha256"
truncate -s $(( total * 512 )) "$img"
sfdisk -q "$img" <<TABLE
label: dos
label-id: $DISK_ID
start=$boot_start, size=$(( BOOT_MB * 2048 )), type=c, bootable
start=$root_start, size=$(( root_mb * 2048 )), type=83
TABLE
dd if="$work/boot.fat" of="$img" bs=1M seek=4 conv=notrunc,sparse status=none
dd if="$work/root.ext4" of="$img" bs=1M seek=$(( root_start / 2048 )) conv=notrunc,sparse status=none
cp "$work/packages" "$out/$name.packages"
say "compressing (xz -${HUB_IMAGE_XZ:-3})"
xz -T2 -"${HUB_IMAGE_XZ:-3}" -k -f "$img"
(cd "$out" && sha256sum "$name.img.xz" > "$name.img.xz.sha256")
size=$(stat -c %s "$img"); xsize=$(stat -c %s "$img.xz")
say "$img: $(( size / 1048576 )) MiB uncompressed ($used_mb MiB of files, root partition $root_mb MiB)"
say "$img.xz: $(( xsize / 1048576 )) MiB compressed; sha256 in $name.img.xz.sha256"
say "hub $version, commit $commit; $(wc -l < "$out/$name.packages") Debian packages ($name.packages)"
say "done in $(( $(date +%s) - t0 )) s; next: hub flash $img.xz /dev/sdX, then hub provision"
