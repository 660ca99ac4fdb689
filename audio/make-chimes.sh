#!/bin/sh
# Make the loudspeaker chimes in this folder, repeatably (sox -R: no dither noise).
# Both are 48 kHz mono 16-bit WAV, the format the announcer plays, about 0.7 s long.
#   chime-start.wav: two rising notes (G5, C6), "please listen"
#   chime-end.wav:   the same notes falling (C6, G5), "that was all"
set -eu
cd "$(dirname "$0")"
note() {  # note FREQ FILE: a bell-like tone with a quick attack and a long fade
    sox -R -n -r 48000 -c 1 -b 16 -e signed-integer "$2" \
        synth 0.35 sine "$1" sine "$(($1 * 2))" remix - fade q 0.01 0.35 0.28 vol 0.35
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
note 784 "$tmp/g.wav"
note 1047 "$tmp/c.wav"
sox -R "$tmp/g.wav" "$tmp/c.wav" chime-start.wav
sox -R "$tmp/c.wav" "$tmp/g.wav" chime-end.wav
