"""What a speech engine is to the hub: the interface, what it hears, and the errors it raises.

An engine class is built with a model directory (``Engine(model_dir)``), names
itself (``name``) and its model (``model_name``), and says of a directory whether
it holds a model it can load (``model_problem``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hub.core.errors import HubError

#: What `hub model install` writes beside a model: where it came from and when.
MODEL_META = "hub-model.json"


class ModelError(HubError):
    """A speech model is missing or not usable."""


@dataclass
class Result:
    """What an engine heard: the text, and each word with start/end seconds and confidence."""

    text: str
    words: list[dict] = field(default_factory=list)
    audio_seconds: float = 0.0

    @property
    def confidence(self) -> float | None:
        if not self.words:
            return None
        return round(sum(w.get("conf", 0.0) for w in self.words) / len(self.words), 3)


class Engine(Protocol):
    """What the transcriber needs from a speech recogniser."""

    name: str
    model_name: str

    def __init__(self, model_dir: Path) -> None:
        """Load the model in *model_dir*; raise ModelError when it cannot."""
        ...

    @staticmethod
    def model_problem(path: Path) -> str | None:
        """Why *path* is not a model this engine can load, or None when it looks like one."""
        ...

    def transcribe_pcm(self, pcm: bytes, grammar: list[str] | None = None,
                       progress: Callable[[], bool] | None = None) -> Result:
        """Recognise 16 kHz mono 16-bit PCM. *progress* is called between chunks;
        returning False abandons the job (the daemon is stopping)."""
        ...


class Abandoned(Exception):
    """A transcription stopped because the daemon is quitting; the job stays pending."""


def model_label(path: Path) -> str:
    """A short name for a model: the archive or folder it was installed from, else its folder."""
    meta = Path(path) / MODEL_META
    try:
        return json.loads(meta.read_text(encoding="utf-8"))["source"]
    except (OSError, ValueError, KeyError):
        real = Path(path).resolve()
        return f"{real.parent.name}/{real.name}" if real.name == "model" else real.name
