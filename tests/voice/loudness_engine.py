"""A second speech engine, as a test defines one: one file, and one line in hub.voice.engines.ENGINES.

It "hears" how loud each quarter second is, from a model directory that holds
only the word it answers with; enough to be a real engine the hub loads by name.
"""

from __future__ import annotations

import array
import json
from pathlib import Path

from hub.voice.engines import Abandoned, Result, model_label

MODEL_FILE = "loudness.json"


class LoudnessEngine:
    name = "loudness"

    @staticmethod
    def model_problem(path: Path) -> str | None:
        return None if (Path(path) / MODEL_FILE).is_file() else f"{path} has no {MODEL_FILE}"

    def __init__(self, model_dir: Path):
        self.model_dir = Path(model_dir)
        self.model_name = model_label(self.model_dir)
        self.word = json.loads((self.model_dir / MODEL_FILE).read_text())["word"]

    def transcribe_pcm(self, pcm: bytes, grammar=None, progress=None) -> Result:
        samples = array.array("h", pcm[: len(pcm) - len(pcm) % 2])
        words, step = [], 4000  # a quarter second at 16 kHz
        for i in range(0, len(samples), step):
            if progress is not None and not progress():
                raise Abandoned()
            chunk = samples[i:i + step]
            if chunk and max(abs(s) for s in chunk) > 1000:
                words.append({"word": self.word, "start": i / 16000, "end": (i + len(chunk)) / 16000,
                              "conf": 1.0})
        return Result(" ".join(w["word"] for w in words), words, len(samples) / 16000)
