"""Vosk (Kaldi) as a speech engine: its models are directories with an acoustic model, a graph and features.

Models are only ever loaded from a directory; nothing here downloads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hub.voice.engines.base import Abandoned, ModelError, Result, model_label

#: Audio fed to the recogniser per call: 0.25 s, so a long job still beats often.
CHUNK_BYTES = 8000


def vosk_model_problem(path: Path) -> str | None:
    """Why *path* is not a Vosk model directory, or None when it looks like one."""
    path = Path(path)
    if not path.is_dir():
        return f"{path} is not a directory"

    def has(*names: str) -> bool:
        return any((path / n).is_file() for n in names)

    if not has("am/final.mdl", "final.mdl"):
        return f"{path} has no am/final.mdl (the acoustic model)"
    if not has("graph/HCLG.fst", "HCLG.fst", "graph/HCLr.fst", "HCLr.fst"):
        return f"{path} has no graph/HCLG.fst or graph/HCLr.fst (the decoding graph)"
    if not has("conf/mfcc.conf", "mfcc.conf"):
        return f"{path} has no conf/mfcc.conf (the feature configuration)"
    return None


_MODELS: dict[str, object] = {}


def load_vosk_model(path: Path):
    """Load a Vosk model from *path* (never by language name: that would download)."""
    import vosk  # loads Kaldi's native library: only the transcriber and `hub transcribe` need it

    vosk.SetLogLevel(-1)
    key = str(Path(path).resolve())
    model = _MODELS.get(key)
    if model is None:
        problem = vosk_model_problem(Path(path))
        if problem:
            raise ModelError(problem)
        _MODELS.clear()  # one model in memory at a time: a Pi has little RAM
        try:
            model = vosk.Model(key)
        except Exception as e:  # vosk raises a bare Exception when Kaldi refuses the files
            raise ModelError(f"cannot load the speech model in {path}: {e}") from None
        _MODELS[key] = model
    return model


def forget_models() -> None:
    """Drop the loaded model, so its memory is freed once no engine holds it."""
    _MODELS.clear()


class VoskEngine:
    """Vosk's KaldiRecognizer, with words, timings and confidence."""

    name = "vosk"
    model_problem = staticmethod(vosk_model_problem)
    release_all = staticmethod(forget_models)

    def __init__(self, model_dir: Path, rate: int = 16000):
        self.model_dir = Path(model_dir)
        self.model_name = model_label(self.model_dir)
        self.rate = rate
        self.model = load_vosk_model(self.model_dir)

    def recognizer(self, grammar: list[str] | None = None):
        import vosk  # see load_vosk_model

        if grammar:
            rec = vosk.KaldiRecognizer(self.model, self.rate, json.dumps(grammar, ensure_ascii=False))
        else:
            rec = vosk.KaldiRecognizer(self.model, self.rate)
        rec.SetWords(True)
        return rec

    def transcribe_pcm(self, pcm: bytes, grammar: list[str] | None = None,
                       progress: Callable[[], bool] | None = None) -> Result:
        rec = self.recognizer(grammar)
        segments: list[dict] = []
        for i in range(0, len(pcm), CHUNK_BYTES):
            if rec.AcceptWaveform(pcm[i:i + CHUNK_BYTES]):
                segments.append(json.loads(rec.Result()))
            if progress is not None and not progress():
                raise Abandoned()
        segments.append(json.loads(rec.FinalResult()))
        words = []
        for seg in segments:
            for w in seg.get("result", []):
                words.append({"word": w["word"], "start": round(w["start"], 3),
                              "end": round(w["end"], 3), "conf": round(w.get("conf", 0.0), 3)})
        text = " ".join(s.get("text", "") for s in segments if s.get("text")).strip()
        return Result(text=text, words=words, audio_seconds=len(pcm) / (2 * self.rate))
