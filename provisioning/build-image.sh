#!/bin/bash
# `make image`: the commune hub's SD-card image.
#
#   make image                          # Debian arm64 image (Pi 3B+, 4): provisioning/image/
#   PIGEN_DIR=/path/to/pi-gen make image  # Raspberry Pi OS Lite image (Pi 3B+, 4, 5) with pi-gen
#
# Both install the packages of packages.list and the hub with install-hub.sh;
# see provisioning/README.md. The pi-gen build uses
# https://github.com/RPi-Distro/pi-gen (branch bookworm-arm64), root (or Docker)
# and Raspberry Pi's package archive.
#
# Environment: PIGEN_DIR, USE_DOCKER=1 to run pi-gen's build-docker.sh,
# HUB_READONLY_ROOT=1 for the optional read-only root, IMG_NAME (default commune-hub).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

if [ -z "${PIGEN_DIR:-}" ]; then
	exec "$here/image/build-debian.sh"
fi
if [ ! -x "${PIGEN_DIR}/build.sh" ]; then
	echo "build-image: PIGEN_DIR=$PIGEN_DIR is not a pi-gen checkout (git clone -b bookworm-arm64 https://github.com/RPi-Distro/pi-gen), or leave it unset for the Debian image" >&2
	exit 1
fi
PIGEN_DIR=$(cd "$PIGEN_DIR" && pwd)

stage="$PIGEN_DIR/stage-hub"
rm -rf "$stage"
cp -a "$here/stage-hub" "$stage"
# One package list for the image and the booted-appliance test, plus the
# packages only Raspberry Pi OS has.
grep -hv '^[[:space:]]*\(#\|$\)' "$here/packages.list" "$here/packages-raspios.list" > "$stage/00-hub/00-packages"
# The wheel, units and settings that install-hub.sh installs.
"$here/stage-files.sh" "$stage/00-hub/files"

config="$PIGEN_DIR/config-hub"
cat > "$config" <<CONFIG
IMG_NAME=${IMG_NAME:-commune-hub}
RELEASE=bookworm
TARGET_HOSTNAME=commune-hub
LOCALE_DEFAULT=en_GB.UTF-8
TIMEZONE_DEFAULT=Asia/Phnom_Penh
KEYBOARD_KEYMAP=us
WPA_COUNTRY=KH
ENABLE_SSH=0
STAGE_LIST="stage0 stage1 stage2 stage-hub"
export HUB_READONLY_ROOT=${HUB_READONLY_ROOT:-0}
CONFIG
# Only the finished image, not the intermediate Lite one.
touch "$PIGEN_DIR/stage2/SKIP_IMAGES"

cd "$PIGEN_DIR"
if [ "${USE_DOCKER:-0}" = "1" ]; then
	./build-docker.sh -c "$config"
else
	./build.sh -c "$config"
fi
mkdir -p "$repo/build/image"
cp -v "$PIGEN_DIR"/deploy/*hub* "$repo/build/image/"
echo "build-image: image in $repo/build/image/; next: hub flash IMAGE /dev/sdX, then hub provision"
