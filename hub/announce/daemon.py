"""``hub-announcer``: plays each due occurrence once, through the relay, chimes and speaker.

The loop, once a second (see :class:`hub.core.daemon.Daemon`):

1. while the clock is trusted, turn rule times up to a little ahead into
   ``due`` occurrences (:func:`hub.announce.store.schedule_due`);
2. take the next ready occurrence: urgent first, then play-now, then the
   earliest. While the clock is not trusted only play-now items qualify;
3. too late for its grace window: mark it missed. Otherwise mark it
   ``playing`` (committed), switch the relay on early enough that the
   amplifier has warmed up at the due time, play start chime, the
   announcement and its repeats, end chime; mark it ``played`` (committed);
   switch the relay off once nothing else is about to play.

While a routine announcement plays, an urgent one that comes due stops it
(the routine one is marked missed, because playing it again would play it
twice). Between 50 ms chunks the loop beats its heartbeat, so a playback
that hangs in the sound driver stops the watchdog pings and systemd
restarts the daemon; on start, whatever was left ``playing`` is marked
missed.
"""

from __future__ import annotations

import fcntl
import logging
import sys
import time
from datetime import timedelta

from hub.announce import schedule, store
from hub.announce.devices import Amplifier, DeviceError, StatusLed
from hub.announce.player import AudioDeviceError, ClipError, Player, programme
from hub.core.context import open_context
from hub.core.daemon import Daemon, service_main
from hub.core.errors import HubError
from hub.migrations import MIGRATIONS

log = logging.getLogger(__name__)

#: How far ahead of a start time the loop picks an occurrence up, beyond the warm-up.
LEAD_SECONDS = 1.5
#: How often, while a routine announcement plays, to look for an urgent one.
URGENT_CHECK_SECONDS = 0.25
#: How often to try again a relay, LED or sound card that could not be opened.
DEVICE_RETRY_SECONDS = 10


