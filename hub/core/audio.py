"""PyAudio opened the same way by every part: ALSA kept quiet, devices found by name.

The announcer plays through it, the kiosk records and plays through it, and
``hub doctor`` checks the devices with it, so a device name in the settings
means the same thing everywhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from hub.core.errors import HubError

_HANDLERS: list = []  # the ctypes callbacks must outlive the libraries that call them


class SoundDeviceError(HubError):
    """The sound device named in the settings is not there."""


def quiet_audio_libraries() -> None:
    """Install no-op error handlers in libasound and libjack, before ``PyAudio()``.

    PortAudio probes every ALSA device and the JACK server at start-up, and
    both libraries print dozens of harmless complaints to stderr. A
    technician should see the hub's one-line messages, not that noise.
    """
    if _HANDLERS:
        return
    # void (*)(const char *file, int line, const char *func, int err, const char *fmt, ...)
    alsa_t = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                              ctypes.c_char_p)
    jack_t = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
    alsa_noop = alsa_t(lambda *args: None)
    jack_noop = jack_t(lambda msg: None)
    _HANDLERS.extend([alsa_noop, jack_noop])
    for name, install in (("asound", lambda lib: lib.snd_lib_error_set_handler(alsa_noop)),
                          ("jack", lambda lib: (lib.jack_set_error_function(jack_noop),
                                                lib.jack_set_info_function(jack_noop)))):
        path = ctypes.util.find_library(name)
        if not path:
            continue
        try:
            install(ctypes.CDLL(path))
        except (OSError, AttributeError):
            pass


def open_pyaudio():
    """A ``pyaudio.PyAudio()`` made after the libraries were quietened."""
    quiet_audio_libraries()
    # PortAudio scans the sound cards on import: only code that plays or records pays for it
    import pyaudio

    return pyaudio.PyAudio()


def devices(pa, direction: str) -> list[dict]:
    """PortAudio's devices that can record (``input``) or play (``output``)."""
    key = "maxInputChannels" if direction == "input" else "maxOutputChannels"
    found = (pa.get_device_info_by_index(i) for i in range(pa.get_device_count()))
    return [d for d in found if d.get(key, 0) > 0]


def find_device(pa, name: str, direction: str) -> int:
    """The PortAudio index of the device a setting names; raise SoundDeviceError if absent.

    ``default`` (or empty) is PortAudio's default device. Otherwise the name
    is matched as PortAudio writes it: whole (``default``, ``pulse``), the
    ALSA id in brackets (``hw:1,0`` matches ``USB Audio: - (hw:1,0)``), the
    card's name before the colon, then any part of the name.
    """
    usable = devices(pa, direction)
    if name in ("", "default"):
        try:
            info = (pa.get_default_input_device_info() if direction == "input"
                    else pa.get_default_output_device_info())
            return int(info["index"])
        except OSError:
            pass
    for match in (lambda n: n == name, lambda n: f"({name})" in n, lambda n: n.startswith(name + ":"),
                  lambda n: name.lower() in n.lower()):
        for d in usable:
            if match(str(d["name"])):
                return int(d["index"])
    shown = ", ".join(sorted({str(d["name"]) for d in usable})[:8]) or "none"
    raise SoundDeviceError(f"{direction} sound device {name!r} not found ({direction} devices: {shown})")
