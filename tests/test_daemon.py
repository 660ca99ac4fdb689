"""The daemon skeleton: systemd readiness and watchdog, clean stops, hangs caught."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from hub.core.daemon import Daemon, Systemd, run_together


class Counter(Daemon):
    name = "counter"
    poll_interval = 0.01

    def __init__(self, settings=None):
        super().__init__(settings)
        self.polls = 0
        self.closed = 0

    def poll(self):
        self.polls += 1

    def teardown(self):
        self.closed += 1


class Stuck(Daemon):
    name = "stuck"
    poll_interval = 0.01

    def poll(self):
        time.sleep(30)  # a hung playback


@pytest.fixture
def notify(tmp_path):
    """A datagram socket standing in for systemd's notify socket."""
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        s.settimeout(10)
        yield s, path


def test_systemd_notify_sends_datagrams(notify):
    s, path = notify
    sd = Systemd(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    assert sd.watchdog_seconds == 2.0
    assert sd.ready() and sd.watchdog()
    assert s.recv(100) == b"READY=1" and s.recv(100) == b"WATCHDOG=1"
    assert Systemd(env={}).ready() is False  # outside systemd: nothing, no error


def test_run_together_stops_daemons_and_reports_a_hung_one():
    ok, stuck = Counter(), Stuck(None)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    hung = run_together([ok, stuck], stop, join_timeout=1.0)
    assert hung == ["stuck"]
    assert time.monotonic() - started < 5
    assert ok.polls > 3 and ok.closed == 1


def test_serve_reports_ready_pings_the_watchdog_and_stops_pinging_when_hung(notify):
    """A real process under a fake systemd: READY, WATCHDOG pings, then silence once the loop hangs."""
    s, path = notify
    script = textwrap.dedent("""
        import sys, time
        from hub.core.daemon import Daemon, serve

        class Player(Daemon):
            name = "player"
            poll_interval = 0.05
            def __init__(self):
                super().__init__(None)
                self.started = time.monotonic()
            def poll(self):
                if time.monotonic() - self.started > 1.0:
                    time.sleep(60)  # playback hangs

        sys.exit(serve(Player()))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script],
                            env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000", "PATH": "/usr/bin:/bin",
                                 "PYTHONPATH": str(__import__("pathlib").Path(__file__).parent.parent)})
    try:
        messages = []
        deadline = time.monotonic() + 4
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                messages.append((time.monotonic(), s.recv(100).decode()))
            except TimeoutError:
                pass
        kinds = [m for _, m in messages]
        assert kinds[0] == "READY=1"
        pings = [t for t, m in messages if m == "WATCHDOG=1"]
        assert len(pings) >= 3, kinds
        # After the hang (about 1 s in) the pings stop, so systemd would restart the service.
        assert messages[-1][0] < deadline - 2.0, "watchdog kept being pinged while the loop was stuck"
    finally:
        proc.kill()
        proc.wait()


def test_sigterm_stops_a_served_daemon_promptly(tmp_path):
    script = textwrap.dedent("""
        import sys
        from hub.core.daemon import Daemon, serve
        class Idle(Daemon):
            name = "idle"
            poll_interval = 0.05
        sys.exit(serve(Idle(None)))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script],
                            env={"PATH": "/usr/bin:/bin",
                                 "PYTHONPATH": str(__import__("pathlib").Path(__file__).parent.parent)})
    time.sleep(1.0)
    proc.terminate()
    assert proc.wait(5) == 0
