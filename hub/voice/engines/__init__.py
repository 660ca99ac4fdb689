"""Speech engines, chosen by name: the ``speech_engine`` setting names one in :data:`ENGINES`.

As gpiozero chooses its pin factories: the table maps a name to the class that
implements :class:`~hub.voice.engines.base.Engine`, written ``"module:Class"`` so
that an engine's library is imported only when that engine is used. Adding an
engine is one module beside ``vosk.py`` and one line here.
"""

from __future__ import annotations

import importlib

from hub.voice.engines.base import Abandoned, Engine, ModelError, Result, model_label

__all__ = ["ENGINES", "Abandoned", "Engine", "ModelError", "Result", "engine_class", "model_label"]

#: Engine name → the class that implements it.
ENGINES: dict[str, str] = {
    "vosk": "hub.voice.engines.vosk:VoskEngine",
}


def engine_class(name: str) -> type[Engine]:
    """The class ENGINES names *name*; ModelError for a name it does not know."""
    try:
        module, _, cls = ENGINES[name].partition(":")
    except KeyError:
        raise ModelError(f"speech_engine {name!r} is not one of: {', '.join(sorted(ENGINES))}") from None
    return getattr(importlib.import_module(module), cls)
