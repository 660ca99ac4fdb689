"""A hub without its relay pins or sound card: the announcer keeps running, says so, and recovers.

This machine has no GPIO, so gpiozero's own choice of pin factory fails here
as it does on a Pi whose hub user may not use the GPIO chip. Setting
gpiozero's MockFactory afterwards is the pins appearing.
"""

from __future__ import annotations

import threading
import time

import pytest

from hub.announce import daemon as announce_daemon
from hub.core import problems
from hub.core.checks import Checkup
from hub.doctor.services import check_services
from tests.announce.conftest import wait_for

pytestmark = pytest.mark.filterwarnings("ignore::gpiozero.exc.PinFactoryFallback")


@pytest.fixture
def no_gpio(monkeypatch):
    from gpiozero import Device

    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    old = Device.pin_factory
    Device.pin_factory = None
    yield Device
    if Device.pin_factory is not None:
        Device.pin_factory.close()
    Device.pin_factory = old


def test_without_pins_or_sound_card_the_announcer_runs_reports_and_recovers(
        make_settings, ctx, alsa, no_gpio, monkeypatch, tmp_path):
    from gpiozero.pins.mock import MockFactory

    monkeypatch.setattr(announce_daemon, "DEVICE_RETRY_SECONDS", 0.2)
    # The ALSA config names no "speaker" yet: the USB sound card is not plugged in.
    conf = tmp_path / "asound.conf"
    conf.write_text("pcm.!default { type null }\n")
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(conf))
    s = make_settings(data_dir=ctx.settings.data_dir, amplifier_pin="GPIO17", status_led_pin="GPIO27",
                      audio_output_device="speaker")
    announcer = announce_daemon.Announcer(s)
    thread = threading.Thread(target=announcer.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: set(problems.current(s.data_dir).get("announcer", {})) == {"amplifier", "status_led",
                                                                             "speaker"})
        said = problems.current(s.data_dir)["announcer"]
        assert "GPIO17" in said["amplifier"]["text"] and "speaker" in said["speaker"]["text"]
        checkup = Checkup(None)
        checkup.settings = s
        finding = check_services(checkup)
        assert finding.status == "warn" and "GPIO17" in finding.values["what"]
        assert thread.is_alive()

        # The pins and the sound card appear: the same process picks them up.
        no_gpio.pin_factory = MockFactory()
        conf.write_text(alsa.conf.read_text())
        wait_for(lambda: "announcer" not in problems.current(s.data_dir))
        assert announcer.amplifier is not None and announcer.amplifier.fitted
        assert announcer.player.is_open and thread.is_alive()
    finally:
        announcer.quit()
        thread.join(10)
    assert not thread.is_alive()


def test_problems_are_written_only_when_they_change_and_vanish_with_the_process(tmp_path):
    p = problems.Problems(tmp_path, "announcer")
    p.start()
    p.set("speaker", "no sound card")
    first = p.path.stat().st_mtime_ns
    time.sleep(0.02)
    p.set("speaker", "no sound card")
    assert p.path.stat().st_mtime_ns == first  # no write for a repeat
    assert problems.current(tmp_path) == {"announcer": {"speaker": p.current["speaker"]}}
    p.clear("speaker")
    assert problems.current(tmp_path) == {}
    p.set("amplifier", "no pin")
    data = p.path.read_text().replace('"pid": ', '"pid": 9999999', 1)
    p.path.write_text(data)  # the same file from a process that is gone
    assert problems.current(tmp_path) == {}
