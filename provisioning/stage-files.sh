#!/bin/sh
# Gather what provisioning/install-hub.sh installs into one folder: the hub as a
# wheel, its systemd units, the first-boot script, the ALSA and journald settings,
# and the READMEs. The image build and the booted-appliance test both use it.
#
#   provisioning/stage-files.sh OUT_DIR
#
# Environment: PYTHON (default python3) builds the wheel.
set -eu
out=${1:?usage: stage-files.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
PYTHON=${PYTHON:-python3}

rm -rf "$out"
mkdir -p "$out/wheels" "$out/units"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$out/wheels" "$repo"
cp "$repo"/systemd/*.service "$repo"/systemd/*.timer "$repo"/systemd/*.target "$repo"/systemd/*.path "$out/units/"
# The central server's public release key, when given: `hub update` checks releases with it.
if [ -n "${HUB_RELEASE_KEY:-}" ]; then cp "$HUB_RELEASE_KEY" "$out/release-key.pub"; fi
cp "$here/firstboot/hub-firstboot.service" "$out/units/"
cp "$here/firstboot/hub-firstboot" "$out/hub-firstboot"
cp "$here/firstboot/hub-datapart" "$out/hub-datapart"
cp "$here/install-hub.sh" "$out/install-hub.sh"
cp "$here/files/journald-hub.conf" "$out/journald-hub.conf"
cp "$repo/audio/asound.conf" "$out/asound.conf"
cp "$repo/README.md" "$out/README.md"
cp "$here/README.md" "$out/provisioning-README.md"
