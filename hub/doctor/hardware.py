"""The doctor's checks of the hardware: the sound devices PortAudio lists, and the GPIO pins."""

from __future__ import annotations

import os
import sys
import warnings

from hub.core import audio
from hub.core.checks import FAIL, OK, SKIP, Checkup, Finding
from hub.core.words import N_


def check_audio(checkup: Checkup) -> Finding:
    s = checkup.settings

    try:
        with _stderr_silenced():
            pa = audio.open_pyaudio()
    except Exception as e:
        return Finding("audio", FAIL, N_("PortAudio cannot list sound devices: %(error)s"),
                       {"error": str(e)},
                       N_("Check that the sound card is plugged in: `aplay -l`, `arecord -l`."))
    missing = []
    try:
        listed = audio.devices(pa, "output") + audio.devices(pa, "input")
        names = ", ".join(sorted({str(d["name"]) for d in listed}))
        for direction, name in (("output", s.audio_output_device), ("input", s.audio_input_device)):
            try:
                audio.find_device(pa, name, direction)
            except audio.SoundDeviceError:
                missing.append(f"{direction} {name!r}")
    finally:
        pa.terminate()
    if missing:
        names = names or "-"
        return Finding("audio", FAIL, N_("Not found: %(missing)s (PortAudio lists: %(names)s)"),
                       {"missing": ", ".join(missing), "names": names},
                       N_("Plug in the sound card, or set audio_output_device and"
                          " audio_input_device to a listed name."))
    return Finding("audio", OK, N_("Output %(output)s and input %(input)s found"),
                   {"output": repr(s.audio_output_device), "input": repr(s.audio_input_device)})


def check_gpio(checkup: Checkup) -> Finding:
    s = checkup.settings
    wanted = [(name, getattr(s, name)) for name in
              ("amplifier_pin", "status_led_pin", "button_pin", "button_led_pin")
              if getattr(s, name)]
    if not wanted:
        return Finding("gpio", SKIP, N_("No relay, button or LED pins are set"))
    pins: dict[str, str] = {}
    for name, pin in wanted:
        if pin in pins.values():
            other = next(k for k, v in pins.items() if v == pin)
            return Finding("gpio", FAIL, N_("%(a)s and %(b)s are the same pin (%(pin)s)"),
                           {"a": other, "b": name, "pin": pin},
                           N_("Give each device its own pin in hub.toml."))
        pins[name] = pin
    problems, busy = _try_pins(wanted, s.amplifier_active_high)
    if problems:
        return Finding("gpio", FAIL, N_("Cannot use %(pins)s"), {"pins": "; ".join(problems)},
                       N_("Check the pin names (e.g. GPIO17) and the wiring in"
                          " provisioning/README.md."))
    shown = ", ".join(f"{n}={p}" for n, p in wanted)
    if busy:
        return Finding("gpio", OK, N_("%(pins)s (in use by the running services: %(busy)s)"),
                       {"pins": shown, "busy": ", ".join(busy)})
    return Finding("gpio", OK, N_("%(pins)s can be used"), {"pins": shown})


class _stderr_silenced:
    """Point file descriptor 2 at /dev/null: PortAudio's C code prints its probes there."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        os.close(self.saved)
        return False


def _try_pins(wanted: list[tuple[str, str]],
              amplifier_active_high: bool = True) -> tuple[list[str], list[str]]:
    """Build each gpiozero device on its pin and close it; return (problems, busy pins).

    Outputs are built switched off in their own polarity, so checking an
    active-low relay never switches the amplifier on.
    """
    problems, busy = [], []
    with warnings.catch_warnings():
        # gpiozero warns when it falls back from one pin library to another.
        warnings.simplefilter("ignore")
        try:
            # Pin libraries probe the hardware when imported; only this check needs them.
            from gpiozero import Button, DigitalOutputDevice
        except Exception as e:
            return [f"gpiozero: {e}"], []
        for name, pin in wanted:
            try:
                if name == "button_pin":
                    device = Button(pin, pull_up=True)
                else:
                    active_high = amplifier_active_high if name == "amplifier_pin" else True
                    device = DigitalOutputDevice(pin, active_high=active_high,
                                                 initial_value=False)
            except Exception as e:
                text = str(e) or type(e).__name__
                if "busy" in text.lower():
                    busy.append(f"{name}={pin}")
                else:
                    problems.append(f"{name}={pin}: {text}")
                continue
            device.close()
    return problems, busy