class Announcer(Daemon):
    """The announcer daemon. *clock_factory(db)* and *pin_factory* are for tests and benches."""

    name = "announcer"
    poll_interval = 1.0

    def __init__(self, settings, clock_factory=None, pin_factory=None):
        super().__init__(settings)
        self._clock_factory = clock_factory
        self._pin_factory = pin_factory
        self.quiet = schedule.QuietHours.from_settings(settings)
        self.grace_minutes = settings.grace_minutes
        self.ctx = None
        self.clock = None
        self.amplifier: Amplifier | None = None
        self.led: StatusLed | None = None
        self.player: Player | None = None
        self._lock = None

    # --- life cycle -----------------------------------------------------------------------
    def setup(self) -> None:
        self.ctx = open_context(self.settings, MIGRATIONS, migrate=False)
        self._take_lock()
        db = self.ctx.db
        self.clock = self._clock_factory(db) if self._clock_factory else self.ctx.clock
        self.player = Player.from_settings(self.settings)
        self._open_devices()
        self.every(DEVICE_RETRY_SECONDS, self._open_devices)
        n = store.recover(db, self.ctx.hub_id, self.clock.now(), self.clock.trusted())
        if n:
            log.warning("%d announcement(s) were cut short by a restart; marked missed", n)
        log.info("announcer ready: %s, audio device %r",
                 self.amplifier.describe() if self.amplifier else "amplifier relay not usable yet",
                 self.settings.audio_output_device)

    def _open_devices(self) -> None:
        """Open what is not open yet: relay, LED, sound card. What is missing is reported, not fatal.

        A missing GPIO chip, a pin without permission (the hub user not in the
        gpio group) or an unplugged USB sound card leaves the daemon running; it
        tries again every DEVICE_RETRY_SECONDS, and meanwhile hub doctor and the
        console say what is missing. Occurrences that come due fail with the reason.
        """
        s, pins = self.settings, self._pin_factory
        if self.amplifier is None:
            self.amplifier = self.attempt("amplifier", lambda: Amplifier.from_settings(s, pin_factory=pins),
                                          (DeviceError,), "amplifier relay: ")
        if self.led is None or (s.status_led_pin and self.led.pin is None):
            led = self.attempt("status_led", lambda: StatusLed.from_settings(s, pin_factory=pins), (DeviceError,))
            self.led = led or self.led or StatusLed(None)  # lights nothing until the pin can be used
        # A USB sound card may come back; each occurrence that cannot play
        # meanwhile is recorded as failed for the clerk to see.
        if not self.player.is_open and self.attempt("speaker", self.player.open, (AudioDeviceError,)) is None:
            self.led.show("fault")

    def teardown(self) -> None:
        for part in (self.amplifier, self.led, self.player):
            if part is not None:
                try:
                    part.close()
                except Exception:  # closing must not hide the reason we stopped
                    log.exception("closing %r", part)
        if self.ctx is not None:
            self.ctx.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _take_lock(self) -> None:
        """One announcer per data directory: two would play the same occurrence twice."""
        path = self.settings.data_dir / "announcer.lock"
        f = open(path, "a+")  # noqa: SIM115 - held for the daemon's life
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise HubError(
                f"another announcer is already running on {self.settings.data_dir}") from None
        self._lock = f

    # --- the loop -------------------------------------------------------------------------
    def poll(self) -> None:
        trusted = self.clock.trusted()
        self._play_ready(trusted)
        self.led.show("idle" if trusted or self.led.state == "fault" else "waiting")

    def _sleep(self, seconds: float) -> bool:
        """Wait, beating the heartbeat; True when asked to quit meanwhile."""
        end = time.monotonic() + max(0.0, seconds)
        while True:
            self.heartbeat()
            left = end - time.monotonic()
            if left <= 0:
                return self.quitting
            if self.wait(min(left, 0.2)):
                return True

    def _lead(self) -> timedelta:
        return timedelta(seconds=self.settings.amplifier_warmup_seconds + LEAD_SECONDS)

    def _play_ready(self, trusted: bool) -> None:
        db, hub_id = self.ctx.db, self.ctx.hub_id
        try:
            while not self.quitting:
                self.heartbeat()
                now = self.clock.now()
                if trusted:
                    store.schedule_due(db, hub_id, now + self._lead(), self.quiet)
                if store.expire(db, hub_id, now, trusted):
                    log.warning("announcement(s) expired before they could play; marked missed")
                occ = store.next_ready(db, now + self._lead(), trusted)
                if occ is None:
                    return
                start = store.parse_time(occ["play_after"])
                if schedule.too_late(start, now, self.grace_minutes):
                    late = int((now - start).total_seconds() // 60)
                    store.finish(db, hub_id, occ["id"], "missed", now, trusted,
                                 detail=f"too late: {late} min after its time")
                    log.warning("missed %s (%s): %d min late", occ["id"], occ["title"], late)
                    continue
                warm_up = 0.0 if self.amplifier and self.amplifier.is_on else self.settings.amplifier_warmup_seconds
                early = (start - now).total_seconds() - warm_up
                if early > 0:
                    # Not yet: look again shortly, so a play-now or urgent item can go first.
                    self._sleep(min(early, 0.25))
                    continue
                self._play(occ, start, trusted)
                trusted = self.clock.trusted()
        finally:
            if self.amplifier is not None:
                self.amplifier.off()

    def _play(self, occ: dict, start, trusted: bool) -> None:
        db, hub_id, clock = self.ctx.db, self.ctx.hub_id, self.clock
        if store.expired(occ, clock.now()):
            store.finish(db, hub_id, occ["id"], "missed", clock.now(), trusted,
                         detail="expired before it could play")
            return
        if not store.mark_playing(db, occ["id"], clock.now()):
            return
        self.led.show("playing")
        log.info("playing %s (%s), %d time(s)", occ["id"], occ["title"] or occ["loud_name"],
                 occ["repeats"])
        reason = ["stopped: the announcer was shut down"]
        started: list = [None]
        try:
            if not occ["loud_name"]:
                raise ClipError("the announcement has no loudspeaker copy of its audio")
            if self.amplifier is None:
                raise DeviceError(self.problems.current.get("amplifier", {}).get("text")
                                  or "the amplifier relay cannot be used")
            clips = programme(self.ctx.media.path(occ["loud_name"]), occ["repeats"])
            self.player.prepare(clips)  # device and first samples ready before the due time
            warm = not self.amplifier.is_on
            self.amplifier.on(warm_up=False)
            if warm and self._sleep(self.amplifier.warmup_seconds):
                raise _Stopped
            ahead = (start - clock.now()).total_seconds()
            if ahead > 0 and self._sleep(ahead):
                raise _Stopped
            result = self.player.play(
                clips, should_stop=self._stopper(occ, trusted, reason),
                on_first_sample=lambda: started.__setitem__(0, clock.now()))
        except _Stopped:
            self.player.cancel()
            store.finish(db, hub_id, occ["id"], "missed", clock.now(), trusted, detail=reason[0])
            return
        except (AudioDeviceError, ClipError, DeviceError, ValueError) as e:
            log.error("could not play %s: %s", occ["id"], e)
            if isinstance(e, AudioDeviceError):
                self.problem("speaker", str(e))
            if self.amplifier is not None:
                self.amplifier.off()
            store.finish(db, hub_id, occ["id"], "failed", clock.now(), trusted,
                         started=started[0], ended=clock.now() if started[0] else None,
                         detail=str(e))
            self.led.show("fault")
            return
        self.problem("speaker", None)
        ended = clock.now()
        if result.completed:
            store.finish(db, hub_id, occ["id"], "played", ended, trusted, started=started[0],
                         ended=ended)
            self.led.show("idle")
        else:
            store.finish(db, hub_id, occ["id"], "missed", ended, trusted, started=started[0],
                         ended=ended, detail=reason[0])
            log.warning("%s cut short: %s", occ["id"], reason[0])

    def _stopper(self, occ: dict, trusted: bool, reason: list):
        """The player's should_stop: shutting down, or an urgent item ready (for a routine one)."""
        db = self.ctx.db
        last = [time.monotonic()]

        def should_stop() -> bool:
            self.heartbeat()
            if self.quitting:
                return True
            if occ["urgent"] or time.monotonic() - last[0] < URGENT_CHECK_SECONDS:
                return False
            last[0] = time.monotonic()
            now = self.clock.now()
            if trusted:
                store.schedule_due(db, self.ctx.hub_id, now, self.quiet)
            if store.urgent_waiting(db, now, trusted):
                reason[0] = "interrupted by an urgent announcement"
                return True
            return False

        return should_stop


class _Stopped(Exception):
    """Asked to quit before the first sound."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hub-announcer`` (systemd: Type=notify, WatchdogSec)."""
    return service_main("hub-announcer", "Play scheduled loudspeaker announcements.", Announcer, argv)


if __name__ == "__main__":
    sys.exit(main())
