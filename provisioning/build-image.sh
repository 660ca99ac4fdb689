#!/bin/bash
# `make image`: build a Raspberry Pi OS Lite image with the commune hub installed,
# using pi-gen (https://github.com/RPi-Distro/pi-gen, branch bookworm-arm64 or
# bookworm). pi-gen needs root (or Docker) and a Debian machine; see
# provisioning/README.md.
#
#   PIGEN_DIR=/path/to/pi-gen make image
#
# Environment: PIGEN_DIR (required), USE_DOCKER=1 to run pi-gen's build-docker.sh,
# HUB_READONLY_ROOT=1 for the optional read-only root, IMG_NAME (default commune-hub).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

if [ -z "${PIGEN_DIR:-}" ] || [ ! -x "${PIGEN_DIR}/build.sh" ]; then
	echo "build-image: set PIGEN_DIR to a pi-gen checkout (git clone -b bookworm-arm64 https://github.com/RPi-Distro/pi-gen)" >&2
	exit 1
fi
PIGEN_DIR=$(cd "$PIGEN_DIR" && pwd)

stage="$PIGEN_DIR/stage-hub"
files="$stage/00-hub/files"
rm -rf "$stage"
cp -a "$here/stage-hub" "$stage"
install -d "$files/wheels" "$files/units"

# The hub as one wheel, installed into /opt/hub/venv inside the image.
python3 -m pip wheel --quiet --no-deps --wheel-dir "$files/wheels" "$repo"
cp "$repo"/systemd/*.service "$repo"/systemd/*.timer "$repo"/systemd/*.target "$files/units/"
cp "$here/firstboot/hub-firstboot.service" "$files/units/"
cp "$here/firstboot/hub-firstboot" "$files/hub-firstboot"
cp "$repo/audio/asound.conf" "$files/asound.conf"
cp "$repo/README.md" "$files/README.md"
cp "$here/README.md" "$files/provisioning-README.md"

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
