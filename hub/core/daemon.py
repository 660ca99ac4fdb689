"""The skeleton every hub daemon shares, and the talk with systemd.

A :class:`Daemon` has a ``setup()``, a ``poll()`` called every
``poll_interval`` seconds, optional periodic jobs, a ``ready`` event and a
``quit()``.  :func:`serve` runs one as a systemd service: it sends READY=1
once setup is done, pings the watchdog from the loop (so a loop stuck in a
hung playback stops the pings and systemd restarts the service), and
translates SIGTERM into ``quit()``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

from hub.core import settings as settings_mod
from hub.core.errors import HubError
from hub.core.problems import Problems

log = logging.getLogger(__name__)


class Systemd:
    """sd_notify(3) over $NOTIFY_SOCKET; silently does nothing outside systemd."""

    def __init__(self, env: dict[str, str] | None = None):
        env = os.environ if env is None else env
        self.address = env.get("NOTIFY_SOCKET") or None
        if self.address and self.address.startswith("@"):
            self.address = "\0" + self.address[1:]
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        self.watchdog_seconds: float | None = None
        if usec and (not pid or pid == str(os.getpid())):
            self.watchdog_seconds = int(usec) / 1_000_000

    def notify(self, state: str) -> bool:
        if not self.address:
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            try:
                s.sendto(state.encode(), self.address)
            except OSError as e:
                log.warning("could not notify systemd: %s", e)
                return False
        return True

    def ready(self) -> bool:
        return self.notify("READY=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")


class Daemon:
    """A task with a setup, a poll loop, periodic jobs and a clean stop."""

    name = "daemon"
    poll_interval = 1.0

    def __init__(self, settings):
        self.settings = settings
        self.ready = threading.Event()
        self._quit = threading.Event()
        self._jobs: list[tuple[float, Callable[[], None], list[float]]] = []
        self.last_beat = time.monotonic()
        data_dir = getattr(settings, "data_dir", None)
        #: What this daemon cannot use right now (a device, a pin), for hub doctor and the console.
        self.problems = Problems(data_dir, self.name) if data_dir is not None else None

    def problem(self, part: str, text: str | None) -> None:
        """Say that *part* cannot be used (*text*), or can again (None). The daemon keeps running."""
        if self.problems is None:
            return
        if text is None:
            if part in self.problems.current:
                log.info("%s works again", part)
            self.problems.clear(part)
        else:
            if part not in self.problems.current:
                log.error("%s", text)
            self.problems.set(part, text)

    def attempt(self, part: str, make: Callable[[], object], errors: tuple[type[BaseException], ...],
                prefix: str = ""):
        """Open *part* with *make*; on one of *errors* report it (see :meth:`problem`) and return None."""
        try:
            opened = make()
        except errors as e:
            self.problem(part, f"{prefix}{e}")
            return None
        self.problem(part, None)
        return opened

    # --- overridden by each daemon ---
    def setup(self) -> None:
        """Open devices and the database. Runs in the daemon's own thread."""

    def poll(self) -> None:
        """One round of work. Must return within a few seconds."""

    def teardown(self) -> None:
        """Close what setup opened. Safe to call after a failed setup."""

    # --- shared machinery ---
    def every(self, seconds: float, job: Callable[[], None]) -> None:
        self._jobs.append((seconds, job, [0.0]))

    @property
    def quitting(self) -> bool:
        return self._quit.is_set()

    def quit(self) -> None:
        self._quit.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to *seconds*; True if the daemon was asked to quit meanwhile."""
        return self._quit.wait(seconds)

    def heartbeat(self) -> None:
        """Say the loop is alive; the watchdog pings follow this."""
        self.last_beat = time.monotonic()

    def run(self) -> None:
        try:
            if self.problems is not None:
                self.problems.start()
            self.setup()
            self.ready.set()
            while not self._quit.is_set():
                self.heartbeat()
                now = time.monotonic()
                for interval, job, last in self._jobs:
                    if now - last[0] >= interval:
                        last[0] = now
                        job()
                self.poll()
                self._quit.wait(self.poll_interval)
        finally:
            self.teardown()


def serve(daemon: Daemon, systemd: Systemd | None = None) -> int:
    """Run *daemon* in the foreground as a service until SIGTERM or SIGINT."""
    systemd = systemd or Systemd()
    error: list[BaseException] = []

    def body() -> None:
        try:
            daemon.run()
        except BaseException as e:  # reported below, in the main thread
            error.append(e)
            daemon.quit()

    thread = threading.Thread(target=body, name=daemon.name, daemon=True)

    def on_signal(signum, frame):
        daemon.quit()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread.start()
    while not daemon.ready.wait(0.2):
        if not thread.is_alive():
            break
    if daemon.ready.is_set():
        systemd.ready()
        log.info("%s ready", daemon.name)
    ping = (systemd.watchdog_seconds or 0) / 2
    status = ""
    while thread.is_alive():
        thread.join(timeout=ping or 1.0)
        said = daemon.problems.summary() if daemon.problems is not None else ""
        if said != status:
            status = said
            systemd.status(said or "running")
        # Ping only while the loop is beating: a hung poll stops the pings and
        # systemd kills and restarts us.
        if ping and time.monotonic() - daemon.last_beat < (systemd.watchdog_seconds or 0):
            systemd.watchdog()
    systemd.stopping()
    if error:
        raise error[0]
    return 0


def run_together(daemons: list[Daemon], stop: threading.Event, join_timeout: float = 10.0) -> list[str]:
    """Run several daemons in threads until *stop* is set; return names that hung."""
    threads = []
    for d in daemons:
        t = threading.Thread(target=d.run, name=d.name, daemon=True)
        t.start()
        threads.append((d, t))
    try:
        while not stop.wait(0.5):
            for d, t in threads:
                if not t.is_alive() and not d.quitting:
                    log.error("%s stopped unexpectedly", d.name)
                    d.quit()
    finally:
        for d, _ in threads:
            d.quit()
    hung = []
    deadline = time.monotonic() + join_timeout
    for d, t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            hung.append(d.name)
    return hung


def load_settings(args: argparse.Namespace) -> settings_mod.Settings:
    """The settings a command or daemon runs with: ``--config`` plus HUB_<NAME> variables."""
    return settings_mod.load(args.config)


def setup_logging(level: str = "info") -> None:
    """One log line per event on stderr, where systemd's journal picks it up."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def service_main(prog: str, description: str, make: Callable, argv: list[str] | None = None) -> int:
    """The entry point of a daemon's console script, as its systemd unit runs it.

    Reads ``--config``, sets up logging, builds the daemon with ``make(settings)``
    and serves it; an expected failure is one line on stderr and exit 1.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", metavar="FILE", help="TOML settings file")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args)
        setup_logging(settings.log_level)
        return serve(make(settings))
    except HubError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
