"""Files shipped with the hub: chimes, spoken prompts, demo audio.

In a checkout they are the repository's ``audio/`` folder; an installed hub
(the SD-card image installs a wheel into /opt/hub/venv) has them under the
venv's ``share/hub/audio``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_CHECKOUT_AUDIO = Path(__file__).resolve().parents[2] / "audio"


def audio_dir() -> Path:
    if _CHECKOUT_AUDIO.is_dir():
        return _CHECKOUT_AUDIO
    return Path(sys.prefix) / "share" / "hub" / "audio"
