"""`hub-sync`: a sync cycle every ``sync_interval_seconds``, backing off after failures.

Between cycles, every ``sync_urgent_interval_seconds``, a small conditional
poll for urgent broadcasts (:mod:`hub.sync.urgent`), which also sends their
acknowledgements.
"""

from __future__ import annotations

import logging
import random
import sys
import time

from hub.core.context import open_context
from hub.core.daemon import Daemon, service_main
from hub.migrations import MIGRATIONS
from hub.sync import state as sync_state
from hub.sync import urgent
from hub.sync.client import CentralClient, SyncError
from hub.sync.engine import run_cycle

log = logging.getLogger(__name__)

#: The first wait after a failed cycle; it doubles up to sync_max_backoff_seconds.
FIRST_BACKOFF_SECONDS = 30


def next_delay(settings, failures: int, rand=random.random) -> float:
    """Seconds until the next cycle: the interval after success, a doubling wait after failures."""
    if failures <= 0:
        return float(settings.sync_interval_seconds)
    wait = min(FIRST_BACKOFF_SECONDS * 2 ** (failures - 1), settings.sync_max_backoff_seconds)
    return wait * (0.8 + 0.4 * rand())  # jitter, so many hubs do not retry in step


class Sync(Daemon):
    """Sync with the central server whenever the uplink is up; idle while central_url is empty."""

    name = "hub-sync"
    poll_interval = 1.0

    def __init__(self, settings):
        super().__init__(settings)
        self.ctx = None
        self.failures = 0
        self.next_at = 0.0
        self.last = None
        self.answered_request = None
        self.urgent_at = 0.0
        self.urgent_client: CentralClient | None = None
        self.last_urgent = None

    def setup(self) -> None:
        self.ctx = open_context(self.settings, MIGRATIONS, migrate=False)
        if not self.settings.central_url:
            log.info("sync is off: central_url is empty")

    def poll(self) -> None:
        if not self.settings.central_url:
            return
        requested = sync_state.sync_requested(self.ctx.db)
        asked_now = requested is not None and requested != self.answered_request
        if time.monotonic() < self.next_at and not asked_now:
            self._urgent_poll()
            return
        self.answered_request = requested  # "Sync now" in the console: answered by this cycle
        self.last = run_cycle(self.ctx, beat=self.heartbeat, stopping=lambda: self.quitting)
        if self.last.ok:
            self.failures = 0
            log.info("sync: %s", self.last.summary())
        else:
            self.failures += 1
            log.warning("sync: %s", self.last.summary() if self.last.online else self.last.message)
        self.next_at = time.monotonic() + next_delay(self.settings, self.failures)
        self._urgent_poll()  # acknowledgements of what played meanwhile go at once

    def _urgent_poll(self) -> None:
        every = self.settings.sync_urgent_interval_seconds
        if every <= 0 or time.monotonic() < self.urgent_at:
            return
        self.urgent_at = time.monotonic() + every
        if self.urgent_client is None:
            try:
                # One client kept between polls: its connection is reused while the server keeps it open.
                self.urgent_client = CentralClient(self.settings, self.ctx, self.heartbeat, lambda: self.quitting)
            except SyncError as e:
                log.warning("urgent poll: %s", e)
                return
            self.urgent_client.attempts = 1  # the next poll is the retry
        self.last_urgent = urgent.poll(self.ctx, self.urgent_client)
        if self.last_urgent["error"]:
            self.urgent_client.close()
            self.urgent_client = None

    def teardown(self) -> None:
        if self.urgent_client is not None:
            self.urgent_client.close()
        if self.ctx is not None:
            self.ctx.close()


def main(argv: list[str] | None = None) -> int:
    """`hub-sync [--config FILE]`, as the systemd unit runs it."""
    return service_main("hub-sync", Sync.__doc__, Sync, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
