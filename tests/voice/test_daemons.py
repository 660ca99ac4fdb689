"""Both voice daemons as services: READY=1 to systemd after setup, a clean stop on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest

from tests.voice.conftest import ROOT


@pytest.mark.parametrize("module", ["hub.voice.recorder_daemon", "hub.voice.transcriber_daemon"])
def test_daemon_tells_systemd_it_is_ready_and_stops_on_sigterm(module, tmp_path):
    import os

    from hub.core.context import open_context
    from hub.core.settings import load
    from hub.migrations import MIGRATIONS

    data = tmp_path / "data"
    open_context(load(env={"HUB_DATA_DIR": str(data)}), MIGRATIONS).close()  # `hub migrate` runs first
    sock_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.settimeout(30)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(HUB_DATA_DIR=str(data), NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="2000000",
                   PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            messages = [sock.recv(100).decode()]
            assert messages == ["READY=1"]
            messages.append(sock.recv(100).decode())  # the loop beats: watchdog pings follow
            assert messages[1] == "WATCHDOG=1"
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=15)
            while True:
                m = sock.recv(100).decode()
                if m != "WATCHDOG=1":
                    break
            assert m == "STOPPING=1"
            assert proc.returncode == 0, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
