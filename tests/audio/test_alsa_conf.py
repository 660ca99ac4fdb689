"""The ALSA configuration the image installs is read by ALSA itself."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import ROOT, need


def listed(tool: str, conf) -> str:
    env = {**os.environ, "ALSA_CONFIG_PATH": str(conf)}
    return subprocess.run([tool, "-L"], capture_output=True, text=True, env=env).stdout


def test_hub_names_are_defined_for_playback_and_capture(tmp_path):
    need("aplay")
    conf = tmp_path / "alsa.conf"
    conf.write_text(f"</usr/share/alsa/alsa.conf>\n<{ROOT / 'audio' / 'asound.conf'}>\n")
    assert "hub_speaker" in listed("aplay", conf)
    assert "hub_mic" in listed("arecord", conf)
    broken = tmp_path / "broken.conf"
    broken.write_text((ROOT / "audio" / "asound.conf").read_text().replace("pcm.hub_mic {", "pcm.hub_mic {{"))
    conf.write_text(f"</usr/share/alsa/alsa.conf>\n<{broken}>\n")
    assert "hub_mic" not in listed("arecord", conf)
